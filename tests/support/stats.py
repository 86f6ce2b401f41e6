"""A known history for the usage-statistics tests (storage, `disco stats`): jobs in every state
at known times on a fake clock, in two servers, one job older than a 7-day period."""
from __future__ import annotations

from storage.stats import DAY
from tests.support.storage import request

OWNER = "engine:stats"


async def finish(db, clock, *, wait: float, render: float, gpu: float, **fields) -> str:
    job = await db.jobs.enqueue(request(**fields))
    clock.advance(wait)
    claimed = await db.leases.claim(OWNER)
    assert claimed.id == job.id
    clock.advance(render)
    await db.leases.complete(job.id, claimed.attempt, OWNER, artifacts=[], gpu_seconds=gpu)
    return job.id


async def fail(db, clock, *, wait: float, code: str, retryable: bool = False, **fields) -> str:
    job = await db.jobs.enqueue(request(**fields))
    clock.advance(wait)
    claimed = await db.leases.claim(OWNER)
    await db.leases.fail(job.id, claimed.attempt, OWNER, code=code, message="x", retryable=retryable)
    return job.id


async def history(db, clock) -> dict[str, str]:
    """Server 1 (members 10, 20, 30) and server 2 (member 10); the comments give the times the
    figures must show. The old job ends 8 days before the rest begins."""
    ids = {"old": await finish(db, clock, wait=1, render=1, gpu=500)}
    clock.advance(8 * DAY)
    ids["a"] = await finish(db, clock, wait=10, render=100, gpu=90)  # member 10: wait 10, render 100
    ids["b"] = await fail(db, clock, wait=20, code="out_of_memory", kind="animation")  # wait 20
    # Member 20: failed once (retryable), then succeeded on attempt 2: wait 30 + 5 to its last
    # start, render 50; then refunded.
    c = await db.jobs.enqueue(request(user=20, steps=100))
    clock.advance(30)
    first = await db.leases.claim(OWNER)
    await db.leases.fail(c.id, first.attempt, OWNER, code="engine_crashed", message="x", retryable=True)
    clock.advance(5)
    second = await db.leases.claim(OWNER)
    assert second.attempt == 2
    clock.advance(50)
    await db.leases.complete(c.id, 2, OWNER, artifacts=[], gpu_seconds=30)
    assert await db.quotas.refund(c.id, reason="the result could not be posted") == 30
    ids["c"] = c.id
    ids["d"] = (await db.jobs.cancel((await db.jobs.enqueue(request(user=20))).id)).id  # never started
    ids["f"] = await fail(db, clock, wait=40, code="model_missing", retryable=True, user=30,
                          max_attempts=1)  # dead: no attempts left
    ids["e"] = (await db.jobs.enqueue(request(user=30, kind="study"))).id  # still queued
    ids["other"] = await finish(db, clock, wait=60, render=10, gpu=60, guild=2)  # another server
    return ids
