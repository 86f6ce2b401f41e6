"""CLIP interrogation on the test-tiny CLIP: every list ranked best first by the mean cosine
similarity, deterministic for one image and model set, different images ranked differently, and
the answer a prompt `RenderSpec` accepts as it is. The word lists ship with their source."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.cli.describe import add_describe_command, cmd_describe
from engine.describe.interrogate import LISTS, describe_image, label, weighted_prompt, word_lists
from engine.diffusion.images import pil_to_unit
from engine.media.still_formats import FORMAT_LIST
from engine.spec.render import RenderSpec
from tests.support.engine import tiny_pool

CLIP = ["ViT-B-32::openai"]


def picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), "RGB")


def test_the_word_lists_ship_with_their_source_and_licence():
    lists = word_lists()
    assert set(lists) == set(LISTS) and all(len(lists[name]) >= 30 for name in LISTS)
    readme = (Path(__file__).parents[3] / "engine" / "describe" / "words" / "README.md").read_text()
    assert "Source:" in readme and "Licence: MIT" in readme
    assert all(len(phrase) <= 60 for phrases in lists.values() for phrase in phrases)


def test_each_list_is_ranked_best_first_by_cosine_similarity():
    pool = tiny_pool()
    image = picture(1)
    found = describe_image(pool, image, CLIP)
    clip = pool.clip(CLIP[0])
    pixels = pil_to_unit(image.resize((clip.cut_size, clip.cut_size), Image.Resampling.LANCZOS), pool.device)
    with torch.no_grad():
        seen = F.normalize(clip.encode(pixels).float(), dim=-1)[0]
        for name in LISTS:
            tokens = clip.tokenizer([label(name, p) for p in word_lists()[name]]).to(pool.device)
            scores = F.normalize(clip.model.encode_text(tokens).float(), dim=-1) @ seen
            best = word_lists()[name][int(scores.argmax())]
            ranked = found.ranked[name]
            assert ranked[0].phrase == best
            assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)


def test_the_same_image_and_models_give_the_same_answer_and_another_image_another():
    pool = tiny_pool()
    first, again = describe_image(pool, picture(1), CLIP), describe_image(pool, picture(1), CLIP)
    assert first == again
    other = describe_image(pool, picture(2), CLIP)
    assert other.ranked != first.ranked


def test_the_answer_is_a_weighted_dd_prompt():
    found = describe_image(tiny_pool(), picture(3), CLIP)
    spec = RenderSpec.from_dict({"text_prompts": found.prompt})
    ranked = found.ranked
    assert [p.weight for p in spec.text_prompts] == [2, 1, 1, 1]
    assert spec.text_prompts[0].text == (f"{ranked['mediums'][0].phrase} by {ranked['artists'][0].phrase}, "
                                         f"{ranked['movements'][0].phrase}")
    assert [p.text for p in spec.text_prompts[1:]] == [r.phrase for r in ranked["flavors"][:3]]
    assert weighted_prompt(ranked) == found.prompt


def run_cli(*argv: str, capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_describe_command(parser.add_subparsers())
    code = cmd_describe(parser.parse_args(["describe", *argv]))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_disco_describe_prints_the_ranking_and_the_prompt(tmp_path, capsys):
    image = tmp_path / "a.png"
    picture(1).save(image)
    code, out, err = run_cli(str(image), "--models", "test-tiny", "--device", "cpu", "--clip-models", CLIP[0],
                             "--json", capsys=capsys)
    assert code == 0 and "the output is noise" in err  # the words are ranked by random models
    assert json.loads(out)["prompt"] == describe_image(tiny_pool(), picture(1), CLIP).prompt


@pytest.mark.parametrize("content, argv, words", [
    ("png", ("--clip-models", "ViT-Q-99"), "--clip-models: unknown CLIP model"),
    ("text", (), f"a.png is not a still {FORMAT_LIST} image; give it saved"),  # not Discord's "attach"
    ("missing", (), "a.png: there is no image file there"),
])
def test_disco_describe_refuses_in_one_line(tmp_path, capsys, content, argv, words):
    image = tmp_path / "a.png"
    if content == "png":
        picture(1).save(image)
    elif content == "text":
        image.write_bytes(b"not an image")
    code, _, err = run_cli(str(image), "--models", "test-tiny", *argv, capsys=capsys)
    assert code == 2 and words in err and err.count("\n") == 1
