"""Fair claiming (round-robin over guilds, then users, FIFO per user), the running cap, queue
positions that match the real claim order, and ETAs from measured step times."""
from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from storage.eta import DEFAULT_SECONDS_PER_MEGAPIXEL_STEP, remaining_steps, size_bucket
from tests.support.storage import FakeClock, async_test, check_invariants, open_db, request

OWNER = "engine:fair"
BIG_LIMITS = dict(max_queued_per_user=2000, max_queued_per_guild=2000)


async def claim_and_finish(db, owner: str = OWNER):
    job = await db.leases.claim(owner)
    if job is not None:
        await db.leases.complete(job.id, job.attempt, owner, artifacts=[], gpu_seconds=1)
    return job


@async_test
async def test_late_guild_runs_after_at_most_one_job_of_the_busy_guild(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits("A", **BIG_LIMITS)
        for _ in range(50):
            await db.jobs.enqueue(request(guild="A", user=1))
        b = await db.jobs.enqueue(request(guild="B", user=2))
        before_b = 0
        while (await claim_and_finish(db)).id != b.id:
            before_b += 1
        assert before_b <= 1


@async_test
async def test_new_guild_jumps_ahead_of_a_guild_that_was_just_served(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits("A", **BIG_LIMITS)
        for _ in range(50):
            await db.jobs.enqueue(request(guild="A", user=1))
        for _ in range(5):
            await claim_and_finish(db)
        b = await db.jobs.enqueue(request(guild="B", user=2))
        assert (await db.jobs.position(b.id)).position == 1
        assert (await claim_and_finish(db)).id == b.id


@async_test
async def test_users_inside_a_guild_take_turns_and_priority_comes_first(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10)
        names = {}
        for user, count in (("a", 5), ("b", 2), ("c", 1)):
            for n in range(count):
                names[(await db.jobs.enqueue(request(user=user))).id] = f"{user}{n}"
        urgent = await db.jobs.enqueue(request(user="a", priority=5))
        names[urgent.id] = "a!"
        order = [names[(await claim_and_finish(db)).id] for _ in range(len(names))]
        assert order == ["a!", "b0", "c0", "a0", "b1", "a1", "a2", "a3", "a4"]
        assert await db.leases.claim(OWNER) is None


@async_test
async def test_running_cap_holds_back_a_users_second_job(store):
    async with await open_db(store) as db:
        first = await db.jobs.enqueue(request(user=1))
        await db.jobs.enqueue(request(user=1))
        other = await db.jobs.enqueue(request(user=2))
        assert (await db.leases.claim("engine:1")).id == first.id
        assert (await db.leases.claim("engine:2")).id == other.id
        assert await db.leases.claim("engine:3") is None  # user 1 already runs one job
        await db.guilds.set_limits(1, max_running_per_user=2)
        assert (await db.leases.claim("engine:3")).user_id == "1"
    check_invariants(store)


@async_test
async def test_no_starvation_over_a_thousand_job_simulation(store):
    rng = random.Random(1234)
    guilds, users = [f"g{i}" for i in range(6)], [f"u{i}" for i in range(4)]
    async with await open_db(store, FakeClock()) as db:
        for guild in guilds:
            await db.guilds.set_limits(guild, **BIG_LIMITS)
        enqueued_at: dict[str, int] = {}
        ahead_at_enqueue: dict[str, int] = {}
        owner_of: dict[str, tuple[str, str]] = {}
        waiting: Counter[tuple[str, str]] = Counter()
        served_since_guild: dict[str, Counter[str]] = {}
        served_since_user: dict[tuple[str, str], Counter[str]] = {}
        claims = 0
        while claims < 1000:
            if len(enqueued_at) < 1000:  # bursty arrivals: one guild at a time, skewed
                guild = guilds[min(int(rng.expovariate(0.7)), 5)]
                for _ in range(rng.choice((0, 1, 1, 2, 5))):
                    if len(enqueued_at) >= 1000:
                        break
                    user = rng.choice(users)
                    if not any(waiting[(guild, u)] for u in users):
                        served_since_guild[guild] = Counter()
                    if not waiting[(guild, user)]:
                        served_since_user[(guild, user)] = Counter()
                    job = await db.jobs.enqueue(request(guild=guild, user=user))
                    enqueued_at[job.id], owner_of[job.id] = claims, (guild, user)
                    ahead_at_enqueue[job.id] = waiting[(guild, user)]
                    waiting[(guild, user)] += 1
            job = await claim_and_finish(db)
            if job is None:
                continue
            guild, user = owner_of[job.id]
            # Round-robin: while a guild (a user) waits, nobody else is served twice.
            for other, seen in served_since_guild.items():
                if other != guild and any(waiting[(other, u)] for u in users):
                    seen[guild] += 1
                    assert seen[guild] <= 1, f"{guild} served twice while {other} waited"
            for (g, other), seen in served_since_user.items():
                if g == guild and other != user and waiting[(g, other)]:
                    seen[user] += 1
                    assert seen[user] <= 1, f"{user} served twice while {other} waited in {g}"
            served_since_guild[guild], served_since_user[(guild, user)] = Counter(), Counter()
            waiting[(guild, user)] -= 1
            wait = claims - enqueued_at[job.id]
            assert wait <= len(guilds) * len(users) * (ahead_at_enqueue[job.id] + 1)
            claims += 1
        assert sum(waiting.values()) == 0 and await db.leases.claim(OWNER) is None
    assert check_invariants(store) == {"succeeded": 1000}


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.sampled_from("ABC"), st.sampled_from("xyz"),
                               st.sampled_from([0, 0, 0, 1])), min_size=1, max_size=30),
       served_first=st.integers(0, 8))
