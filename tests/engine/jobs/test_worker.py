"""The engine process against a real SQLite file: claim → render → complete, cancel, OOM
retry, bad settings, and crashes (kill -9 of a real engine subprocess, a poison job)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from engine.jobs.context import WorkerConfig
from engine.jobs.worker import EngineWorker
from engine.media.files import read_png_text
from engine.spec.render import SCHEMA_VERSION, RenderSpec
from storage import Database, JobRequest
from tests.support import REPO_ROOT
from tests.support.engine import fast_spec, tiny_pool
from tests.support.jobs import blob_bytes, blob_file, job_file

ROOT = REPO_ROOT


def request(spec: RenderSpec | str, **changes) -> JobRequest:
    spec_json = spec if isinstance(spec, str) else spec.to_json()
    fields = dict(guild_id=1, channel_id=2, user_id=3, kind="still", spec_json=spec_json,
                  spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64, steps=12)
    return JobRequest(**{**fields, **changes})


async def with_db(tmp_path, body):
    db = await Database.open(tmp_path / "disco.db")
    try:
        return await body(db)
    finally:
        await db.close()


def worker(db, tmp_path, **config) -> EngineWorker:
    return EngineWorker(db, tiny_pool(), tmp_path, owner="engine:test:1",
                        config=WorkerConfig(**{"checkpoint_every": 4, "progress_every": 0, **config}))


def test_burst_renders_every_queued_job(tmp_path):
    async def body(db):
        first = await db.jobs.enqueue(request(fast_spec(seed=1)))
        second = await db.jobs.enqueue(request(fast_spec(seed=2, n_batches=2)))
        assert await worker(db, tmp_path).run(burst=True) == 2
        return [await db.jobs.get(j.id) for j in (first, second)]

    first, second = asyncio.run(with_db(tmp_path, body))
    assert first.state == second.state == "succeeded"
    assert len(first.artifacts) == 1 and len(second.artifacts) == 2
    assert all(blob_file(tmp_path, p).exists() for p in first.artifacts + second.artifacts)
    assert first.progress_step == first.progress_total == 12 and first.gpu_seconds > 0
    assert blob_file(tmp_path, first.checkpoint_path).exists() and first.seconds_per_step > 0
    assert not any((tmp_path / "scratch").rglob("*.png"))  # an attempt's scratch folder goes with it


def test_serve_says_it_is_up_and_where_it_waits(tmp_path, caplog):
    from engine.jobs.worker import serve

    with caplog.at_level("INFO", logger="disco.engine"):
        assert asyncio.run(serve(tmp_path, tiny_pool(), owner="engine:test:2", burst=True)) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("engine:test:2: draining the queue for jobs in ")
               and str(tmp_path / "disco.db") in line and "model set test-tiny on cpu" in line
               for line in lines), lines


def test_an_engine_whose_data_folder_is_not_writable_refuses_to_start_and_claims_nothing(tmp_path):
    """A worker's --data-dir holds its scratch folders. One it cannot write (a volume another
    user owns) used to claim every job and fail it at once, three attempts in a second: a
    black hole that turned the whole queue dead. It now refuses to start, naming the fix."""
    from engine.errors import EngineError
    from engine.jobs.worker import serve

    (tmp_path / "a-file").write_text("")
    database = tmp_path / "db" / "disco.db"

    async def queue():
        async with await Database.open(database) as db:
            return await db.jobs.enqueue(request(fast_spec(seed=1)))
    job = asyncio.run(queue())
    with pytest.raises(EngineError, match=r"cannot write the data folder .*a-file/data .*; point "
                                          r"--data-dir at a folder this user can write"):
        asyncio.run(serve(tmp_path / "a-file" / "data", tiny_pool(), burst=True, database=str(database)))

    async def after():
        async with await Database.open(database) as db:
            return await db.jobs.get(job.id)
    untouched = asyncio.run(after())
    assert (untouched.state, untouched.attempt) == ("queued", 0)


def test_the_bots_engine_stops_when_the_bot_is_gone(tmp_path, caplog):
    """The bot killed with SIGKILL (the OOM killer, outside Docker or systemd) left its engine
    running; the restarted bot started another, and two engines shared one GPU. The bot's
    supervisor names itself with --parent-pid and the engine stops once that is no longer its
    parent (handing back any job it runs)."""
    from bot.supervisor import EngineSupervisor
    from engine.jobs.worker import serve

    command = EngineSupervisor(None, tmp_path, ["--models", "test-tiny"]).command("engine:x:1:1")
    assert command[command.index("--parent-pid") + 1] == str(os.getpid())
    with caplog.at_level("WARNING", logger="disco.engine"):
        done = asyncio.run(asyncio.wait_for(serve(tmp_path, tiny_pool(), owner="engine:test:3",
                                                  parent_pid=999_999_999, parent_poll_s=0.05), 30))
    assert done == 0
    assert any("the bot (pid 999999999) that started this engine is gone" in r.getMessage()
               for r in caplog.records)


def test_intermediate_saves_through_the_queue_give_an_evolution_video(tmp_path):
    from engine.media.video import probe_video

    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=4, intermediate_saves=3)))
        await worker(db, tmp_path).run(burst=True)
        return await db.jobs.get(job.id)

    job = asyncio.run(with_db(tmp_path, body))
    image, video = job.artifacts
    assert image.endswith(".png") and video.endswith("_0_evolution.mp4")
    assert probe_video(blob_file(tmp_path, video)).frames == 3 + 4  # 3 partials, then the result for a second


def test_an_evolution_video_that_cannot_be_encoded_is_left_out_with_a_note(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from engine.errors import EngineError
    from engine.jobs import still

    (tmp_path / "partials").mkdir()
    for name in ("partials/TimeToDisco(0)_0-3.png", "TimeToDisco(0)_0.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)

    def refuses(frames, path, fps):
        raise EngineError("ffmpeg is gone")
    monkeypatch.setattr(still, "encode_mp4", refuses)
    notes = []
    ctx = SimpleNamespace(folder=tmp_path, note=notes.append)
    images = [str(tmp_path / "TimeToDisco(0)_0.png")]
    assert still._evolutions(ctx, fast_spec(intermediate_saves=3), images) == []
    assert notes == ["The evolution video of image 1 is left out: it could not be encoded."]


def test_job_without_seed_gets_a_stable_one(tmp_path):
    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=None)))
        await worker(db, tmp_path).run(burst=True)
        return await db.jobs.get(job.id)

    job = asyncio.run(with_db(tmp_path, body))
    settings = RenderSpec.from_json(read_png_text(blob_file(tmp_path, job.artifacts[0]))["disco_settings"])
    assert settings.seed is not None


def test_invalid_settings_fail_without_retry(tmp_path):
    async def body(db):
        job = await db.jobs.enqueue(request('{"steps": 5000}'))
        await worker(db, tmp_path).run(burst=True)
        return await db.jobs.get(job.id)

    job = asyncio.run(with_db(tmp_path, body))
    assert job.state == "failed" and job.error_code == "invalid_settings" and "steps" in job.error_message


def test_cancel_queued_never_starts_and_running_stops_within_a_step(tmp_path):
    async def body(db):
        queued = await db.jobs.enqueue(request(fast_spec(steps=60, seed=3)))
        await db.jobs.cancel(queued.id)
        running = await db.jobs.enqueue(request(fast_spec(steps=60, seed=4), steps=60))
        engine = worker(db, tmp_path)
        task = asyncio.create_task(engine.run(burst=True))
        while (await db.jobs.get(running.id)).progress_step < 3:
            await asyncio.sleep(0.02)
        await db.jobs.cancel(running.id)
        at_cancel = (await db.jobs.get(running.id)).progress_step
        await task
        return await db.jobs.get(queued.id), await db.jobs.get(running.id), at_cancel

    queued, running, at_cancel = asyncio.run(with_db(tmp_path, body))
    assert queued.state == "cancelled" and queued.attempt == 0
    assert running.state == "cancelled" and not running.artifacts
    assert running.progress_step <= at_cancel + 2  # the step in flight, then it stops


class OutOfMemoryFor:
    """Stands in for the pipeline: raises CUDA's out-of-memory error for the first `times` calls."""

    def __init__(self, pipeline, times: int):
        self.pipeline, self.times, self.specs, self.batch_cuts = pipeline, times, [], []

    def __call__(self, spec, **kwargs):
        self.specs.append(spec)
        self.batch_cuts.append(kwargs.get("batch_cuts", True))
        if len(self.specs) <= self.times:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return self.pipeline(spec, **kwargs)


