"""A parameter study (job kind 'study') through the engine process on a real SQLite file and the
test-tiny models: grid + cells as artifacts, cell-by-cell progress, cancel part-way, and the
finished cells' GPU time billed even when the study does not finish."""
from __future__ import annotations

import asyncio

import pytest
from PIL import Image

from engine.errors import ModelError
from engine.spec.render import SCHEMA_VERSION
from engine.spec.study import build_study
from storage import JobRequest
from tests.support.engine import fast_spec
from tests.support.jobs import (
    OWNER,
    blob_bytes,
    blob_file,
    cancel_after_first_unit,
    job_files,
    names,
    run_reporting,
    with_db,
    worker,
)


def study_request(x: str, y: str | None = None, steps: int = 4, **base) -> JobRequest:
    study = build_study(fast_spec(steps=steps, seed=5, **base), x, y)
    return JobRequest(guild_id=1, channel_id=2, user_id=3, kind="study", spec_json=study.to_json(),
                      spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64,
                      steps=steps, frames=study.n_cells, seed=5)



def test_a_study_completes_with_grid_and_cells_and_reports_each_cell(tmp_path):
    long_prompt = "a lighthouse in a storm, " + "dramatic light, " * 24 + "trending on artstation"  # 82 tokens
    job, ledger, seen = run_reporting(tmp_path, study_request("clip_guidance_scale=1000,8000",
                                                              text_prompts=["a pier", long_prompt]))
    assert job.state == "succeeded", job.error_message
    assert job.notes == ("CLIP reads 77 tokens of a prompt; it did not read the end of prompt 2: “…dramatic light, "
                         "trending on artstation” — shorten it or split it into weighted prompts",)  # once for both cells
    assert names(job.artifacts) == ("grid.png", "cells/01.png", "cells/02.png")
    assert all(blob_file(tmp_path, p).is_file() for p in job.artifacts)
    assert Image.open(blob_file(tmp_path, job.artifacts[1])).size == (64, 64)
    assert {(frame, frames) for frame, frames, _ in seen} == {(0, 2), (1, 2)}
    assert job.progress_frame == 1 and job.progress_frames == 2 and job.progress_step == 4
    assert names([job.preview_path]) == ("partial_grid.png",)
    # Each cell was billed as it finished; complete billed only the balance.
    charges = [e for e in ledger if e.kind == "charge"]
    assert len(charges) == 3 and abs(sum(e.gpu_seconds for e in charges) - job.gpu_seconds) < 1e-6


def test_cancel_mid_study_stops_keeps_the_finished_cells_billed_and_delivers_them(tmp_path):
    job, status = cancel_after_first_unit(tmp_path, study_request("clip_guidance_scale=1000,8000"))
    files = job_files(tmp_path, job.id)
    assert job.state == "cancelled"
    assert files.get("cells/01.png") == "cell" and "cells/02.png" not in files and "grid.png" not in files
    # What the member paid for comes back, as a cancelled animation's frames do: the partial grid.
    assert names(job.artifacts) == ("partial_grid.png",)
    assert Image.open(blob_file(tmp_path, job.artifacts[0])).size[0] >= 64
    assert status["day"].user_used > 0  # cell 1's GPU time stays charged


def test_a_failure_after_a_cell_refunds_only_the_unbilled_rest(tmp_path, monkeypatch):
    import engine.study.render as study_render

    real = study_render.DiscoPipeline.__call__
    calls = []

    def second_cell_breaks(self, spec, **kwargs):
        calls.append(spec)
        if len(calls) == 2:
            raise ModelError("the model file went missing")  # not retryable: the job fails
        return real(self, spec, **kwargs)
    monkeypatch.setattr(study_render.DiscoPipeline, "__call__", second_cell_breaks)

    async def body(db):
        job = await db.jobs.enqueue(study_request("clip_guidance_scale=1000,8000"))
        claimed = await db.leases.claim(OWNER)
        await worker(db, tmp_path).process(claimed)
        return await db.jobs.get(job.id), await db.quotas.ledger(1, user_id=3)

    job, ledger = asyncio.run(with_db(tmp_path, body))
    assert job.state == "failed" and "went missing" in job.error_message
    # fail() refunded what was not billed yet (nothing) and left cell 1's partial charge alone.
    assert [e.kind for e in ledger] == ["charge"] and ledger[0].gpu_seconds > 0


