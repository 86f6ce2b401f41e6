"""Queue speed at a deep queue: median (and p95) milliseconds of enqueue, claim, heartbeat,
progress and complete with 10,000 jobs waiting, on a real SQLite file (WAL, synchronous=FULL).

    .venv/bin/python benchmarks/queue_bench.py [--jobs 10000] [--samples 300] [--dir DIR]

Prints one JSON object. The backlog is inserted in one transaction through the real table (its
triggers keep the fairness counters), then each sample runs the engine loop once: enqueue one
job (so the depth stays at --jobs), claim, heartbeat, progress, complete, each timed alone.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Database, JobKind, JobRequest, new_job_id  # noqa: E402

OWNER = "engine:bench"


def request(n: int, guilds: int, users: int) -> JobRequest:
    return JobRequest(guild_id=f"g{n % guilds}", channel_id=1, user_id=f"u{n % (guilds * users)}",
                      kind=JobKind.STILL, spec_json='{"text_prompts": ["a lighthouse"], "steps": 250}',
                      spec_version=1, model_set="dd-default", width=1280, height=768, steps=250)


async def fill(db: Database, jobs: int, guilds: int, users: int) -> None:
    for g in range(guilds):
        await db.guilds.set_limits(f"g{g}", max_queued_per_user=jobs, max_queued_per_guild=jobs)
    now = db.now()
    rows = []
    for n in range(jobs):
        r = request(n, guilds, users)
        rows.append((new_job_id(now), r.guild_id, "1", r.user_id, r.kind, r.spec_json, 1,
                     r.model_set, r.width, r.height, r.steps, now, now))
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, spec_json, spec_version, "
            "model_set, width, height, steps, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered) * 1000, 3),
            "p95": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 3)}


async def bench(directory: Path, jobs: int, samples: int, guilds: int, users: int) -> dict:
    async with await Database.open(directory / "bench.db") as db:
        started = time.perf_counter()
        await fill(db, jobs, guilds, users)
        fill_s = time.perf_counter() - started
        timings: dict[str, list[float]] = {k: [] for k in
                                           ("enqueue", "claim", "heartbeat", "progress", "complete")}
        for n in range(samples):
            t0 = time.perf_counter()
            await db.jobs.enqueue(request(jobs + n, guilds, users))
            t1 = time.perf_counter()
            job = await db.leases.claim(OWNER)
            t2 = time.perf_counter()
            await db.leases.heartbeat(job.id, job.attempt, OWNER)
            t3 = time.perf_counter()
            await db.leases.progress(job.id, job.attempt, OWNER, step=10, total=250,
                                     seconds_per_step=1.2)
            t4 = time.perf_counter()
            await db.leases.complete(job.id, job.attempt, OWNER, artifacts=["0.png"], gpu_seconds=300)
            t5 = time.perf_counter()
            for name, seconds in zip(timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                timings[name].append(seconds)
        queued = (await db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'"))[0][0]
        t0 = time.perf_counter()
        positions = await db.jobs.positions()
        positions_s = time.perf_counter() - t0
        assert len(positions) == queued
        return {
            "queued": queued, "samples": samples, "guilds": guilds, "users": guilds * users,
            **{f"{name}_ms": summary(values) for name, values in timings.items()},
            "positions_all_ms": round(positions_s * 1000, 1),
            "fill_s": round(fill_s, 2),
            "sqlite": sqlite3.sqlite_version,
            "journal_mode": "wal", "synchronous": "FULL",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="queue depth (default 10000)")
    parser.add_argument("--samples", type=int, default=300, help="timed rounds (default 300)")
    parser.add_argument("--guilds", type=int, default=50)
    parser.add_argument("--users", type=int, default=20, help="users per guild")
    parser.add_argument("--dir", type=Path, help="where to put the database (default: a temp dir)")
    args = parser.parse_args()
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(bench(args.dir, args.jobs, args.samples, args.guilds, args.users))
    else:
        with tempfile.TemporaryDirectory() as directory:
            result = asyncio.run(bench(Path(directory), args.jobs, args.samples, args.guilds,
                                       args.users))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
