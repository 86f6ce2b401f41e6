"""Rendering a study on test-tiny: a 2×2 study gives 4 cells sharing the seed and a grid;
a study cancelled after cell 2 resumes without re-rendering cells 1–2 and ends with a grid
byte-identical to an uninterrupted run's; `disco study` on the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from engine.diffusion.pipeline import DiscoPipeline
from engine.errors import Cancelled, SpecError
from engine.media.files import read_png_text
from engine.spec.study import StudySpec, build_study
from engine.study.render import cell_path, render_study
from tests.support import REPO_ROOT
from tests.support.cli import disco_here
from tests.support.engine import fast_spec, tiny_pool

ROOT = REPO_ROOT
# The cheapest render that still runs every stage: 3 steps, one cut per step.
TINY = dict(steps=3, skip_steps=0, cut_overview="[1]*1000", cut_innercut="[0]*1000",
            cut_icgray_p="[0]*1000", use_secondary_model=False, seed=5)


def study_2x2() -> StudySpec:
    return build_study(fast_spec(**TINY), "clip_guidance_scale=1000,8000", "eta=0,1")


class CountingPipeline(DiscoPipeline):
    def __init__(self, pool, cancel_after: int | None = None):
        super().__init__(pool)
        self.calls: list[float] = []
        self.cancel_after = cancel_after

    def __call__(self, spec, **kwargs):
        if self.cancel_after is not None and len(self.calls) == self.cancel_after:
            raise Cancelled("simulated crash")
        self.calls.append(spec.clip_guidance_scale)
        return super().__call__(spec, **kwargs)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("study_full")
    progress = []
    result = render_study(tiny_pool(), study_2x2(), out,
                          callback=lambda k, n, info: progress.append((k, n, info is None)))
    return out, result, progress


def test_2x2_gives_four_cells_sharing_the_seed_and_a_grid(full_run):
    out, result, progress = full_run
    assert result.cells == [cell_path(out, k) for k in (1, 2, 3, 4)]
    assert result.rendered == [1, 2, 3, 4] and result.grid == out / "grid.png"
    specs = [json.loads(read_png_text(p)["disco_settings"]) for p in result.cells]
    assert {s["seed"] for s in specs} == {5}
    assert [(s["clip_guidance_scale"], s["eta"]) for s in specs] == [
        (1000, 0), (8000, 0), (1000, 1), (8000, 1)]
    assert StudySpec.from_json(read_png_text(result.grid)["disco_study"]) == study_2x2()
    assert (out / "partial_grid.png").exists() and not (out / "work").exists()
    # Progress: "cell k of 4" with steps, then one None per finished cell.
    assert {n for _, n, _ in progress} == {4}
    assert [k for k, _, done in progress if done] == [1, 2, 3, 4]


def test_resume_after_a_crash_renders_only_the_missing_cells(full_run, tmp_path):
    _, uninterrupted, _ = full_run
    first = CountingPipeline(tiny_pool(), cancel_after=2)
    with pytest.raises(Cancelled):
        render_study(tiny_pool(), study_2x2(), tmp_path, pipeline=first)
    assert first.calls == [1000, 8000]
    assert [cell_path(tmp_path, k).exists() for k in (1, 2, 3, 4)] == [True, True, False, False]
    assert (tmp_path / "partial_grid.png").exists() and not (tmp_path / "grid.png").exists()

    second = CountingPipeline(tiny_pool())
    result = render_study(tiny_pool(), study_2x2(), tmp_path, pipeline=second)
    assert second.calls == [1000, 8000] and result.rendered == [3, 4]  # cells 3 and 4 only
    assert result.grid.read_bytes() == uninterrupted.grid.read_bytes()


def test_a_folder_holding_another_study_is_refused(full_run):
    out, _, _ = full_run
    other = build_study(fast_spec(**TINY), "clip_guidance_scale=1000,9000")
    with pytest.raises(SpecError, match="different study"):
        render_study(tiny_pool(), other, out)


@pytest.mark.e2e
def test_cli_study(tmp_path, capsys):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(tmp_path / "models")}
    base = [sys.executable, "-m", "disco", "study", "a lighthouse", "--models", "test-tiny",
            "--device", "cpu", "--width", "64", "--height", "64", "--steps", "4", "--seed", "3",
            "--set", "cutn_batches=1", "--set", "clip_models=ViT-B-32::openai",
            "--set", "use_secondary_model=false", "--out", str(tmp_path / "s")]
    out = subprocess.run(base + ["--x", "sampling_mode=ddim,plms"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    assert "cell 2 of 2" in out.stderr
    assert out.stdout.strip().startswith(str(tmp_path / "s" / "grid.png"))
    assert len(list((tmp_path / "s" / "cells").glob("*.png"))) == 2
    bad = disco_here(capsys, *base[3:], "--x", "sampling_mode=ddim,euler")  # a refusal: no child needed
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: x axis: sampling_mode value 'euler'")


def test_cli_study_run_again_without_a_seed_resumes_with_the_recorded_seed(tmp_path, capsys):
    from PIL import Image

    from disco.cli import build_parser, main
    from engine.spec.sources import build_spec

    out = tmp_path / "s"
    argv = ["study", "a lighthouse", "--models", "test-tiny", "--device", "cpu", "--width", "64",
            "--height", "64", "--steps", "3", "--x", "eta=0,1", "--out", str(out), "--no-progress"]
    first = build_study(build_spec(build_parser().parse_args(argv))[0], "eta=0,1")
    out.mkdir()
    (out / "study.json").write_text(first.to_json(), encoding="utf-8")
    for k in (1, 2):  # both cells finished by that first run
        cell_path(out, k).parent.mkdir(exist_ok=True)
        Image.new("RGB", (64, 64)).save(cell_path(out, k))
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"seed {first.base.seed}" in captured.out and "2 kept from an earlier run" in captured.out
    assert f"seed {first.base.seed}: the seed of the study already in" in captured.err


def test_an_unusable_image_on_an_axis_is_refused_before_the_first_cell(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 64), "gray").save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("not an image")
    study = build_study(fast_spec(**{**TINY, "skip_steps": 1}),
                        f"init_image={tmp_path / 'good.png'},{tmp_path / 'bad.png'}")
    pipeline = CountingPipeline(tiny_pool())
    with pytest.raises(SpecError, match="init_image: .*bad.png.* is not a still PNG"):
        render_study(tiny_pool(), study, tmp_path / "out", pipeline=pipeline)
    assert pipeline.calls == [] and not (tmp_path / "out").exists()