@pytest.mark.parametrize("times", [1, 2])
def test_out_of_memory_retries_once_cheaper_then_fails_clearly(tmp_path, times):
    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(use_secondary_model=False)))
        engine = worker(db, tmp_path)
        engine.pipeline = OutOfMemoryFor(engine.pipeline, times)
        await engine.run(burst=True)
        return await db.jobs.get(job.id), engine.pipeline.specs

    job, specs = asyncio.run(with_db(tmp_path, body))
    assert len(specs) == 2 and specs[1].cutn_batches == 2 * specs[0].cutn_batches
    if times == 1:
        assert job.state == "succeeded"
        assert job.notes == ("Out of GPU memory at first; retried with cutn_batches 2 and half the cuts "
                             "per batch (the same cuts in all).",)
    else:
        assert job.state == "failed" and job.error_code == "out_of_memory"
        assert "smaller size" in job.error_message


def test_out_of_memory_with_cut_batches_retries_in_dd_loop_same_spec_and_a_resume_goes_that_way(tmp_path):
    """The retry is a note on the result, and a mark kept with the job (a blob): an attempt
    resuming the job after a crash renders the cheaper way from the start, so what the first
    kept (images, checkpoint) still fits, and the note is not lost."""
    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(cutn_batches=2, steps=4)))
        engine = worker(db, tmp_path)
        engine.pipeline = OutOfMemoryFor(engine.pipeline, 1)
        await engine.run(burst=True)
        tries = engine.pipeline
        mark = next(f for f in await db.blobs.job_files(job.id) if f.name == "out_of_memory.txt")
        resumed = await db.jobs.enqueue(request(fast_spec(cutn_batches=2, steps=4, seed=2)))
        await db.blobs.put(blob_bytes(tmp_path, mark.ref), mark.name, job_id=resumed.id, role="state")
        engine.pipeline = OutOfMemoryFor(tries.pipeline, 0)
        await engine.run(burst=True)
        return await db.jobs.get(job.id), tries, await db.jobs.get(resumed.id), engine.pipeline

    job, pipeline, resumed, resuming = asyncio.run(with_db(tmp_path, body))
    assert job.state == "succeeded"
    assert pipeline.specs[0] == pipeline.specs[1] and pipeline.batch_cuts == [True, False]
    assert job.notes == ("Out of GPU memory at first; retried with one cut batch per CLIP pass (the same "
                         "image, only slower).",)
    assert resuming.batch_cuts == [False]  # no first try the full way
    assert resumed.state == "succeeded" and resumed.notes == job.notes


