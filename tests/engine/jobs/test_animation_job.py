"""An animation (job kind 'animation') through the engine process on a real SQLite file and the
test-tiny models: MP4 + preview as artifacts, per-frame progress with the latest frame as the
preview, per-frame billing, cancel part-way, `init_frame` as frame 0, and a kill -9 of a real
engine mid-animation resuming to the same MP4 frames."""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from PIL import Image

from engine.media.video import probe_video
from engine.spec.animation import AnimationSpec
from engine.spec.render import SCHEMA_VERSION
from storage import JobRequest
from tests.support.engine import ANIMATION_FAST, ANIMATION_RENDER
from tests.support.jobs import (
    blob_file,
    cancel_after_first_unit,
    job_file,
    job_files,
    names,
    run_reporting,
    with_db,
    worker,
)


def animation_request(frames: int = 3, **changes) -> JobRequest:
    anim = AnimationSpec.from_dict({"render": ANIMATION_RENDER, **ANIMATION_FAST, "max_frames": frames, **changes})
    return JobRequest(guild_id=1, channel_id=2, user_id=3, kind="animation", spec_json=anim.to_json(),
                      spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64,
                      steps=ANIMATION_RENDER["steps"], frames=frames, seed=ANIMATION_RENDER["seed"])


def frame_file(data, job_id: str, n: int):
    sha, _ = job_file(data, job_id, f"frames/{n:04}.png")
    return data / "blobs" / sha[:2] / sha


def test_an_animation_completes_with_mp4_and_reports_every_frame(tmp_path):
    long_prompt = "a lighthouse in a storm, " + "dramatic light, " * 24 + "trending on artstation"  # 82 tokens
    prompts = {0: ["a lighthouse"], 2: [long_prompt]}
    job, ledger, seen = run_reporting(tmp_path, animation_request(frames=3, text_prompts=prompts))
    assert job.state == "succeeded", job.error_message
    assert job.notes == ("CLIP reads 77 tokens of a prompt; it did not read the end of the prompt at frame 2: "
                         "“…dramatic light, trending on artstation” — shorten it or split it into weighted prompts",)
    assert names(job.artifacts) == ("animation.mp4", "preview.gif")
    info = probe_video(blob_file(tmp_path, job.artifacts[0]))
    assert (info.frames, info.width, info.height, round(info.fps)) == (3, 64, 64, ANIMATION_FAST["fps"])
    frames = {name for name, role in job_files(tmp_path, job.id).items() if role == "frame"}
    assert frames == {"frames/0000.png", "frames/0001.png", "frames/0002.png"}
    assert {(frame, frames) for frame, frames, _ in seen} == {(0, 3), (1, 3), (2, 3)}
    assert job.progress_frame == 2 and job.progress_frames == 3
    # The preview is the latest finished frame, shrunk copy of it (64 px stays 64 px).
    assert names([job.preview_path]) == ("preview.png",)
    last = np.asarray(Image.open(frame_file(tmp_path, job.id, 2)).convert("RGB"))
    assert np.array_equal(np.asarray(Image.open(blob_file(tmp_path, job.preview_path)).convert("RGB")), last)
    # Each frame was billed as it finished; complete billed only the balance.
    charges = [e for e in ledger if e.kind == "charge"]
    assert len(charges) == 4 and abs(sum(e.gpu_seconds for e in charges) - job.gpu_seconds) < 1e-6


def test_init_frame_is_frame_zero_unchanged_and_only_later_frames_diffuse(tmp_path):
    source = tmp_path / "still.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(source)

    async def body(db):
        job = await db.jobs.enqueue(animation_request(frames=2, init_frame=str(source)))
        await worker(db, tmp_path).run(burst=True)
        return await db.jobs.get(job.id)

    job = asyncio.run(with_db(tmp_path, body))
    assert job.state == "succeeded", job.error_message
    first = np.asarray(Image.open(frame_file(tmp_path, job.id, 0)).convert("RGB"))
    assert np.array_equal(first, np.asarray(Image.open(source).convert("RGB")))
    assert not np.array_equal(np.asarray(Image.open(frame_file(tmp_path, job.id, 1)).convert("RGB")), first)


def test_init_frame_costs_no_steps_and_is_refused_for_video_input(tmp_path):
    with_frame = AnimationSpec.from_dict({"render": ANIMATION_RENDER, **ANIMATION_FAST, "init_frame": "x.png"})
    assert with_frame.diffused_frames()[0] is False
    from engine.errors import SpecError
    with pytest.raises(SpecError, match="init_frame.*Video Input takes its first frame"):
        AnimationSpec.from_dict({"render": ANIMATION_RENDER, **ANIMATION_FAST, "init_frame": "x.png",
                                 "animation_mode": "Video Input", "video_init_path": "clip.mp4"})


def test_cancel_mid_animation_keeps_the_finished_frames_billed_and_delivered(tmp_path):
    job, status = cancel_after_first_unit(tmp_path, animation_request(frames=4))
    files = job_files(tmp_path, job.id)
    assert job.state == "cancelled"
    assert "frames/0000.png" in files and "frames/0003.png" not in files and "animation.mp4" not in files
    # The frames finished before the stop are still delivered, as partial.mp4.
    finished = sum(role == "frame" for role in files.values())
    assert names(job.artifacts) == ("partial.mp4",)
    assert probe_video(blob_file(tmp_path, job.artifacts[0])).frames == finished >= 1
    assert status["day"].user_used > 0  # frame 0's GPU time stays charged


@pytest.mark.e2e
def test_kill_9_mid_animation_resumes_from_the_last_finished_frame(tmp_path):
    """A real engine subprocess is killed after frame 0; the next engine resumes without
    rendering it again, and every frame equals an uninterrupted animation's."""
    from tests.engine.jobs.test_worker import kill_after_first_unit_and_resume

    async def enqueue(db):
        return [(await db.jobs.enqueue(animation_request(frames=3))).id for _ in range(2)]

    crashed, reference = asyncio.run(with_db(tmp_path, enqueue))
    resumed, _ = kill_after_first_unit_and_resume(tmp_path, crashed, reference, "frames/0000.png")
    for n in range(3):
        a, b = (job_file(tmp_path, job, f"frames/{n:04}.png")[0] for job in (crashed, reference))
        assert a == b, n  # the same PNG bytes
    assert probe_video(blob_file(tmp_path, json.loads(resumed["artifacts_json"])[0])).frames == 3


def test_an_animation_stops_with_its_frames_when_the_quota_runs_out(tmp_path):
    """A role quota (the requester's roles as queued) smaller than one frame: the enqueue check
    passes (nothing used yet), frame 0 is billed, and the animation stops there instead of
    running its other frames past the budget."""
    async def body(db):
        await db.quotas.set_limit(1, "role", "day", 0.001, subject_id=42)
        job = await db.jobs.enqueue(animation_request(frames=3), role_ids=[42])
        await worker(db, tmp_path).run(burst=True)
        return await db.jobs.get(job.id), await db.quotas.ledger(1, user_id=3)

    job, ledger = asyncio.run(with_db(tmp_path, body))
    assert job.state == "failed" and job.error_code == "quota_exceeded", job.error_message
    assert job.error_message.startswith("stopped after frame 1 of 3 frames") and "(quota)" in job.error_message
    assert names(job.artifacts) == ("partial.mp4",)
    assert probe_video(blob_file(tmp_path, job.artifacts[0])).frames == 1
    assert "frames/0001.png" not in job_files(tmp_path, job.id)
    assert [e.kind for e in ledger] == ["charge"]  # frame 0 stays billed; nothing else ran
