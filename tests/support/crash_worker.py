"""A subprocess for the crash and concurrency tests: hammers one database file with the queue's
transactions until it is killed (chaos) or the queue is empty (claimers).

    python -m tests.support.crash_worker spawner DB ACK_LOG   # reads seeds on stdin
    python -m tests.support.crash_worker claimer DB EVENT_LOG OWNER SEED
    python -m tests.support.crash_worker putter DB PUT_LOG SEED

The spawner imports everything once, then forks one chaos worker per seed it reads and prints
"pid N"; each worker prints "ready N" once its database is open and loops until it is killed.
Forking keeps 200 kills within seconds (a fresh interpreter costs ~0.1 s); the spawner is
single-threaded when it forks, and the kernel reaps the killed children (SIGCHLD ignored).
A claimer prints "ready" once the database is open. Logs are appended with single os.write calls on
O_APPEND files, so a SIGKILL never leaves half a line; an "enq" line is written only after the
enqueue committed (the user would have been told "queued" at that point). A putter stores
blobs of one to three chunks in a loop and logs each reference once its put returned.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time

from storage import Database, JobRequest, StaleAttempt, StorageError

CHAOS_LEASE_S = 0.2  # short, so jobs held by a killed worker come back quickly
CLAIMER_LEASE_S = 0.3


def request(rng: random.Random) -> JobRequest:
    return JobRequest(guild_id=f"g{rng.randrange(4)}", channel_id=1, user_id=f"u{rng.randrange(5)}",
                      kind="still", spec_json="{}", spec_version=1, model_set="test-tiny",
                      width=256, height=256, steps=rng.randrange(5, 60), priority=rng.choice((0, 0, 1)))


class Log:
    def __init__(self, path: str):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, *fields: object) -> None:
        os.write(self.fd, (" ".join(map(str, fields)) + "\n").encode())


async def chaos(db_path: str, ack_path: str, seed: int) -> None:
    rng, acks = random.Random(seed), Log(ack_path)
    owner = f"chaos:{os.getpid()}"
    db = await Database.open(db_path)
    os.write(1, f"ready {os.getpid()}\n".encode())  # one write: lines never interleave
    held: list[tuple[str, int]] = []
    mine: list[str] = []
    while True:
        roll = rng.random()
        try:
            if roll < 0.35:
                job = await db.jobs.enqueue(request(rng))
                acks.write("enq", job.id)
                mine.append(job.id)
            elif roll < 0.6:
                job = await db.leases.claim(owner, lease_seconds=CHAOS_LEASE_S)
                if job:
                    held.append((job.id, job.attempt))
            elif held and roll < 0.8:
                job_id, attempt = rng.choice(held)
                await db.leases.progress(job_id, attempt, owner, step=rng.randrange(50), total=50,
                                         seconds_per_step=0.01, lease_seconds=CHAOS_LEASE_S)
            elif held and roll < 0.9:
                job_id, attempt = held.pop(rng.randrange(len(held)))
                await db.leases.complete(job_id, attempt, owner, artifacts=[f"{job_id}.png"],
                                         gpu_seconds=rng.random())
            elif held and roll < 0.95:
                job_id, attempt = held.pop(rng.randrange(len(held)))
                await db.leases.fail(job_id, attempt, owner, code="oom", message="simulated",
                                     retryable=True)
            elif mine:
                await db.jobs.cancel(rng.choice(mine))
        except StaleAttempt as stale:
            held = [h for h in held if h[0] != stale.job_id]


class RecordingClock:
    """time.time, remembering the last reading: the lease a heartbeat set is last + lease."""

    last = 0.0

    def __call__(self) -> float:
        self.last = time.time()
        return self.last


async def claimer(db_path: str, log_path: str, owner: str, seed: int) -> None:
    rng, log, clock = random.Random(seed), Log(log_path), RecordingClock()
    db = await Database.open(db_path, now=clock, busy_timeout_s=10)
    print("ready", flush=True)
    while True:
        job = await db.leases.claim(owner, lease_seconds=CLAIMER_LEASE_S)
        if job is None:
            if not await db.jobs.list(states=["queued", "running"], limit=1):
                break  # every job has ended
            await asyncio.sleep(0.05)  # another claimer holds the rest; its lease may run out
            continue
        log.write("claim", job.id, job.attempt, owner, repr(job.started_at), repr(job.lease_expires_at))
        try:
            for _ in range(rng.randrange(1, 3)):
                await db.leases.heartbeat(job.id, job.attempt, owner, lease_seconds=CLAIMER_LEASE_S)
                log.write("beat", job.id, job.attempt, owner, repr(clock.last + CLAIMER_LEASE_S))
            if rng.random() < 0.1:
                await asyncio.sleep(CLAIMER_LEASE_S + 0.1)  # stall: the lease runs out
            await db.leases.complete(job.id, job.attempt, owner, artifacts=[], gpu_seconds=1)
            log.write("done", job.id, job.attempt, owner, repr(clock.last))
        except StaleAttempt:
            log.write("stale", job.id, job.attempt, owner, repr(clock.last))
    await db.close()


async def putter(db_path: str, log_path: str, seed: int) -> None:
    from storage.blobs import CHUNK_BYTES
    rng, log = random.Random(seed), Log(log_path)
    db = await Database.open(db_path)
    print("ready", flush=True)
    while True:
        data = rng.randbytes(rng.randrange(1, 3 * CHUNK_BYTES))
        log.write("put", await db.blobs.put(data, "frame.png"))


def spawner(db_path: str, ack_path: str) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(chaos(db_path, ack_path, int(line)))
            finally:
                os._exit(0)
        os.write(1, f"pid {pid}\n".encode())


def main(argv: list[str]) -> int:
    try:
        if argv[0] == "spawner":
            spawner(argv[1], argv[2])
        elif argv[0] == "claimer":
            asyncio.run(claimer(argv[1], argv[2], argv[3], int(argv[4])))
        elif argv[0] == "putter":
            asyncio.run(putter(argv[1], argv[2], int(argv[3])))
        else:
            raise SystemExit(f"unknown mode {argv[0]!r}")
    except StorageError as exc:  # reported, so the test shows why a worker stopped
        print(f"storage error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