# ---- real engine subprocesses ---------------------------------------------------------------

def engine_process(data: Path, *extra: str, scratch: Path | None = None) -> subprocess.Popen:
    """A real engine on the queue in `data`; with `scratch`, its own data folder is that one
    (its scratch files go there), and only the database is shared."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if scratch is not None:
        env["DISCO_DATABASE_URL"] = f"sqlite:///{data / 'disco.db'}"
    return subprocess.Popen([sys.executable, "-m", "disco", "engine", "--models", "test-tiny",
                             "--device", "cpu", "--data-dir", str(scratch or data), "--lease-seconds", "2",
                             "--checkpoint-every", "5", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def drain_here(data: Path, scratch: Path) -> int:
    """Another engine drains the queue in `data` (`disco engine --burst` with the settings of
    engine_process): `serve` in this test process, whose models were never near the killed
    engine, with `scratch` as its data folder, so only the database is shared. The engine
    process's start-up (its own checks) is tested elsewhere; here a second interpreter would
    only add its import time. Returns the jobs processed."""
    from engine.jobs.worker import serve

    return asyncio.run(serve(scratch, tiny_pool(), burst=True, database=f"sqlite:///{data / 'disco.db'}",
                             config=WorkerConfig(lease_seconds=2, checkpoint_every=5)))


def row(data: Path, job_id: str) -> sqlite3.Row:
    conn = sqlite3.connect(data / "disco.db", timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        conn.close()


def wait_for(predicate, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def wait_lease_out(data: Path, job_id: str) -> None:
    """Until the lease a killed engine held on `job_id` has run out (its last heartbeat came up
    to a third of the 2 s lease before the kill): the next claim takes the job back."""
    wait_for(lambda: row(data, job_id)["lease_expires_at"] < time.time(), timeout=10)


def kill_after_first_unit_and_resume(data: Path, crashed: str, reference: str, first_unit: str):
    """Run a real engine until job `crashed` starts its second unit (a study's cell, an
    animation's frame), SIGKILL it, let its lease run out, then drain the queue with a fresh
    engine (drain_here: a fresh scratch folder, so it resumes from the blobs alone).
    Checks the first unit (`first_unit`: its job file name) was kept rather than redone;
    returns the two jobs' rows."""
    engine = engine_process(data)
    try:
        wait_for(lambda: (r := row(data, crashed)) and r["progress_frame"] >= 1)
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait()
    stamp = job_file(data, crashed, first_unit)
    assert stamp is not None and row(data, crashed)["state"] == "running"
    wait_lease_out(data, crashed)
    # Another engine in another data folder: it resumes from the blobs alone.
    assert drain_here(data, data / "other") == 2  # the crashed job and the reference
    assert not any(p.is_file() for p in (data / "other").rglob("*"))  # its scratch folder went with the job
    resumed, whole = row(data, crashed), row(data, reference)
    assert resumed["state"] == whole["state"] == "succeeded" and resumed["attempt"] == 2
    assert job_file(data, crashed, first_unit) == stamp  # the finished unit was kept, not redone
    return resumed, whole


def enqueue(data: Path, *specs: RenderSpec, **changes) -> list[str]:
    async def body(db):
        return [(await db.jobs.enqueue(request(s, **changes))).id for s in specs]
    return asyncio.run(with_db(data, body))


@pytest.mark.e2e
def test_kill_9_mid_render_resumes_to_the_same_png_and_evolution(tmp_path):
    from engine.media.video import probe_video

    # Saves before the kill and after it: the first is kept only as the job's blob. 16 steps: a
    # checkpoint (every 5) before the kill at 8 or later, and steps left to resume after it.
    spec = fast_spec(steps=16, seed=21, intermediate_saves=[4, 14])
    crashed, reference = enqueue(tmp_path, spec, spec, steps=16)
    engine = engine_process(tmp_path)
    try:
        wait_for(lambda: (r := row(tmp_path, crashed)) and r["checkpoint_path"] and r["progress_step"] >= 8)
    finally:
        engine.send_signal(signal.SIGKILL)
        engine.wait()
    interrupted_at = row(tmp_path, crashed)["progress_step"]
    assert row(tmp_path, crashed)["state"] == "running"  # the dead engine still holds the lease
    wait_lease_out(tmp_path, crashed)
    # Another engine with another data folder (a fresh scratch folder): the checkpoint blob is
    # all it has of the first attempt.
    assert drain_here(tmp_path, tmp_path / "other") == 2
    resumed, uninterrupted = row(tmp_path, crashed), row(tmp_path, reference)
    assert resumed["state"] == uninterrupted["state"] == "succeeded"
    assert resumed["attempt"] == 2 and 8 <= interrupted_at < 16
    (resumed_png, resumed_video), (reference_png, reference_video) = (
        json.loads(r["artifacts_json"]) for r in (resumed, uninterrupted))
    assert blob_bytes(tmp_path, resumed_png) == blob_bytes(tmp_path, reference_png)
    frames = [probe_video(blob_file(tmp_path, video)).frames for video in (resumed_video, reference_video)]
    assert frames == [2 + 4, 2 + 4]  # both saves, then the result for a second


@pytest.mark.e2e
def test_poison_job_goes_dead_and_the_next_job_runs(tmp_path):
    poison, healthy = enqueue(tmp_path, fast_spec(steps=40, seed=5), fast_spec(steps=6, seed=6),
                              max_attempts=2)
    for attempt in (1, 2):  # the poison job takes the engine down every time it runs
        engine = engine_process(tmp_path)
        try:
            wait_for(lambda: row(tmp_path, poison)["attempt"] == attempt
                     and row(tmp_path, poison)["state"] == "running")
        finally:
            engine.send_signal(signal.SIGKILL)
            engine.wait()
        wait_lease_out(tmp_path, poison)
    assert drain_here(tmp_path, tmp_path) == 1  # the poison job is dead when claimed: only the healthy one runs
    dead, done = row(tmp_path, poison), row(tmp_path, healthy)
    assert dead["state"] == "dead" and "lease" in dead["error_message"]
    assert done["state"] == "succeeded"


def test_a_database_outage_is_retried_and_the_job_still_completes_once(tmp_path, caplog):
    """Claims, progress writes and the result meet `DatabaseUnavailable` (a PostgreSQL server
    restarting): the engine logs one line each time, backs off, carries on, and records the
    result exactly once."""
    from storage import DatabaseUnavailable

    def flaky(method, failures: int):
        left = [failures]

        async def call(*args, **kwargs):
            if left[0] > 0:
                left[0] -= 1
                raise DatabaseUnavailable("PostgreSQL at db is not reachable (restarting)")
            return await method(*args, **kwargs)
        return call

    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=1)))
        leases = db.leases
        leases.claim = flaky(leases.claim, 1)
        leases.progress = flaky(leases.progress, 2)
        completes = []
        real_complete = leases.complete

        async def counted(*args, **kwargs):
            completes.append(args[0])
            return await real_complete(*args, **kwargs)
        leases.complete = flaky(counted, 2)
        processed = await worker(db, tmp_path, poll_seconds=0.05).run(burst=True)
        return processed, completes, await db.jobs.get(job.id)

    with caplog.at_level("WARNING", logger="disco.engine"):
        processed, completes, job = asyncio.run(with_db(tmp_path, body))
    assert processed == 1 and job.state == "succeeded" and job.attempt == 1
    assert len(completes) == 1  # the two failed tries never reached the database
    outage_lines = [r.getMessage() for r in caplog.records if "not reachable" in r.getMessage()]
    assert len(outage_lines) == 5 and all("\n" not in line for line in outage_lines)


