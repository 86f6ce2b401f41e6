"""Queue speed at a deep queue, on SQLite and on PostgreSQL: median and p95 milliseconds of
enqueue, claim, heartbeat and complete with 10,000 jobs waiting and 1, 4 and 16 claimers at once.

    .venv/bin/python benchmarks/queue_bench.py [--backend sqlite|postgresql|both]
        [--jobs 10000] [--claimers 1,4,16] [--rounds 40] [--postgres-url URL] [--dir DIR]

Prints one JSON object: per backend, per claimer count, the timings. For each case a fresh
database gets the backlog in one transaction through the real table (its triggers keep the
fairness counters); then each claimer (a process of its own with its own `Database`, as an
engine would be; all start together once every one has opened the database) loops `--rounds`
times: enqueue one job (so the depth stays at --jobs), claim, heartbeat, complete, each timed
alone. Times include waiting for the other claimers (claims are serialised on
both backends: that is the fairness rule). PostgreSQL needs --postgres-url (default
DISCO_TEST_POSTGRES_URL, e.g. from `scripts/postgres.sh start`): a server where the benchmark
may create and drop databases. SQLite runs WAL, synchronous=FULL, in --dir (default a temp dir).
The defaults take a few minutes on two busy cores; --jobs 2000 --rounds 10 is a quick look.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage import Database, JobKind, JobRequest, new_job_id  # noqa: E402

OPS = ("enqueue", "claim", "heartbeat", "complete")


def request(n: int, guilds: int, users: int) -> JobRequest:
    return JobRequest(guild_id=f"g{n % guilds}", channel_id=1, user_id=f"u{n % (guilds * users)}",
                      kind=JobKind.STILL, spec_json='{"text_prompts": ["a lighthouse"], "steps": 250}',
                      spec_version=1, model_set="dd-default", width=1280, height=768, steps=250)


async def fill(db: Database, jobs: int, guilds: int, users: int) -> None:
    for g in range(guilds):
        await db.guilds.set_limits(f"g{g}", max_queued_per_user=jobs, max_queued_per_guild=jobs)
    now = await db.clock()
    rows = []
    for n in range(jobs):
        r = request(n, guilds, users)
        rows.append((new_job_id(now), r.guild_id, "1", r.user_id, r.kind.value, r.spec_json, 1,
                     r.model_set, r.width, r.height, r.steps, now, now))
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, spec_json, spec_version, "
            "model_set, width, height, steps, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median": round(statistics.median(ordered) * 1000, 3),
            "p95": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 3)}


async def claimer(target: str, n: int, rounds: int, start: int, guilds: int, users: int) -> None:
    """One claimer process (`--claimer`): open, say ready, wait for "go" on stdin, run, print
    its timings as JSON."""
    timings: dict[str, list[float]] = {name: [] for name in OPS}
    owner = f"engine:bench:{n}"
    async with await Database.open(target, busy_timeout_s=60) as db:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        for r in range(rounds):
            t0 = time.perf_counter()
            await db.jobs.enqueue(request(start + n * rounds + r, guilds, users))
            t1 = time.perf_counter()
            job = await db.leases.claim(owner)
            t2 = time.perf_counter()
            await db.leases.heartbeat(job.id, job.attempt, owner)
            t3 = time.perf_counter()
            await db.leases.complete(job.id, job.attempt, owner, artifacts=["0.png"], gpu_seconds=300)
            t4 = time.perf_counter()
            for name, seconds in zip(OPS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                timings[name].append(seconds)
    print(json.dumps(timings), flush=True)


async def run_claimers(target: str, claimers: int, rounds: int, start: int, guilds: int,
                       users: int) -> tuple[dict[str, list[float]], float]:
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--claimer", target, str(n), str(rounds), str(start),
        str(guilds), str(users), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        for n in range(claimers)]
    for proc in procs:
        line = await proc.stdout.readline()
        if line.strip() != b"ready":
            raise SystemExit(f"a claimer did not start: {line!r}")
    started = time.perf_counter()
    for proc in procs:
        proc.stdin.write(b"go\n")
        await proc.stdin.drain()
    outputs = await asyncio.gather(*(proc.communicate() for proc in procs))
    wall = time.perf_counter() - started
    timings: dict[str, list[float]] = {name: [] for name in OPS}
    for out, _ in outputs:
        for name, values in json.loads(out).items():
            timings[name].extend(values)
    return timings, wall


async def case(target: str, jobs: int, claimers: int, rounds: int, guilds: int, users: int) -> dict:
    async with await Database.open(target, busy_timeout_s=60) as db:
        started = time.perf_counter()
        await fill(db, jobs, guilds, users)
        fill_s = time.perf_counter() - started
    timings, wall = await run_claimers(target, claimers, rounds, jobs, guilds, users)
    async with await Database.open(target) as db:
        queued = (await db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'"))[0][0]
    return {"claimers": claimers, "queued": queued, "rounds": claimers * rounds,
            **{f"{name}_ms": summary(values) for name, values in timings.items()},
            "claims_per_s": round(claimers * rounds / wall, 1), "fill_s": round(fill_s, 2)}


def postgres_database(server: str, name: str, create: bool) -> str:
    import psycopg
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}" if create else f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


async def backend_cases(backend: str, args: argparse.Namespace, folder: Path) -> list[dict]:
    results = []
    for count in args.claimers:
        if backend == "sqlite":
            target = str(folder / f"bench-{count}-{uuid.uuid4().hex[:6]}.db")
            results.append(await case(target, args.jobs, count, args.rounds, args.guilds, args.users))
            continue
        name = f"bench_{uuid.uuid4().hex[:10]}"
        target = postgres_database(args.postgres_url, name, create=True)
        try:
            results.append(await case(target, args.jobs, count, args.rounds, args.guilds, args.users))
        finally:
            postgres_database(args.postgres_url, name, create=False)
    return results


async def run(args: argparse.Namespace, folder: Path) -> dict:
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not args.postgres_url:
        raise SystemExit("PostgreSQL needs --postgres-url or DISCO_TEST_POSTGRES_URL "
                         "(scripts/postgres.sh start prints one)")
    result: dict = {"jobs": args.jobs, "guilds": args.guilds, "users": args.guilds * args.users,
                    "rounds_per_claimer": args.rounds}
    for backend in backends:
        result[backend] = await backend_cases(backend, args, folder)
    return result


def main() -> None:
    if sys.argv[1:2] == ["--claimer"]:
        target, n, rounds, start, guilds, users = sys.argv[2:8]
        asyncio.run(claimer(target, int(n), int(rounds), int(start), int(guilds), int(users)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--jobs", type=int, default=10_000, help="queue depth (default 10000)")
    parser.add_argument("--claimers", type=lambda text: [int(c) for c in text.split(",")],
                        default=[1, 4, 16], help="claimer counts, comma-separated (default 1,4,16)")
    parser.add_argument("--rounds", type=int, default=40, help="timed rounds per claimer (default 40)")
    parser.add_argument("--guilds", type=int, default=50)
    parser.add_argument("--users", type=int, default=20, help="users per guild")
    parser.add_argument("--postgres-url", default=os.environ.get("DISCO_TEST_POSTGRES_URL"))
    parser.add_argument("--dir", type=Path, help="where SQLite files go (default: a temp dir)")
    args = parser.parse_args()
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run(args, args.dir))
    else:
        with tempfile.TemporaryDirectory() as directory:
            result = asyncio.run(run(args, Path(directory)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
