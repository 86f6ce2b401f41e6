"""Engine-process test helpers: a worker on the tiny models, a database for one test, and a
run that records every progress write."""
from __future__ import annotations

import asyncio
from pathlib import Path

from engine.jobs.context import WorkerConfig
from engine.jobs.worker import EngineWorker
from storage import Database, JobRequest, parse_ref
from tests.support.engine import tiny_pool

OWNER = "engine:test:1"


def blob_file(data: Path, ref: str) -> Path:
    """The file holding a blob of the SQLite install in `data` (storage/blobs.py's layout)."""
    parsed = parse_ref(ref)
    assert parsed is not None, f"{ref} is not a blob reference"
    return data / "blobs" / parsed.sha256[:2] / parsed.sha256


def blob_bytes(data: Path, ref: str) -> bytes:
    return blob_file(data, ref).read_bytes()


def job_file(data: Path, job_id: str, name: str) -> tuple[str, float] | None:
    """(sha256, created_at) of one of a job's files in the SQLite install in `data`."""
    import sqlite3
    conn = sqlite3.connect(data / "disco.db", timeout=10)
    try:
        row = conn.execute("SELECT sha256, created_at FROM job_files WHERE job_id = ? AND name = ?",
                           (job_id, name)).fetchone()
    finally:
        conn.close()
    return (row[0], row[1]) if row else None


def job_files(data: Path, job_id: str) -> dict[str, str]:
    """name → role of every file a job of the SQLite install in `data` keeps as a blob."""
    import sqlite3
    conn = sqlite3.connect(data / "disco.db", timeout=10)
    try:
        return dict(conn.execute("SELECT name, role FROM job_files WHERE job_id = ?", (job_id,)).fetchall())
    finally:
        conn.close()


def names(refs) -> tuple[str, ...]:
    """The file names blob references carry (`blob:<sha>/<name>`)."""
    return tuple(parse_ref(ref).name for ref in refs)


def worker(db: Database, tmp_path: Path) -> EngineWorker:
    return EngineWorker(db, tiny_pool(), tmp_path, owner=OWNER,
                        config=WorkerConfig(checkpoint_every=0, progress_every=0))


async def with_db(tmp_path: Path, body):
    db = await Database.open(tmp_path / "disco.db")
    try:
        return await body(db)
    finally:
        await db.close()


def run_reporting(tmp_path: Path, request: JobRequest) -> tuple:
    """Queue `request`, drain it with a worker; returns the finished job, the requester's
    ledger and (frame, frames, preview) of every progress write."""
    seen: list[tuple[int | None, int | None, str | None]] = []

    async def body(db):
        job = await db.jobs.enqueue(request)
        real = db.leases.progress

        async def spy(*args, **kwargs):
            seen.append((kwargs.get("frame"), kwargs.get("frames"), kwargs.get("preview_path")))
            return await real(*args, **kwargs)
        db.leases.progress = spy
        assert await worker(db, tmp_path).run(burst=True) == 1
        return await db.jobs.get(job.id), await db.quotas.ledger(1, user_id=3)

    job, ledger = asyncio.run(with_db(tmp_path, body))
    return job, ledger, seen


def cancel_after_first_unit(tmp_path: Path, request: JobRequest) -> tuple:
    """Queue a unit job (study or animation), cancel it once its first unit is done and the
    second has started, drain the queue; returns the finished job and the requester's quota
    status."""
    async def body(db):
        job = await db.jobs.enqueue(request)
        task = asyncio.create_task(worker(db, tmp_path).run(burst=True))
        while (await db.jobs.get(job.id)).progress_frame < 1:
            await asyncio.sleep(0.02)
        await db.jobs.cancel(job.id)
        await task
        return await db.jobs.get(job.id), await db.quotas.status(1, 3)

    return asyncio.run(with_db(tmp_path, body))
