"""`disco jobs` and `disco engine` from the command line, on a real data folder. A child process
(`python -m disco`) where the process is the point: the first submit (the entry point, and
DISCO_DATA_DIR read from the environment) and one engine; the other commands run in-process
(`disco.cli.main`, ~1 s of start-up each saved, ~7 s for an engine)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO_ROOT
from tests.support.cli import disco_here

ROOT = REPO_ROOT
pytestmark = pytest.mark.e2e  # `disco` as a child process, and an engine rendering


def disco(*args: str, data: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_DATA_DIR": str(data), **(env or {})}
    return subprocess.run([sys.executable, "-m", "disco", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=240)


@pytest.fixture
def here(capsys, monkeypatch):
    """`disco ARGS` in this process (tests.support.cli), on the data folder `data`."""
    def run(*args: str, data: Path) -> subprocess.CompletedProcess:
        monkeypatch.setenv("DISCO_DATA_DIR", str(data))
        return disco_here(capsys, *args)
    return run


def test_submit_list_show_cancel_retry(tmp_path, here):
    long_prompt = "a lighthouse in a storm, " + "dramatic light, " * 24 + "trending on artstation"  # 82 tokens
    submitted = disco("jobs", "submit", f"{long_prompt}:2 | yellow:-0.5", "--guild", "1", "--channel", "2",
                      "--user", "3", "--models", "test-tiny", "--steps", "6", "--width", "64",
                      "--height", "64", data=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert (tmp_path / "disco.db").exists()  # DISCO_DATA_DIR was honoured

    listing = json.loads(here("jobs", "list", "--json", data=tmp_path).stdout)
    assert [j["id"] for j in listing] == [job_id] and listing[0]["state"] == "queued"
    assert listing[0]["seed"] is not None  # settled at submit time

    cancelled = here("jobs", "cancel", job_id, data=tmp_path)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    retried = here("jobs", "retry", job_id, data=tmp_path)
    assert retried.returncode == 0 and "queued" in retried.stdout

    engine = disco("engine", "--burst", "--models", "test-tiny", "--device", "cpu", data=tmp_path)
    assert engine.returncode == 0, engine.stderr
    shown = json.loads(here("jobs", "show", job_id, "--json", data=tmp_path).stdout)
    assert shown["state"] == "succeeded" and shown["progress"]["step"] == shown["progress"]["total"] == 6
    assert shown["artifacts"][0].startswith("blob:") and shown["error"] is None
    text = here("jobs", "show", job_id, data=tmp_path).stdout
    assert shown["notes"] == ["CLIP reads 77 tokens of a prompt; it did not read the end of prompt 1: “…dramatic "
                              "light, trending on artstation” — shorten it or split it into weighted prompts"]
    assert "state: succeeded" in text and shown["artifacts"][0] in text and shown["notes"][0] in text

    out = tmp_path / "results"
    out.mkdir()
    fetched = here("jobs", "fetch", job_id, "--out", str(out), data=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    (png,) = out.iterdir()
    assert png.name == shown["artifacts"][0].rsplit("/", 1)[1] and png.read_bytes().startswith(b"\x89PNG")
    again = here("jobs", "fetch", job_id, "--out", str(out), data=tmp_path)
    assert again.returncode == 2 and "exists already" in again.stderr  # never overwritten


def test_refusals_are_one_line(tmp_path, here):
    unknown = here("jobs", "show", "NOSUCHJOB", data=tmp_path)
    assert unknown.returncode == 2 and "no job" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = here("jobs", "submit", "x", "--guild", "1", "--channel", "2", "--user", "3",
               "--steps", "5000", data=tmp_path)
    assert bad.returncode == 2 and "steps" in bad.stderr and "Traceback" not in bad.stderr
    (tmp_path / "bad.toml").write_text("[engine]\nlease_seconds = 'soon'\n")
    config = here("engine", "--burst", "--config", str(tmp_path / "bad.toml"), data=tmp_path)
    assert config.returncode == 2 and "lease_seconds" in config.stderr
    (tmp_path / "foreign.db").write_text("not a database")
    foreign = here("jobs", "list", "--data-dir", str(tmp_path / "x"), data=tmp_path)
    assert foreign.returncode == 0  # a new folder gets a new database
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "disco.db").write_text("not a database")
    refused = here("jobs", "list", "--data-dir", str(tmp_path / "y"), data=tmp_path)
    assert refused.returncode == 2 and "not a SQLite database" in refused.stderr
    assert (tmp_path / "y" / "disco.db").read_text() == "not a database"  # never reset


def test_submit_a_saved_animation_and_study_and_render_them(tmp_path, here):
    from engine.spec.animation import AnimationSpec
    from engine.spec.render import RenderSpec
    from engine.spec.study import build_study

    render = {"text_prompts": "a lighthouse", "width": 64, "height": 64, "steps": 4, "cutn_batches": 1,
              "clip_models": ["ViT-B-32::openai"], "cut_overview": "[2]*1000", "cut_innercut": "[2]*1000"}
    anim = AnimationSpec.from_dict({"render": render, "max_frames": 2, "frames_scale": 0})
    (tmp_path / "anim.json").write_text(anim.to_json())
    study = build_study(RenderSpec.from_dict({**render, "seed": 4}), "tv_scale=0,10")
    (tmp_path / "study.json").write_text(study.to_json())
    ids = []
    for name in ("anim.json", "study.json"):
        done = here("jobs", "submit", "--spec", str(tmp_path / name), "--guild", "1", "--channel", "2",
                    "--user", "3", "--models", "test-tiny", data=tmp_path)
        assert done.returncode == 0, done.stderr
        ids.append(done.stdout.strip())
    listing = {j["id"]: j for j in json.loads(here("jobs", "list", "--json", data=tmp_path).stdout)}
    assert listing[ids[0]]["kind"] == "animation" and listing[ids[0]]["seed"] is not None
    assert listing[ids[1]]["kind"] == "study" and listing[ids[1]]["seed"] == 4
    engine = here("engine", "--burst", "--models", "test-tiny", "--device", "cpu", data=tmp_path)
    assert engine.returncode == 0, engine.stderr
    animation, grid = (json.loads(here("jobs", "show", i, "--json", data=tmp_path).stdout) for i in ids)
    assert animation["state"] == "succeeded" and animation["artifacts"][0].endswith("animation.mp4")
    assert grid["state"] == "succeeded" and grid["artifacts"][0].endswith("grid.png")
    both = here("jobs", "submit", "x", "--spec", str(tmp_path / "anim.json"), "--guild", "1", "--channel", "2",
                "--user", "3", data=tmp_path)
    assert both.returncode == 2 and "not both" in both.stderr


def test_a_saved_video_animation_is_decoded_whole_before_it_is_queued(tmp_path):
    """`disco jobs submit --spec` of a video animation: a video whose end is zeroed (every packet
    there, its data gone) was queued, and the worker found it when the render reached it."""
    import numpy as np

    from commands.cli_jobs import read_job_file
    from engine.errors import SpecError
    from engine.media.video import encode_mp4
    from engine.spec.animation import AnimationSpec

    clip = encode_mp4([np.full((32, 32, 3), 20 * i, np.uint8) for i in range(12)], tmp_path / "c.mp4", fps=6)
    data = clip.read_bytes()
    clip.write_bytes(data[:len(data) // 2] + bytes(len(data) - len(data) // 2))
    saved = tmp_path / "animation.json"
    saved.write_text(json.dumps(AnimationSpec.from_dict(
        {"animation_mode": "Video Input", "video_init_path": str(clip), "render": {}}).to_dict()))
    with pytest.raises(SpecError, match="damaged or cut short"):
        read_job_file(str(saved))