def test_an_outage_while_a_claimed_job_fetches_its_files_costs_no_attempt(tmp_path, caplog):
    """PostgreSQL restarts just after a claim, while the job's files (inputs, what an earlier
    attempt kept) are fetched: the engine waits and fetches again. Before, this counted as an
    'unexpected error' of the render, logged a traceback and used up one of the job's
    attempts (three restarts at that moment and the job was dead)."""
    from storage import DatabaseUnavailable

    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=1)))
        real, tries = db.blobs.job_files, []

        async def restarting(*args, **kwargs):
            tries.append(1)
            if len(tries) <= 2:
                raise DatabaseUnavailable("PostgreSQL at db is not reachable (restarting)")
            return await real(*args, **kwargs)
        db.blobs.job_files = restarting
        assert await worker(db, tmp_path, poll_seconds=0.05).run(burst=True) == 1
        return await db.jobs.get(job.id)

    with caplog.at_level("WARNING", logger="disco.engine"):
        job = asyncio.run(with_db(tmp_path, body))
    assert job.state == "succeeded" and job.attempt == 1 and job.lease_expiries == 0
    assert not [r for r in caplog.records if r.exc_info]
    assert sum("files not fetched yet" in r.getMessage() for r in caplog.records) == 2


def test_a_result_whose_answer_was_lost_is_recorded_and_billed_once_and_said_so(tmp_path, caplog):
    """The server restarts just after `complete` committed: the engine never hears back and
    records the result again. The fence refuses the second write (nothing is billed twice),
    and the log says the result was recorded, not that it was dropped."""
    from storage import DatabaseUnavailable

    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=1)))
        real, calls = db.leases.complete, []

        async def answer_lost(*args, **kwargs):
            calls.append(1)
            await real(*args, **kwargs)
            if len(calls) == 1:
                raise DatabaseUnavailable("PostgreSQL at db is not reachable (restarting)")
        db.leases.complete = answer_lost  # (the retry stops at its first fenced write)
        assert await worker(db, tmp_path, poll_seconds=0.05).run(burst=True) == 1
        return await db.jobs.get(job.id), await db.quotas.ledger(1, user_id=3), calls

    with caplog.at_level("INFO", logger="disco.engine"):
        job, ledger, calls = asyncio.run(with_db(tmp_path, body))
    assert job.state == "succeeded" and job.attempt == 1 and len(calls) == 1  # the retry met the fence
    assert [e.kind for e in ledger] == ["charge"]
    lines = [r.getMessage() for r in caplog.records]
    assert not any("dropped" in line for line in lines), lines
    assert any(f"job {job.id}: attempt 1 was recorded already" in line for line in lines), lines


