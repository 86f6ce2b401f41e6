"""Every job state transition on a real database (SQLite and PostgreSQL, the `store` fixture): enqueue, claim, heartbeat, progress,
complete, fail, retry, lease expiry, cancel (queued and running), stale-attempt fencing, and the
bot's delivery bookkeeping."""
from __future__ import annotations

import re

import pytest

from storage import (
    MAX_NOTE_CHARS,
    MAX_RESULT_NOTES,
    Database,
    DuplicateJob,
    InvalidState,
    InvalidValue,
    NotFound,
    StaleAttempt,
    new_job_id,
)
from storage.transfer import copy_database
from tests.support.storage import FakeClock, async_test, check_invariants, open_db, request

OWNER = "engine:test:1"


@async_test
async def test_enqueue_claim_heartbeat_progress_complete(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        job = await db.jobs.enqueue(request(seed=7, priority=0))
        assert (job.state, job.attempt, job.max_attempts, job.seed) == ("queued", 0, 3, 7)
        assert (job.guild_id, job.user_id, job.channel_id) == ("1", "10", "100")
        assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", job.id)

        clock.advance(2)
        claimed = await db.leases.claim(OWNER, lease_seconds=30)
        assert claimed.id == job.id
        assert (claimed.state, claimed.attempt, claimed.lease_owner) == ("running", 1, OWNER)
        assert claimed.lease_expires_at == clock.t + 30 and claimed.started_at == clock.t
        assert await db.leases.claim("engine:other") is None  # nothing else queued

        clock.advance(5)
        assert await db.leases.heartbeat(job.id, 1, OWNER, lease_seconds=30) is False
        assert (await db.jobs.get(job.id)).lease_expires_at == clock.t + 30

        cancel = await db.leases.progress(job.id, 1, OWNER, step=10, total=50,
                                          seconds_per_step=0.4, preview_path="jobs/x/p.png",
                                          checkpoint_path="jobs/x/ckpt.pt")
        assert cancel is False
        running = await db.jobs.get(job.id)
        assert (running.progress_step, running.progress_total, running.seconds_per_step) == (10, 50, 0.4)
        assert (running.preview_path, running.checkpoint_path) == ("jobs/x/p.png", "jobs/x/ckpt.pt")

        clock.advance(20)
        done = await db.leases.complete(job.id, 1, OWNER, artifacts=["jobs/x/0.png"], gpu_seconds=21.5)
        assert (done.state, done.artifacts, done.gpu_seconds) == ("succeeded", ("jobs/x/0.png",), 21.5)
        assert done.finished_at == clock.t and done.lease_owner is None
        assert (await db.quotas.status(1, 10))["day"].user_used == 21.5
    assert check_invariants(store) == {"succeeded": 1}


@async_test
async def test_the_engines_notes_on_a_result_are_kept_with_it_and_bounded(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        claimed = await db.leases.claim(OWNER)
        too_many = [f"note {n}" for n in range(MAX_RESULT_NOTES + 1)]
        for notes in (too_many, ["x" * (MAX_NOTE_CHARS + 1)], [""]):
            with pytest.raises(InvalidValue, match=f"at most {MAX_RESULT_NOTES} notes, each a text of 1 to "
                                                   f"{MAX_NOTE_CHARS} characters"):
                await db.leases.complete(job.id, claimed.attempt, OWNER, artifacts=[], gpu_seconds=1, notes=notes)
        with pytest.raises(StaleAttempt):  # fenced like the artifacts
            await db.leases.complete(job.id, claimed.attempt, "engine:old", artifacts=[], gpu_seconds=1,
                                     notes=["not this one"])
        notes = ["CLIP did not read the end of prompt 1: “…8k”", "ran out of GPU memory; retried…"]
        done = await db.leases.complete(job.id, claimed.attempt, OWNER, artifacts=["a.png"], gpu_seconds=1,
                                        notes=notes)
        assert done.notes == (await db.jobs.get(job.id)).notes == tuple(notes)
        quiet = await db.jobs.enqueue(request(seed=2))
        assert quiet.notes == ()
        # A job that stops part-way delivers what it finished with the notes on it.
        await db.leases.claim(OWNER)
        failed = await db.leases.fail(quiet.id, 1, OWNER, code="quota_exceeded", message="spent", retryable=False,
                                      artifacts=["a.mp4"], notes=notes[:1])
        cancelled = await db.jobs.enqueue(request(seed=3))
        await db.leases.claim(OWNER)
        await db.jobs.cancel(cancelled.id)
        cancelled = await db.leases.acknowledge_cancel(cancelled.id, 1, OWNER, artifacts=["p.mp4"], notes=notes[1:])
        assert (failed.notes, cancelled.notes) == ((notes[0],), (notes[1],))


@async_test
async def test_retryable_failure_requeues_then_dies_with_last_error(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request(max_attempts=2))
        first = await db.leases.claim(OWNER)
        again = await db.leases.fail(job.id, first.attempt, OWNER, code="cuda_oom",
                                     message="out of GPU memory", retryable=True)
        assert (again.state, again.attempt, again.error_code, again.finished_at) == (
            "queued", 1, "cuda_oom", None)
        second = await db.leases.claim(OWNER)
        assert (second.id, second.attempt) == (job.id, 2)
        dead = await db.leases.fail(job.id, 2, OWNER, code="cuda_oom",
                                    message="out of GPU memory again", retryable=True)
        assert (dead.state, dead.error_code, dead.error_message) == (
            "dead", "cuda_oom", "out of GPU memory again")
        assert dead.finished_at is not None
        assert await db.leases.claim(OWNER) is None
    check_invariants(store)


@async_test
async def test_permanent_failure_is_failed_and_costs_nothing(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        claimed = await db.leases.claim(OWNER)
        failed = await db.leases.fail(job.id, claimed.attempt, OWNER, code="bad_init_image",
                                      message="the init image could not be read", retryable=False)
        assert failed.state == "failed" and failed.attempt == 1
        assert (await db.quotas.status(1, 10))["month"].user_used == 0
        assert await db.quotas.ledger(1) == []


@async_test
async def test_admin_retry_of_a_dead_job_keeps_fencing(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request(max_attempts=1))
        await db.leases.claim(OWNER)
        await db.leases.fail(job.id, 1, OWNER, code="crash", message="boom", retryable=True)
        with pytest.raises(InvalidState, match="only failed, dead or cancelled"):
            await db.jobs.retry((await db.jobs.enqueue(request(user=11))).id)
        retried = await db.jobs.retry(job.id, extra_attempts=2)
        assert (retried.state, retried.max_attempts, retried.error_code) == ("queued", 3, None)
        claims = {(await db.leases.claim(OWNER)).id for _ in range(2)}
        assert job.id in claims
        assert (await db.jobs.get(job.id)).attempt == 2
        with pytest.raises(StaleAttempt):  # the first attempt's token stays dead
            await db.leases.heartbeat(job.id, 1, OWNER)
    check_invariants(store)


@async_test
async def test_expired_lease_requeues_and_counts_as_an_attempt(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        job = await db.jobs.enqueue(request())
        for attempt in (1, 2, 3):
            claimed = await db.leases.claim(f"engine:{attempt}", lease_seconds=10)
            assert (claimed.id, claimed.attempt) == (job.id, attempt)
            clock.advance(11)
        released = await db.leases.requeue_expired()
        assert [j.id for j in released] == [job.id]
        dead = await db.jobs.get(job.id)
        assert (dead.state, dead.error_code, dead.lease_expiries) == ("dead", "lease_expired", 3)
        assert dead.error_message == "the engine stopped responding (lease expired) 3 times"


@async_test
async def test_first_expiry_message_and_heartbeat_keeps_the_lease_alive(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        job = await db.jobs.enqueue(request())
        await db.leases.claim(OWNER, lease_seconds=10)
        for _ in range(5):  # 40 s of work, heartbeats every 8 s: never expires
            clock.advance(8)
            await db.leases.heartbeat(job.id, 1, OWNER, lease_seconds=10)
            assert await db.leases.requeue_expired() == []
        clock.advance(10.5)
        (released,) = await db.leases.requeue_expired()
        assert released.state == "queued" and released.lease_owner is None
        assert released.error_message == "the engine stopped responding (lease expired) once"


@async_test
async def test_stale_attempt_writes_are_rejected_and_leave_the_row_unchanged(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        job = await db.jobs.enqueue(request())
        await db.leases.claim("engine:old", lease_seconds=10)
        clock.advance(11)  # the old engine stalls; its lease runs out
        new = await db.leases.claim("engine:new", lease_seconds=10)
        assert (new.id, new.attempt) == (job.id, 2)
        await db.leases.progress(job.id, 2, "engine:new", step=3, total=50)
        before = store.row(job.id)
        zombie_writes = [
            db.leases.heartbeat(job.id, 1, "engine:old"),
            db.leases.progress(job.id, 1, "engine:old", step=40, total=50),
            db.leases.complete(job.id, 1, "engine:old", artifacts=["x.png"], gpu_seconds=9),
            db.leases.fail(job.id, 1, "engine:old", code="x", message="y", retryable=False),
            db.leases.acknowledge_cancel(job.id, 1, "engine:old"),
            db.leases.heartbeat(job.id, 2, "engine:old"),  # right attempt, wrong owner
        ]
        for write in zombie_writes:
            with pytest.raises(StaleAttempt) as info:
                await write
            assert info.value.current_state == "running" and info.value.current_attempt == 2
            assert "stop working on this attempt" in str(info.value)
        assert store.row(job.id) == before
        assert await db.quotas.ledger(1) == []  # the zombie's complete charged nothing
        with pytest.raises(StaleAttempt) as info:
            await db.leases.heartbeat("NOSUCHJOB", 1, OWNER)
        assert info.value.current_state is None


@async_test
async def test_cancel_queued_job_never_starts(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        cancelled = await db.jobs.cancel(job.id)
        assert (cancelled.state, cancelled.cancel_requested) == ("cancelled", True)
        assert cancelled.finished_at is not None
        assert await db.leases.claim(OWNER) is None
        assert await db.jobs.position(job.id) is None
        assert (await db.jobs.cancel(job.id)).state == "cancelled"  # idempotent


@async_test
async def test_a_button_clicked_twice_queues_one_job_while_the_first_waits_or_runs(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=20)
        parent = (await db.jobs.enqueue(request(seed=6))).id
        same = dict(seed=7, parent_job_id=parent, parent_action="same")
        first = await db.jobs.enqueue(request(**same))
        with pytest.raises(DuplicateJob) as twice:  # a double click on 🎯 same seed
            await db.jobs.enqueue(request(**same))
        assert twice.value.job_id == first.id and "rule: duplicate_job" in str(twice.value)
        assert first.id in str(twice.value) and "change the seed" in str(twice.value)
        others = [request(**{**same, "seed": 8}), request(**same, user=11), request(**same, guild=2),
                  request(**{**same, "parent_action": "remix"}), request(seed=7), request(seed=7),
                  request(**same, spec_json='{"text_prompts": ["a castle"]}'),
                  request(**{**same, "seed": None}), request(**{**same, "seed": None})]
        for other in others:  # another seed, user, server, action or setting; typed; no fixed seed
            await db.jobs.enqueue(other)
        job = await db.leases.claim(OWNER)
        while job.id != first.id:
            await db.leases.complete(job.id, job.attempt, OWNER, artifacts=[], gpu_seconds=1)
            job = await db.leases.claim(OWNER)
        with pytest.raises(DuplicateJob):  # running counts too
            await db.jobs.enqueue(request(**same))
        await db.leases.complete(job.id, job.attempt, OWNER, artifacts=[], gpu_seconds=1)
        await db.jobs.enqueue(request(**same))  # clicked again once done: the user wants it again
        check_invariants(store)


@async_test
async def test_cancel_running_job_is_seen_by_heartbeat_and_progress(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        await db.leases.claim(OWNER)
        requested = await db.jobs.cancel(job.id.lower())  # ids are case-insensitive
        assert (requested.state, requested.cancel_requested) == ("running", True)
        assert await db.leases.heartbeat(job.id, 1, OWNER) is True
        assert await db.leases.progress(job.id, 1, OWNER, step=4, total=50) is True
        stopped = await db.leases.acknowledge_cancel(job.id, 1, OWNER)
        assert (stopped.state, stopped.error_code) == ("cancelled", "cancelled")
        assert stopped.lease_owner is None


@async_test
async def test_pending_cancel_wins_over_retry_and_expiry(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        a = await db.jobs.enqueue(request(user=1))
        b = await db.jobs.enqueue(request(user=2))
        ca = await db.leases.claim(OWNER)
        cb = await db.leases.claim("engine:2", lease_seconds=5)
        assert {ca.id, cb.id} == {a.id, b.id}
        await db.jobs.cancel(a.id)
        await db.jobs.cancel(b.id)
        failed = await db.leases.fail(ca.id, 1, OWNER, code="crash", message="x", retryable=True)
        assert failed.state == "cancelled"
        clock.advance(6)
        (expired,) = await db.leases.requeue_expired()
        assert (expired.id, expired.state) == (cb.id, "cancelled")
    check_invariants(store)


@async_test
async def test_requeue_owned_by_a_dead_engine(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        await db.jobs.enqueue(request(user=11))
        await db.leases.claim("engine:dead")
        await db.leases.claim("engine:alive")
        (released,) = await db.leases.requeue_owned_by("engine:dead", "the engine exited (signal 9)")
        assert (released.id, released.state, released.error_code) == (job.id, "queued", "engine_exited")
        assert released.error_message == "the engine exited (signal 9)"
        assert (await db.leases.claim("engine:new")).attempt == 2
    check_invariants(store)


@async_test
async def test_a_stopping_engine_hands_its_job_back_without_using_an_attempt(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        claimed = await db.leases.claim("engine:stopping")
        with pytest.raises(StaleAttempt):  # fenced like every engine write
            await db.leases.hand_back(job.id, claimed.attempt, "engine:other")
        back = await db.leases.hand_back(job.id, claimed.attempt, "engine:stopping")
        assert (back.state, back.attempt, back.max_attempts, back.lease_owner) == ("queued", 1, 4, None)
        again = await db.leases.claim("engine:next")
        assert (again.id, again.attempt) == (job.id, 2)  # the fence still rises
        await db.jobs.cancel(job.id)  # a cancel pending when the engine stops: not handed back
        assert await db.leases.hand_back(job.id, again.attempt, "engine:next") is None
        assert (await db.jobs.get(job.id)).state == "running"
    check_invariants(store)


@async_test
async def test_delivery_nonce_is_fixed_once_and_posting_is_recorded(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        with pytest.raises(InvalidState, match="after it finishes"):
            await db.jobs.begin_delivery(job.id)
        await db.jobs.set_progress_message(job.id, 555)
        await db.leases.claim(OWNER)
        await db.leases.complete(job.id, 1, OWNER, artifacts=["a.png"], gpu_seconds=1)
        assert [j.id for j in await db.jobs.undelivered()] == [job.id]
        first = await db.jobs.begin_delivery(job.id)
        again = await db.jobs.begin_delivery(job.id)  # a resend after a crash reuses the nonce
        assert first.delivery_nonce == again.delivery_nonce and len(first.delivery_nonce) <= 25
        assert again.delivery_state == "sending" and again.progress_message_id == "555"
        posted = await db.jobs.mark_delivered(job.id, [777, "778"])
        assert (posted.delivery_state, posted.result_message_ids) == ("posted", ("777", "778"))
        assert posted.result_channel_id is None  # in the job's own channel
        assert await db.jobs.undelivered() == []
        with pytest.raises(InvalidState, match="not sending twice"):
            await db.jobs.begin_delivery(job.id)
        with pytest.raises(NotFound):
            await db.jobs.set_progress_message("NOPE", 1)


@async_test
async def test_the_delivery_nonce_is_the_same_on_a_restored_copy_and_new_after_a_retry(store, tmp_path):
    """A backup taken before the result was posted must send it with the nonce the original
    sent, so Discord returns the message already there (within its window) instead of a second."""
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        await db.leases.claim(OWNER)
        await db.leases.fail(job.id, 1, OWNER, code="oom", message="out of memory",
                             retryable=False)
        async with await Database.open(tmp_path / "backup.db") as backup:
            await copy_database(db, backup, live=True)  # the snapshot: not yet posted
            restored = await backup.jobs.begin_delivery(job.id)
        original = await db.jobs.begin_delivery(job.id)
        assert original.delivery_nonce == restored.delivery_nonce
        assert re.fullmatch(r"d[0-9a-f]{20}", original.delivery_nonce)  # room for "-dm" within 25
        await db.jobs.mark_delivered(job.id, [1])
        await db.jobs.retry(job.id)
        again = await db.leases.claim(OWNER)
        await db.leases.complete(job.id, again.attempt, OWNER, artifacts=["a.png"], gpu_seconds=1)
        assert (await db.jobs.begin_delivery(job.id)).delivery_nonce != original.delivery_nonce


@async_test
async def test_a_result_posted_elsewhere_says_where_until_the_job_is_retried(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        await db.jobs.cancel(job.id)
        await db.jobs.begin_delivery(job.id)
        posted = await db.jobs.mark_delivered(job.id, [42], channel_id=9001)  # the requester's DM
        assert (posted.result_message_ids, posted.result_channel_id) == (("42",), "9001")
        retried = await db.jobs.retry(job.id)
        assert (retried.result_message_ids, retried.result_channel_id) == ((), None)


@async_test
async def test_failed_jobs_need_a_notice_and_can_be_abandoned(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        await db.jobs.cancel(job.id)
        assert [j.id for j in await db.jobs.undelivered()] == [job.id]
        assert (await db.jobs.abandon_delivery(job.id)).delivery_state == "abandoned"
        assert await db.jobs.undelivered() == []


@async_test
async def test_get_and_list(store):
    async with await open_db(store) as db:
        jobs = [await db.jobs.enqueue(request(guild=g, user=u)) for g, u in
                [(1, 10), (1, 11), (2, 10), (1, 10)]]
        await db.leases.claim(OWNER)
        assert [j.id for j in await db.jobs.list(guild_id=1, user_id=10)] == [jobs[3].id, jobs[0].id]
        assert [j.id for j in await db.jobs.list(states=["running"])] == [jobs[0].id]
        assert len(await db.jobs.list(limit=2)) == 2
        with pytest.raises(InvalidValue, match="unknown"):
            await db.jobs.list(states=["lost"])
        with pytest.raises(NotFound, match="check the id"):
            await db.jobs.get(new_job_id())


@async_test
async def test_bad_requests_and_owner_names_are_refused(store):
    async with await open_db(store) as db:
        for bad in (dict(kind="video"), dict(width=0), dict(steps=True), dict(cuts=-1),
                    dict(model_set=""), dict(guild=""), dict(spec_json=None)):
            guild = bad.pop("guild", 1)
            with pytest.raises(InvalidValue):
                await db.jobs.enqueue(request(guild=guild, **bad))
        with pytest.raises(InvalidValue, match="lease owner"):
            await db.leases.claim("")
        assert await db.jobs.list() == []


def test_job_ids_sort_by_creation_time():
    ids = [new_job_id(1_800_000_000 + i) for i in range(20)]
    assert ids == sorted(ids) and len(set(ids)) == 20


@async_test
async def test_active_counts_count_a_guilds_queued_and_running_jobs_only(store):
    async with await open_db(store) as db:
        assert await db.jobs.active_counts(1) == {"queued": 0, "running": 0}
        for user in (10, 11, 12):
            await db.jobs.enqueue(request(user=user, seed=user))
        await db.jobs.enqueue(request(guild=2, seed=99))
        await db.leases.claim(OWNER)
        cancelled = await db.jobs.enqueue(request(user=13, seed=13))
        await db.jobs.cancel(cancelled.id)
        assert await db.jobs.active_counts(1) == {"queued": 2, "running": 1}
        assert await db.jobs.active_counts("2") == {"queued": 1, "running": 0}