@pytest.mark.e2e
def test_kill_9_mid_study_loses_at_most_the_cell_in_progress(tmp_path):
    """A real engine subprocess is killed after the first cell; the next engine resumes the
    study without rendering that cell again, and the grid equals an uninterrupted study's."""
    import json

    from tests.engine.jobs.test_worker import kill_after_first_unit_and_resume

    async def enqueue(db):
        # Cells keep no checkpoint: 4 steps and 2 cuts each still leave two cells to kill in.
        request = study_request("clip_guidance_scale=1000,4000,8000", steps=4, cut_overview="[2]*1000",
                                cut_innercut="[2]*1000")
        return [(await db.jobs.enqueue(request)).id for _ in range(2)]

    crashed, reference = asyncio.run(with_db(tmp_path, enqueue))
    resumed, whole = kill_after_first_unit_and_resume(tmp_path, crashed, reference, "cells/01.png")
    grid = blob_bytes(tmp_path, json.loads(resumed["artifacts_json"])[0])
    assert grid == blob_bytes(tmp_path, json.loads(whole["artifacts_json"])[0])


def test_a_study_stops_with_its_partial_grid_when_the_quota_runs_out(tmp_path):
    async def body(db):
        await db.quotas.set_limit(1, "member", "day", 0.001)
        job = await db.jobs.enqueue(study_request("clip_guidance_scale=1000,4000,8000"))
        await worker(db, tmp_path).run(burst=True)
        return await db.jobs.get(job.id)

    job = asyncio.run(with_db(tmp_path, body))
    assert job.state == "failed" and job.error_code == "quota_exceeded", job.error_message
    assert job.error_message.startswith("stopped after cell 1 of 3 cells")
    assert names(job.artifacts) == ("partial_grid.png",)
    assert "cells/02.png" not in job_files(tmp_path, job.id)


def test_a_database_outage_while_billing_a_cell_waits_and_never_bills_twice(tmp_path, caplog):
    """PostgreSQL restarts while a finished cell is billed: once after the charge committed
    (the answer is lost), once before it reached the server. The render waits and tries again,
    the study completes on its first attempt, and each cell is billed exactly once."""
    from storage import DatabaseUnavailable

    async def body(db):
        job = await db.jobs.enqueue(study_request("clip_guidance_scale=1000,8000"))
        real, calls = db.leases.charge_partial, []

        async def restarting(*args, **kwargs):
            calls.append(kwargs["note"])
            if len(calls) == 1:
                await real(*args, **kwargs)  # committed; the reply never arrives
            if len(calls) in (1, 3):
                raise DatabaseUnavailable("PostgreSQL at db is not reachable (restarting)")
            return await real(*args, **kwargs)
        db.leases.charge_partial = restarting
        w = worker(db, tmp_path)
        w.config.poll_seconds = 0.05
        assert await w.run(burst=True) == 1
        return await db.jobs.get(job.id), await db.quotas.ledger(1, user_id=3), calls

    with caplog.at_level("WARNING", logger="disco.engine"):
        job, ledger, calls = asyncio.run(with_db(tmp_path, body))
    assert job.state == "succeeded" and job.attempt == 1, job.error_message
    assert len(calls) == 4  # each cell's charge was tried again after the outage
    charges = [e for e in ledger if e.kind == "charge"]
    assert len(charges) == 3 and abs(sum(e.gpu_seconds for e in charges) - job.gpu_seconds) < 1e-6
    assert sum("not billed yet" in r.getMessage() for r in caplog.records) == 2