def test_sigterm_hands_the_running_job_back_at_once_without_using_an_attempt(tmp_path, caplog):
    """SIGTERM (docker stop, an upgrade, the bot stopping its engine) gives an engine about 10 s
    before SIGKILL. The engine stops the running job at the next step and hands it back to the
    queue: no wait for its lease to run out, no attempt used (three restarts used to make a long
    animation dead), nothing billed; the next engine resumes it from its checkpoint."""
    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=1, steps=24), steps=24))
        first = worker(db, tmp_path)
        running = asyncio.create_task(first.run())
        while (await db.jobs.get(job.id)).progress_step < 5:  # a checkpoint every 4 steps
            await asyncio.sleep(0.05)
        started = time.monotonic()
        first.stop()  # what the SIGTERM handler of `serve` calls
        assert await asyncio.wait_for(running, 60) == 1
        stopped_in = time.monotonic() - started
        handed_back = await db.jobs.get(job.id)
        charged = await db.quotas.ledger(1, user_id=3)
        assert await worker(db, tmp_path).run(burst=True) == 1
        return stopped_in, handed_back, charged, await db.jobs.get(job.id)

    with caplog.at_level("INFO", logger="disco.engine"):
        stopped_in, handed_back, charged, done = asyncio.run(with_db(tmp_path, body))
    assert stopped_in < 20 and handed_back.progress_step < 24  # not rendered to its end
    assert handed_back.state == "queued" and handed_back.lease_owner is None
    assert (handed_back.attempt, handed_back.max_attempts) == (1, 4) and handed_back.error_code is None
    assert handed_back.checkpoint_path and charged == []
    assert done.state == "succeeded" and done.attempt == 2
    assert any("handed back to the queue" in r.getMessage() for r in caplog.records)


