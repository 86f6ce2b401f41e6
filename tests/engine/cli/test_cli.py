"""The `disco` command as a user runs it: render on test-tiny from a fresh checkout (a child
process, `python -m disco`), a DD settings file, bench JSON, models listing, and bad input
answered with one clear line and no traceback (in-process: tests.support.cli.disco_here)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import FIXTURES, REPO_ROOT
from tests.support.cli import disco_here

ROOT = REPO_ROOT
pytestmark = pytest.mark.e2e  # `disco` in a child process, or rendering on test-tiny


def disco(*args: str, tmp_path: Path, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(tmp_path / "models")}
    return subprocess.run([sys.executable, "-m", "disco", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


LONG_PROMPT = "a lighthouse in a storm, " + "dramatic light, " * 24 + "trending on artstation"  # 82 tokens


def test_render_test_tiny_without_downloads(tmp_path):
    out = disco("render", f"a lighthouse:2 | yellow:-0.5 | {LONG_PROMPT}:0.5", "--models", "test-tiny",
                "--steps", "6", "--width", "64", "--height", "64", "--seed", "3", "--out", str(tmp_path / "out"),
                "--no-progress", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "noise" in out.stderr  # the CLI says the tiny models make noise
    assert ("note: CLIP reads 77 tokens of a prompt; it did not read the end of prompt 3: “…dramatic light, "
            "trending on artstation”") in out.stderr  # as a job's result says it
    pngs = list((tmp_path / "out").glob("*.png"))
    assert [p.name for p in pngs if p.name != "progress.png"] == ["TimeToDisco(0)_0.png"]
    assert "seed 3" in out.stdout


def test_render_with_dd_settings_file_and_set(tmp_path, capsys):
    settings = FIXTURES / "dd57_lantern_settings.txt"
    out = disco_here(capsys, "render", "--settings", str(settings), "--models", "test-tiny", "--steps", "4",
                     "--width", "64", "--height", "64", "--set", "skip_steps=0", "--set", "cutn_batches=1",
                     "--out", str(tmp_path / "out"), "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "ignored for still images" in out.stderr
    assert len(list((tmp_path / "out").glob("*_settings.txt"))) == 1
    assert len([p for p in (tmp_path / "out").glob("*_?.png")]) == 1  # one image, not DD's 50


@pytest.mark.parametrize("args,expected", [
    (["render", "x", "--steps", "5000"], "steps"),
    (["render", "x", "--set", "clip_guidance_scle=5"], "clip_guidance_scale"),
    (["render", "x", "--set", "cut_overview=[12]*9**9**9"], "cut_overview"),
    (["render", "a:1 | b:-1", "--models", "test-tiny"], "sum"),
    (["render", "x", "--models", "no-such-set"], "model set"),
    (["render", "x", "--settings", "/nonexistent.json"], "--settings"),
    (["render", "x", "--settings", str(FIXTURES / "dd" / "refused_keyframed_scale.json")],
     "clip_guidance_scale: '0: (5000), 50: (3000)' is keyframed"),
    (["render", "x", "--models", "dd-default", "--width", "64", "--height", "64"], "disco models download"),
    (["render", "x", "--device", "cuda:0", "--models", "test-tiny"], "--device"),
    (["render", "x", "--models", "test-tiny", "--steps", "4", "--out", "/proc/version"], "--out"),
    (["render", "x", "--batches", "0"], "--batches: give a whole number from 1 to 100"),
    (["render", "x", "--precision", "fp16", "--models", "test-tiny", "--device", "cpu"], "CUDA"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, args, expected):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "out")]
    out = disco_here(capsys, *args)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    assert expected in out.stderr


def test_bench_prints_one_json_object(capfd):  # capfd: nothing else, C code's output included
    out = disco_here(capfd, "bench", "--models", "test-tiny", "--width", "64", "--height", "64", "--steps", "3")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["seconds_per_step"] > 0 and report["peak_rss_mb"] > 0
    assert report["model_load_seconds"] >= 0 and report["peak_cuda_mb"] is None
    assert report["settings"]["width"] == 64


def test_models_list_json(capfd):
    out = disco_here(capfd, "models", "list", "--json")
    assert out.returncode == 0, out.stderr
    listing = json.loads(out.stdout)
    text = json.dumps(listing)
    assert "512x512_diffusion_uncond_finetune_008100" in text and "test-tiny" in text


def test_bench_animation_prints_per_frame_costs(capfd):
    out = disco_here(capfd, "bench", "--animation", "--models", "test-tiny", "--width", "64", "--height", "64",
                     "--repeats", "1", "--encode-frames", "4")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert set(report["seconds_per_frame"]) == {"warp_2d", "depth", "warp_3d", "vr_eyes", "encode_per_frame"}
    assert all(v >= 0 for v in report["seconds_per_frame"].values()) and report["device"] == "cpu"
