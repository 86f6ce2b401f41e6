"""Jobs per minute of small test-tiny stills with 1 worker vs 2 workers (`disco worker`
processes on the CPU, one database): whether the queue ever becomes the bottleneck.

    .venv/bin/python benchmarks/worker_bench.py [--backend sqlite|postgresql] [--workers 1,2]
        [--jobs 12] [--steps 4] [--threads 1] [--postgres-url URL]

For each worker count: a fresh database, the workers started (each in its own temporary
folder, as tests/support/workers.py starts them) and waited for until the fleet shows them
live, so start-up and model loading are not timed; then --jobs prompt-only 64×64 stills from
3 guilds are queued at once and the clock runs until every one has succeeded. Prints one JSON
object: per worker count the wall seconds, jobs per minute, the jobs each worker took and the
speed-up over the first count, and the attempts (more than the jobs: leases ran out). `--threads N` sets OMP_NUM_THREADS for each worker (default 1;
0: torch's default, every core per worker). PostgreSQL needs --postgres-url (default
DISCO_TEST_POSTGRES_URL, e.g. from `scripts/postgres.sh start`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Database  # noqa: E402
from tests.support.workers import start_worker, stop_workers, tiny_still, wait_until_live  # noqa: E402

GUILDS = 3


def postgres_database(server: str, name: str, create: bool) -> str:
    import psycopg
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" if create else f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


async def case(url: str, workers: int, jobs: int, steps: int, folder: Path, threads: int) -> dict:
    processes = [start_worker(url, folder / f"w{workers}-{n}", threads=threads) for n in range(workers)]
    try:
        async with await Database.open(url) as db:
            for guild in range(GUILDS):
                await db.guilds.set_limits(guild + 1, max_queued_per_user=jobs, max_queued_per_guild=jobs)
            await wait_until_live(db, workers, processes, timeout=900)
            started = time.perf_counter()
            for n in range(jobs):
                await db.jobs.enqueue(tiny_still(n % GUILDS + 1, 100, 1000 + n, seed=n, steps=steps))
            while True:
                states = dict((r[0], r[1]) for r in await db.execute(
                    "SELECT state, COUNT(*) FROM jobs GROUP BY state"))
                if states.get("queued", 0) + states.get("running", 0) == 0:
                    break
                await asyncio.sleep(0.1)
            wall = time.perf_counter() - started
            taken = sorted(w.jobs_done for w in await db.workers.list())
            attempts = (await db.execute("SELECT SUM(attempt) FROM jobs"))[0][0]
    finally:
        stop_workers(processes)
    return {"workers": workers, "jobs": jobs, "succeeded": states.get("succeeded", 0),
            "wall_s": round(wall, 2), "jobs_per_minute": round(jobs / wall * 60, 2), "jobs_per_worker": taken,
            "attempts": attempts}


async def run(args: argparse.Namespace, folder: Path) -> dict:
    results = []
    for index, count in enumerate(args.workers):
        if args.backend == "sqlite":  # a fresh file for every case, also when a count repeats
            url = f"sqlite:///{folder / f'bench-{index}-{count}.db'}"  # an absolute path: sqlite:////tmp/…
            results.append(await case(url, count, args.jobs, args.steps, folder, args.threads))
            continue
        name = f"wbench_{uuid.uuid4().hex[:10]}"
        url = postgres_database(args.postgres_url, name, create=True)
        try:
            results.append(await case(url, count, args.jobs, args.steps, folder, args.threads))
        finally:
            postgres_database(args.postgres_url, name, create=False)
    base = results[0]["jobs_per_minute"]
    for result in results:
        result["speedup"] = round(result["jobs_per_minute"] / base, 2) if base else None
    return {"backend": args.backend, "steps": args.steps, "size": "64x64", "threads": args.threads or "default",
            "cpus": os.cpu_count(), "results": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--workers", type=lambda text: [int(c) for c in text.split(",")], default=[1, 2])
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS per worker (0: torch's default)")
    parser.add_argument("--postgres-url", default=os.environ.get("DISCO_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if args.backend == "postgresql" and not args.postgres_url:
        raise SystemExit("PostgreSQL needs --postgres-url or DISCO_TEST_POSTGRES_URL")
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as folder:
        print(json.dumps(asyncio.run(run(args, Path(folder))), indent=2))


if __name__ == "__main__":
    main()