def test_a_job_handed_back_stores_no_partial_result(tmp_path, monkeypatch):
    """What a stopped render finished (an animation's partial MP4) is for a cancel, which
    delivers it. A hand-back delivers nothing: the handler is told not to make it (encoding
    could outlast the stop's grace) and nothing it returned is stored as the job's output."""
    import engine.jobs.worker as worker_module
    from engine.errors import Cancelled
    from engine.jobs.context import Handler
    from storage import JobKind

    seen, engines = [], []

    def stopped_render(ctx, spec):
        ctx.loop.call_soon_threadsafe(engines[0].stop)  # SIGTERM arrives mid-render
        assert ctx.cancel.wait(10)
        seen.append(ctx.handing_back)
        partial = ctx.folder / "partial.mp4"
        partial.write_bytes(b"frames so far")
        raise Cancelled("stopped", artifacts=(str(partial),))

    still = worker_module.HANDLERS[JobKind.STILL]
    monkeypatch.setitem(worker_module.HANDLERS, JobKind.STILL, Handler(still.spec_of, stopped_render))

    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=1)))
        engines.append(worker(db, tmp_path))
        assert await asyncio.wait_for(engines[0].run(), 30) == 1
        return await db.jobs.get(job.id)

    job = asyncio.run(with_db(tmp_path, body))
    assert seen == [True] and job.state == "queued" and not job.artifacts
    assert job_file(tmp_path, job.id, "partial.mp4") is None


def test_a_full_disk_holds_the_job_until_there_is_space_and_loses_nothing(tmp_path, caplog):
    """The disk fills up: blob files cannot be written (ENOSPC) and the database cannot grow
    (DiskFull). Previews are skipped, checkpoints and the result wait and try again, claims
    and the result's record back off; once there is space the job completes once, whole."""
    import errno
    from storage import DiskFull

    full_for = {"files": 5, "claims": 1, "completes": 1}

    def no_space(kind: str) -> bool:
        full_for[kind] -= 1
        return full_for[kind] >= 0

    def full_file(write):
        def call(*args):
            if no_space("files"):
                raise OSError(errno.ENOSPC, "No space left on device")
            return write(*args)
        return call

    def full_db(kind: str, method):
        async def call(*args, **kwargs):
            if no_space(kind):
                raise DiskFull("the disk holding disco.db is full; free some space")
            return await method(*args, **kwargs)
        return call

    async def body(db):
        job = await db.jobs.enqueue(request(fast_spec(seed=1)))
        db.blobs._write_file = full_file(db.blobs._write_file)
        db.leases.claim = full_db("claims", db.leases.claim)
        db.leases.complete = full_db("completes", db.leases.complete)
        processed = await worker(db, tmp_path, poll_seconds=0.05).run(burst=True)
        return processed, await db.jobs.get(job.id)

    with caplog.at_level("WARNING", logger="disco.engine"):
        processed, job = asyncio.run(with_db(tmp_path, body))
    assert all(left < 0 for left in full_for.values())  # every kind of write met the full disk
    assert processed == 1 and job.state == "succeeded" and job.attempt == 1
    assert blob_bytes(tmp_path, job.artifacts[0]).startswith(b"\x89PNG")
    full_lines = [r.getMessage() for r in caplog.records if "is full" in r.getMessage()]
    assert len(full_lines) >= 7 and all("\n" not in line for line in full_lines)