def test_predicted_positions_match_the_real_claim_order(store, plan, served_first):
    async def body(fresh):
        async with await open_db(fresh) as db:
            for guild in "ABC":
                await db.guilds.set_limits(guild, **BIG_LIMITS)
            half = len(plan) // 2
            for guild, user, priority in plan[:half]:
                await db.jobs.enqueue(request(guild=guild, user=user, priority=priority))
            for _ in range(served_first):  # leave some turns already taken
                await claim_and_finish(db)
            for guild, user, priority in plan[half:]:
                await db.jobs.enqueue(request(guild=guild, user=user, priority=priority))
            predicted = sorted((e.position, e.job_id) for e in (await db.jobs.positions()).values())
            actual = []
            while (job := await claim_and_finish(db)) is not None:
                actual.append(job.id)
            assert [job_id for _, job_id in predicted] == actual
            assert [p for p, _ in predicted] == list(range(1, len(actual) + 1))

    asyncio.run(body(store.new()))  # each example on an empty database


@async_test
async def test_eta_from_measured_step_times_with_fallbacks(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10)
        for sps in (0.4, 0.5, 0.6):  # three finished 512×512 test-tiny jobs → median 0.5 s/step
            await db.jobs.enqueue(request())
            job = await db.leases.claim(OWNER)
            await db.leases.complete(job.id, job.attempt, OWNER, artifacts=[], gpu_seconds=1,
                                     seconds_per_step=sps)
        running = await db.jobs.enqueue(request(user=1))
        same = await db.jobs.enqueue(request(user=2))
        bigger = await db.jobs.enqueue(request(user=3, width=1024, height=512, steps=100))
        unknown = await db.jobs.enqueue(request(user=4, model_set="dd-default", steps=10))
        await db.leases.claim(OWNER)
        await db.leases.progress(running.id, 1, OWNER, step=10, total=50, seconds_per_step=0.25)
        eta = await db.jobs.positions()
        assert running.id not in eta
        assert eta[same.id].position == 1 and eta[same.id].starts_in == pytest.approx(40 * 0.25)
        assert eta[same.id].finishes_in == pytest.approx(10 + 50 * 0.5)
        # 1024×512 has no samples: the nearest measured size (512×512), scaled by pixels.
        assert eta[bigger.id].starts_in == pytest.approx(35)
        assert eta[bigger.id].finishes_in == pytest.approx(35 + 100 * 1.0)
        # No samples for the model set at all: the default per megapixel.
        default = DEFAULT_SECONDS_PER_MEGAPIXEL_STEP * size_bucket(512, 512) * 65536 / 1e6
        assert eta[unknown.id].starts_in == pytest.approx(135)
        assert eta[unknown.id].finishes_in == pytest.approx(135 + 10 * default)
        assert (await db.jobs.position(unknown.id.lower())).position == 3


def test_remaining_steps_counts_frames_and_progress():
    row = dict(kind="still", steps=20, frames=10, progress_total=0, progress_frame=3, progress_step=5)
    assert remaining_steps(row) == 200 - 65
    assert remaining_steps(dict(row, progress_total=18)) == 180 - 59  # skip_steps known
    assert remaining_steps(dict(row, progress_frame=10, progress_step=0)) == 0


def test_remaining_steps_of_an_animation_count_later_frames_at_their_average():
    # Frame 0 runs 250 steps, later frames about 100 (steps = the average per frame).
    row = dict(kind="animation", steps=100, frames=10, progress_total=250, progress_frame=0, progress_step=50)
    assert remaining_steps(row) == 200 + 9 * 100
    assert remaining_steps(dict(row, progress_total=100, progress_frame=9, progress_step=40)) == 60
