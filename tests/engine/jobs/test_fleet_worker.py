"""An engine in the fleet: it registers while it runs (device, model set, current job), claims
only the jobs its `WorkerFit` accepts, counts what it finished with its speed, remembers the
models it holds for the claim's affinity, registers again when its row is gone, and leaves the
fleet when it stops."""
from __future__ import annotations

import asyncio

from engine.jobs.context import WorkerConfig
from engine.jobs.worker import EngineWorker
from engine.spec.render import SCHEMA_VERSION
from storage import Database, JobRequest, WorkerFit
from tests.support.engine import fast_spec, tiny_pool


def request(seed: int, **changes) -> JobRequest:
    fields = dict(guild_id=1, channel_id=2, user_id=3, kind="still", spec_json=fast_spec(seed=seed).to_json(),
                  spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64, steps=12,
                  models="tiny+ViT-B-32")
    return JobRequest(**{**fields, **changes})


async def until(predicate, timeout: float = 300.0):
    for _ in range(int(timeout / 0.05)):
        if value := await predicate():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def test_a_worker_registers_claims_what_fits_counts_and_leaves(tmp_path):
    async def body():
        async with await Database.open(tmp_path / "disco.db") as db:
            foreign = await db.jobs.enqueue(request(1, model_set="dd-default"))
            hungry = await db.jobs.enqueue(request(2, guild_id=5, memory_gb=40.0))
            mine = await db.jobs.enqueue(request(3, guild_id=6, memory_gb=2.0))
            fit = WorkerFit(model_sets=("test-tiny",), memory_gb=8.0)
            worker = EngineWorker(db, tiny_pool(), tmp_path, owner="worker:test:cpu:1", fit=fit,
                                  config=WorkerConfig(checkpoint_every=0, progress_every=0,
                                                      heartbeat_seconds=0.2, poll_seconds=0.2))
            running = asyncio.create_task(worker.run())

            async def counted():
                rows = [w for w in await db.workers.list() if w.jobs_done == 1]
                return rows[0] if rows else None
            row = await until(counted)
            assert (row.id, row.device, row.model_sets, row.memory_gb, row.live) == \
                ("worker:test:cpu:1", "cpu", ("test-tiny",), 8.0, True)
            assert row.seconds_per_step and row.seconds_per_step > 0
            assert worker.current_job is None and worker._claim_fit().held == ("tiny+ViT-B-32",)
            await db.workers.deregister(worker.owner)  # e.g. removed by hand: it comes back
            await until(lambda: _registered(db, worker.owner))
            worker.stop()
            await running
            states = {j: (await db.jobs.get(j)).state for j in (foreign.id, hungry.id, mine.id)}
            assert states == {foreign.id: "queued", hungry.id: "queued", mine.id: "succeeded"}
            assert await db.workers.list() == []
    asyncio.run(body())


async def _registered(db: Database, owner: str) -> bool:
    return any(w.id == owner for w in await db.workers.list())
