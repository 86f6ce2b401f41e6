"""`disco gobig IMAGE`: the settings an image of ours carries, its size as the render size, the
flags over them, bad input answered in one line; and (e2e) a run that enlarges 64 to 128 and a
second run that keeps every finished tile."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from PIL import Image

from engine.cli.gobig import add_gobig_command, gobig_spec
from engine.errors import SpecError
from engine.media.files import save_png
from engine.media.still_formats import FORMAT_LIST
from engine.spec.render import RenderSpec
from tests.engine.cli.test_cli import disco
from tests.support.cli import disco_here

QUICK = {"text_prompts": "a lighthouse", "steps": 4, "cutn_batches": 1, "clip_models": ["ViT-B-32::openai"],
         "cut_overview": "[2]*1000", "cut_innercut": "[2]*1000", "init_scale": 0, "seed": 9, "n_batches": 1}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_gobig_command(parser.add_subparsers())
    return parser.parse_args(["gobig", *argv])


def ours(path: Path, size=(64, 64), **settings) -> Path:
    spec = RenderSpec.from_dict({**QUICK, "width": size[0], "height": size[1], **settings})
    return save_png(Image.new("RGB", size, (30, 90, 160)), path, {"disco_settings": spec.to_json()})


def test_an_image_of_ours_keeps_its_prompts_seed_and_size(tmp_path):
    image = ours(tmp_path / "mine.png", (128, 64))
    spec, source, report = gobig_spec(parse(str(image), "--scale", "3", "--set", "steps=6"))
    assert source.size == (128, 64) and source.getpixel((0, 0)) == (30, 90, 160)  # read once, kept
    assert spec.gobig and spec.gobig_init == str(image.resolve()) and spec.gobig_scale == 3
    assert (spec.width, spec.height, spec.seed, spec.steps) == (128, 64, 9, 6)
    assert spec.prompt_summary() == "a lighthouse" and "settings from mine.png" in report


def test_a_foreign_image_takes_the_prompt_given(tmp_path):
    image = tmp_path / "photo.jpg"
    Image.new("RGB", (192, 128)).save(image)
    spec, _source, report = gobig_spec(parse(str(image), "a harbour at night", "--overlap", "32"))
    assert (spec.width, spec.height, spec.gobig_overlap) == (192, 128, 32)
    assert spec.prompt_summary() == "a harbour at night" and spec.seed is not None
    assert any("carries no settings" in line for line in report)


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b"not an image"), f"bad.png is not a still {FORMAT_LIST}"),
    (lambda p: Image.new("RGB", (2560, 2560)).save(p, "PNG"), "gobig_scale"),
    (lambda p: Image.new("RGB", (80, 60)).save(p, "PNG"),
     "bad.png is 80×60; GoBig renders from at least 64×64 pixels — give --width and --height"),
    (lambda p: p.mkdir(), "bad.png: there is no image file there"),
])
def test_bad_images_are_refused_with_the_fix(tmp_path, make, words):
    image = tmp_path / "bad.png"
    make(image)
    with pytest.raises(SpecError, match=words):
        gobig_spec(parse(str(image), "a prompt"))


@pytest.mark.e2e
def test_disco_gobig_enlarges_and_a_second_run_keeps_the_tiles(tmp_path, capsys):
    image = ours(tmp_path / "mine.png")
    args = ("gobig", str(image), "--models", "test-tiny", "--out", str(tmp_path / "out"))
    first = disco(*args, tmp_path=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr
    out = tmp_path / "out" / "mine_x2.png"
    assert Image.open(out).size == (128, 128) and "tile 9 of 9" in first.stderr
    enlarged = out.read_bytes()
    # In-process: the child above was the command as a user runs it; this checks the folder.
    second = disco_here(capsys, *args)
    assert second.returncode == 0 and second.stderr.count("(kept)") == 9
    assert out.read_bytes() == enlarged  # the same tiles blend into the same image
