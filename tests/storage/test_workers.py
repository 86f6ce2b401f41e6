"""The fleet on both backends: workers register, heartbeat and leave; a claim with a worker's
fit takes only jobs that fit (model set, memory, size), prefers the models it holds without
breaking the fairness rule; ETAs share the queue among the live workers that can run each job."""
from __future__ import annotations

import pytest

from storage import STALE_SECONDS, WorkerFit
from storage.errors import InvalidValue
from tests.support.storage import FakeClock, async_test, check_invariants, open_db, request

TINY = WorkerFit(model_sets=("test-tiny",), memory_gb=8.0, max_pixels=512 * 512)


@async_test
async def test_register_heartbeat_and_deregister(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        await db.workers.register("w1", host="gpu-a", device="cuda:1", fit=TINY)
        [worker] = await db.workers.list()
        assert (worker.host, worker.device, worker.model_sets, worker.memory_gb, worker.max_pixels) == \
            ("gpu-a", "cuda:1", ("test-tiny",), 8.0, 512 * 512)
        assert worker.live and worker.jobs_done == 0 and worker.current_job_id is None
        clock.advance(30)
        assert await db.workers.heartbeat("w1", "JOB1")
        await db.workers.job_done("w1", seconds_per_step=0.25)
        [worker] = await db.workers.list()
        assert (worker.heartbeat_at, worker.jobs_done, worker.seconds_per_step, worker.current_job_id) == \
            (clock.t, 1, 0.25, None)
        await db.workers.deregister("w1")
        assert await db.workers.list() == []
        assert not await db.workers.heartbeat("w1", None)  # gone: the worker registers again


@async_test
async def test_a_stale_heartbeat_is_not_live_and_registering_again_restarts(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        await db.workers.register("w1", host="a", device="cpu", fit=WorkerFit())
        await db.workers.job_done("w1", None)
        clock.advance(STALE_SECONDS + 1)
        await db.workers.register("w2", host="b", device="cpu", fit=WorkerFit())
        listed = await db.workers.list()
        assert [(w.id, w.live) for w in listed] == [("w2", True), ("w1", False)]
        await db.workers.register("w1", host="a", device="cpu", fit=WorkerFit())
        assert {w.id: (w.live, w.jobs_done) for w in await db.workers.list()} == \
            {"w1": (True, 0), "w2": (True, 0)}


@async_test
async def test_worker_names_and_fit_are_bounded(store):
    async with await open_db(store) as db:
        with pytest.raises(InvalidValue, match="non-empty"):
            await db.workers.register("", host="a", device="cpu", fit=WorkerFit())
        with pytest.raises(InvalidValue, match="at most 200"):
            await db.workers.register("w", host="h" * 201, device="cpu", fit=WorkerFit())
        with pytest.raises(InvalidValue, match="memory_gb"):
            await db.workers.register("w", host="a", device="cpu", fit=WorkerFit(memory_gb=-1))
        with pytest.raises(InvalidValue, match="32 model sets"):
            await db.workers.register("w", host="a", device="cpu", fit=WorkerFit(model_sets=("",)))
        with pytest.raises(InvalidValue, match="memory_gb"):
            await db.jobs.enqueue(request(memory_gb=-2.0))


@async_test
async def test_a_claim_takes_only_jobs_that_fit(store):
    async with await open_db(store) as db:
        other_set = await db.jobs.enqueue(request(guild=1, user=1, model_set="dd-default"))
        too_hungry = await db.jobs.enqueue(request(guild=2, user=2, memory_gb=20.0))
        too_big = await db.jobs.enqueue(request(guild=3, user=3, width=768, height=768))
        fitting = await db.jobs.enqueue(request(guild=4, user=4, memory_gb=6.0))
        claimed = await db.leases.claim("w1", fit=TINY)
        assert claimed.id == fitting.id
        assert await db.leases.claim("w1", fit=TINY) is None
        big = WorkerFit(model_sets=("dd-default", "test-tiny"), memory_gb=80.0)
        taken = {(await db.leases.claim("w2", fit=big)).id for _ in range(3)}
        assert taken == {other_set.id, too_hungry.id, too_big.id}
        check_invariants(store)


@async_test
async def test_queued_jobs_no_live_worker_fits_are_named_by_model_set(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        await db.jobs.enqueue(request(guild=1, user=1, model_set="dd-default"))
        await db.jobs.enqueue(request(guild=2, user=2, memory_gb=20.0))
        await db.jobs.enqueue(request(guild=3, user=3, width=768, height=768))
        await db.jobs.enqueue(request(guild=4, user=4, memory_gb=6.0))
        assert await db.workers.stranded() == []  # no live worker: the fleet table says so
        await db.workers.register("w1", host="a", device="cuda:0", fit=TINY)
        assert [(s.model_set, s.jobs, s.model_set_served) for s in await db.workers.stranded()] == [
            ("dd-default", 1, False), ("test-tiny", 2, True)]
        clock.advance(STALE_SECONDS + 1)
        await db.workers.register("w2", host="b", device="cuda:0",
                                  fit=WorkerFit(model_sets=("dd-default", "test-tiny"), memory_gb=80.0))
        assert await db.workers.stranded() == []  # w1 is no longer live, w2 takes them all


@async_test
async def test_a_user_whose_jobs_do_not_fit_does_not_block_the_guild(store):
    async with await open_db(store) as db:
        await db.jobs.enqueue(request(guild=1, user="big", memory_gb=40.0))
        small = await db.jobs.enqueue(request(guild=1, user="small", memory_gb=4.0))
        assert (await db.leases.claim("w1", fit=TINY)).id == small.id


@async_test
async def test_affinity_prefers_held_models_among_the_users_own_jobs(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10)
        cold = await db.jobs.enqueue(request(user=1, models="unet-a|ViT-L-14"))
        warm = await db.jobs.enqueue(request(user=1, models="unet-a|ViT-B-32"))
        holding = WorkerFit(model_sets=("test-tiny",), held=("unet-a|ViT-B-32",))
        first = await db.leases.claim("w1", fit=holding)
        assert first.id == warm.id  # the older job waits
        await db.leases.complete(first.id, first.attempt, "w1", artifacts=[], gpu_seconds=1)
        assert (await db.leases.claim("w1", fit=holding)).id == cold.id


@async_test
async def test_affinity_never_takes_another_guilds_or_users_turn(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10)
        a_cold = await db.jobs.enqueue(request(guild=1, user="a", models="cold"))
        b_warm = await db.jobs.enqueue(request(guild=1, user="b", models="warm"))
        c_warm = await db.jobs.enqueue(request(guild=2, user="c", models="warm"))
        urgent_cold = await db.jobs.enqueue(request(guild=1, user="b", models="cold", priority=5))
        holding = WorkerFit(held=("warm",))
        order = []
        while (job := await db.leases.claim("w1", fit=holding)) is not None:
            order.append(job.id)
            await db.leases.complete(job.id, job.attempt, "w1", artifacts=[], gpu_seconds=1)
        # guild 1 (user a), guild 2, guild 1 (user b: priority first), guild 1 (user b)
        assert order == [a_cold.id, c_warm.id, urgent_cold.id, b_warm.id]


@async_test
async def test_eta_divides_by_the_live_workers_that_can_run_the_job(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10)
        jobs = [await db.jobs.enqueue(request(user=1, steps=100)) for _ in range(3)]
        alone = await db.jobs.positions()
        await db.workers.register("w1", host="a", device="cuda:0", fit=TINY)
        one = await db.jobs.positions()
        assert alone[jobs[0].id].workers == 0 and one[jobs[0].id].workers == 1
        await db.workers.register("w2", host="b", device="cuda:1", fit=TINY)
        two = await db.jobs.positions()
        await db.workers.register("w3", host="c", device="cuda:2", fit=WorkerFit(model_sets=("dd-default",)))
        three = await db.jobs.positions()
        last = jobs[-1].id
        assert alone[last].starts_in > 0
        assert one[last].starts_in == pytest.approx(alone[last].starts_in)
        assert two[last].starts_in == pytest.approx(one[last].starts_in / 2)
        assert three[last].starts_in == pytest.approx(two[last].starts_in)  # w3 cannot run it
        assert three[last].workers == 2
        clock.advance(STALE_SECONDS + 1)
        gone = await db.jobs.positions()
        assert gone[last].starts_in == pytest.approx(alone[last].starts_in) and gone[last].workers == 0


@async_test
async def test_an_estimate_says_when_no_live_worker_can_run_the_job(store):
    """0: nothing live can run it (its ETA is no promise); None: an engine that never
    registered runs jobs, so nobody knows."""
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        first = await db.jobs.enqueue(request(user=1, steps=100))
        await db.workers.register("w1", host="a", device="cuda:0", fit=WorkerFit(model_sets=("dd-default",)))
        assert (await db.jobs.position(first.id)).workers == 0  # a model set nobody live runs
        await db.workers.deregister("w1")
        await db.jobs.enqueue(request(user=2, steps=100))
        await db.leases.claim("engine:unregistered")
        [waiting] = (await db.jobs.positions()).values()
        assert waiting.workers is None


@async_test
async def test_a_job_no_live_worker_can_run_does_not_delay_the_others(store):
    """A dd-default job ahead in the queue while only test-tiny workers are live will not run
    before them: it must not add its hours to the ETA of every job behind it."""
    async with await open_db(store) as db:
        stuck = await db.jobs.enqueue(request(user=1, steps=250, model_set="dd-default", width=1280, height=768))
        behind = await db.jobs.enqueue(request(user=2, steps=100))
        await db.workers.register("w1", host="a", device="cuda:0", fit=TINY)
        estimates = await db.jobs.positions()
        assert estimates[stuck.id].position == 1 and estimates[behind.id].position == 2
        assert estimates[behind.id].starts_in == pytest.approx(0.0)
        assert (estimates[stuck.id].workers, estimates[behind.id].workers) == (0, 1)
