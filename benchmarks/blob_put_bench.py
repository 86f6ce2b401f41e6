"""How long other writers wait while a large blob is stored, on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/blob_put_bench.py [--backend sqlite|postgresql|both]
        [--mib 100] [--puts 3] [--postgres-url URL]

A writer process (its own `Database`, as the bot or another engine would be) enqueues a job
every 10 ms and times each enqueue (a write transaction under the writer lock); meanwhile this
process stores `--puts` blobs of `--mib` MiB each (an animation's MP4). Prints one JSON object:
per backend, the seconds per put and the writer's median and slowest enqueue while puts ran.
A put writes its bytes before it takes the lock (storage/blobs.py), so the slowest enqueue
should stay near the median instead of the put's length. PostgreSQL needs --postgres-url
(default DISCO_TEST_POSTGRES_URL, e.g. from `scripts/postgres.sh start`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from queue_bench import postgres_database, request  # noqa: E402  (benchmarks/ is on the path)
from storage import Database  # noqa: E402


async def writer(target: str, seconds: float) -> None:
    """Enqueue every 10 ms for `seconds`; print one JSON list of [start, seconds] pairs."""
    db = await Database.open(target)
    await db.guilds.set_limits("g0", max_queued_per_user=1000, max_queued_per_guild=100000)
    print("ready", flush=True)
    timings, end, n = [], time.time() + seconds, 0
    while time.time() < end:
        start = time.time()
        await db.jobs.enqueue(request(n, 1, 1))
        timings.append((start, time.time() - start))
        n += 1
        await asyncio.sleep(0.01)
    await db.close()
    print(json.dumps(timings), flush=True)


async def case(target: str, mib: int, puts: int) -> dict:
    async with await Database.open(target) as db:
        blobs = [os.urandom(mib * 2**20) for _ in range(puts)]
        proc = subprocess.Popen([sys.executable, __file__, "--writer", target, str(puts * 4 + 3)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        await asyncio.sleep(1.0)
        windows = []
        for data in blobs:
            start = time.time()
            await db.blobs.put(data, "animation.mp4")
            windows.append((start, time.time()))
            await asyncio.sleep(0.5)
        timings = json.loads(proc.communicate()[0])
    during = [s for start, s in timings if any(a <= start <= b for a, b in windows)]
    outside = [s for start, s in timings if not any(a - 0.1 <= start <= b + 0.1 for a, b in windows)]
    return {"mib": mib, "put_s": [round(b - a, 3) for a, b in windows],
            "enqueue_ms_during_puts": {"n": len(during), "median": ms(statistics.median(during)),
                                       "max": ms(max(during))} if during else None,
            "enqueue_ms_otherwise": {"n": len(outside), "median": ms(statistics.median(outside)),
                                     "max": ms(max(outside))} if outside else None}


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def run(args: argparse.Namespace, folder: Path) -> dict:
    result: dict = {}
    for backend in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend]):
        if backend == "sqlite":
            result[backend] = await case(str(folder / "bench.db"), args.mib, args.puts)
            continue
        if not args.postgres_url:
            raise SystemExit("PostgreSQL needs --postgres-url or DISCO_TEST_POSTGRES_URL "
                             "(scripts/postgres.sh start prints one)")
        name = f"bench_{uuid.uuid4().hex[:10]}"
        target = postgres_database(args.postgres_url, name, create=True)
        try:
            result[backend] = await case(target, args.mib, args.puts)
        finally:
            postgres_database(args.postgres_url, name, create=False)
    return result


def main() -> None:
    if sys.argv[1:2] == ["--writer"]:
        asyncio.run(writer(sys.argv[2], float(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--mib", type=int, default=100, help="size of each blob (default 100)")
    parser.add_argument("--puts", type=int, default=3)
    parser.add_argument("--postgres-url", default=os.environ.get("DISCO_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        print(json.dumps(asyncio.run(run(args, Path(directory)))))


if __name__ == "__main__":
    main()
