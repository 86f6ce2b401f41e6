"""Quotas and the usage ledger (charge on completion only, refunds, user/role/member/guild limits,
UTC windows, surviving a restart), guild settings and limits at enqueue, presets, audit log."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from storage import (
    DEFAULT_LIMITS,
    CapExceeded,
    ChannelNotAllowed,
    IntakePaused,
    InvalidValue,
    JobTooLarge,
    NotFound,
    QueueFull,
    QuotaExceeded,
    StaleAttempt,
)
from storage.guilds import MAX_BANNED_WORDS
from storage.quotas import resets_at
from tests.support.storage import FakeClock, async_test, open_db, request

OWNER = "engine:quota"


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


async def run_job(db, seconds: float, **fields) -> str:
    job = await db.jobs.enqueue(request(**fields), role_ids=fields.get("roles", ()))
    claimed = await db.leases.claim(OWNER)
    await db.leases.complete(claimed.id, claimed.attempt, OWNER, artifacts=[], gpu_seconds=seconds)
    return job.id


# ---- ledger and limits ------------------------------------------------------------------------

@async_test
async def test_only_completed_work_is_charged_and_refunds_cancel_it(store):
    async with await open_db(store) as db:
        done = await run_job(db, 30)
        failing = await db.jobs.enqueue(request())
        await db.leases.claim(OWNER)
        await db.leases.fail(failing.id, 1, OWNER, code="x", message="y", retryable=False)
        cancelled = await db.jobs.enqueue(request())
        await db.jobs.cancel(cancelled.id)
        status = await db.quotas.status(1, 10)
        assert status["day"].user_used == status["month"].guild_used == 30
        assert await db.quotas.refund(done, reason="result could not be posted", actor_id=99) == 30
        assert await db.quotas.refund(done, reason="twice") == 0  # nothing left to refund
        assert (await db.quotas.status(1, 10))["day"].user_used == 0
        kinds = [(e.kind, e.gpu_seconds) for e in await db.quotas.ledger(1, user_id=10)]
        assert kinds == [("refund", -30), ("charge", 30)]
        assert (await db.audit.list(1))[0].action == "quota.refund"
        with pytest.raises(NotFound):
            await db.quotas.refund("NOPE", reason="x")


@async_test
async def test_user_limit_overrides_roles_and_the_most_generous_role_applies(store):
    async with await open_db(store) as db:
        await db.quotas.set_limit(1, "member", "day", 100)
        await db.quotas.set_limit(1, "role", "day", 300, subject_id="artists")
        await db.quotas.set_limit(1, "role", "day", 200, subject_id="regulars")
        await db.quotas.set_limit(1, "user", "day", 50, subject_id=7)
        assert (await db.quotas.status(1, 10))["day"].user_limit == 100
        assert (await db.quotas.status(1, 10, ["regulars"]))["day"].user_limit == 200
        assert (await db.quotas.status(1, 10, ["regulars", "artists"]))["day"].user_limit == 300
        assert (await db.quotas.status(1, 7, ["artists"]))["day"].user_limit == 50
        assert (await db.quotas.status(1, 10))["month"].user_limit is None
        await db.quotas.set_limit(1, "role", "day", None, subject_id="artists")
        assert (await db.quotas.status(1, 10, ["artists"]))["day"].user_limit == 100
        assert {(q.scope, q.subject_id) for q in await db.quotas.limits(1)} == {
            ("member", None), ("role", "regulars"), ("user", "7")}


@async_test
async def test_daily_quota_refuses_with_window_limit_and_reset_time(store):
    clock = FakeClock(utc("2027-03-10T15:00:00"))
    async with await open_db(store, clock) as db:
        await db.quotas.set_limit(1, "user", "day", 60, subject_id=10)
        await db.quotas.set_limit(1, "member", "month", 1000)
        await run_job(db, 45)
        await run_job(db, 45)  # allowed: 45 < 60 when it was queued
        with pytest.raises(QuotaExceeded) as info:
            await db.jobs.enqueue(request())
        error = info.value
        assert (error.scope, error.window, error.limit_seconds, error.used_seconds) == (
            "user", "day", 60, 90)
        assert error.resets_at == utc("2027-03-11T00:00:00")
        assert "2027-03-11 00:00 UTC" in str(error) and "raise the day limit" in str(error)
        await run_job(db, 10, user=11)  # another member is not affected
        clock.t = utc("2027-03-11T00:00:01")
        assert (await db.quotas.check(1, 10))["day"].user_remaining == 60
        await db.jobs.enqueue(request())


@async_test
async def test_guild_monthly_total_and_the_latest_reset_is_reported(store):
    clock = FakeClock(utc("2027-12-15T23:00:00"))
    async with await open_db(store, clock) as db:
        await db.quotas.set_limit(1, "guild", "month", 100)
        await db.quotas.set_limit(1, "user", "day", 10, subject_id=10)
        await run_job(db, 20, user=10)
        await run_job(db, 100, user=11)
        with pytest.raises(QuotaExceeded) as info:  # day and month both spent: month reported
            await db.quotas.check(1, 10)
        assert (info.value.scope, info.value.window) == ("guild", "month")
        assert info.value.resets_at == utc("2028-01-01T00:00:00")
        assert "this server's GPU budget for this month" in str(info.value)


def test_window_resets_roll_over_months_and_years():
    assert resets_at("day", utc("2027-02-28T12:00:00")) == utc("2027-03-01T00:00:00")
    assert resets_at("month", utc("2027-02-28T12:00:00")) == utc("2027-03-01T00:00:00")
    assert resets_at("month", utc("2027-12-15T00:00:00")) == utc("2028-01-01T00:00:00")


@async_test
async def test_quota_state_survives_a_restart(store):
    clock = FakeClock(utc("2027-05-05T10:00:00"))
    async with await open_db(store, clock) as db:
        await db.quotas.set_limit(1, "member", "month", 100)
        await run_job(db, 150)
    async with await open_db(store, clock) as db:  # a fresh process, the same file
        with pytest.raises(QuotaExceeded) as info:
            await db.jobs.enqueue(request())
        assert info.value.window == "month" and info.value.used_seconds == 150
        assert info.value.resets_at == utc("2027-06-01T00:00:00")


@async_test
async def test_bad_quota_settings_are_refused(store):
    async with await open_db(store) as db:
        for args, kwargs, match in [
            (("weekly-ish", "day", 1), {}, "scope"),
            (("user", "week", 1), {"subject_id": 1}, "window"),
            (("user", "day", 1), {}, "needs"),
            (("guild", "day", 1), {"subject_id": 1}, "takes no"),
            (("member", "day", -5), {}, "≥ 0"),
        ]:
            with pytest.raises(InvalidValue, match=match):
                await db.quotas.set_limit(1, *args, **kwargs)


# ---- guild settings and enqueue refusals ------------------------------------------------------

@async_test
async def test_size_limits_name_the_cap_and_the_fix(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_steps=200, max_pixels=512 * 512, max_cuts=32,
                                   max_frames=10, actor_id=5)
        cases = [
            (dict(steps=250), "max_steps", "use steps=200 or fewer"),
            (dict(width=1280, height=768), "max_pixels", "try width_height=[640, 384]"),
            (dict(cuts=64), "max_cuts", "lower cutn_batches"),
            (dict(kind="animation", frames=50), "max_frames", "max_frames=10"),
        ]
        for fields, cap, fix in cases:
            with pytest.raises(JobTooLarge) as info:
                await db.jobs.enqueue(request(**fields))
            assert info.value.cap == cap and fix in str(info.value)
            assert f"(limit {cap}={info.value.limit})" in str(info.value)
        await db.jobs.enqueue(request(steps=200, width=512, height=512, cuts=32))
        await db.jobs.enqueue(request(kind="study", frames=12))  # cells are not frames
        settings = await db.guilds.get(1)
        assert settings.limits.max_steps == 200
        assert settings.limits.max_queued_per_user == DEFAULT_LIMITS.max_queued_per_user
        await db.guilds.set_limits(1, max_steps=None)  # back to the default
        assert (await db.guilds.get(1)).limits.max_steps == DEFAULT_LIMITS.max_steps
        for bad in (dict(max_steps=0), dict(max_steps="9"), dict(max_speed=3)):
            with pytest.raises(InvalidValue):
                await db.guilds.set_limits(1, **bad)


@async_test
async def test_queue_caps_per_user_and_per_guild(store):
    async with await open_db(store) as db:
        await db.guilds.set_limits(1, max_queued_per_user=2, max_queued_per_guild=3)
        for _ in range(2):
            await db.jobs.enqueue(request(user=10))
        with pytest.raises(QueueFull) as info:
            await db.jobs.enqueue(request(user=10))
        assert info.value.cap == "max_queued_per_user" and "/cancel" in str(info.value)
        await db.jobs.enqueue(request(user=11))
        with pytest.raises(QueueFull) as info:
            await db.jobs.enqueue(request(user=12))
        assert (info.value.cap, info.value.limit) == ("max_queued_per_guild", 3)
        await db.leases.claim(OWNER)  # a started job no longer counts as waiting
        await db.jobs.enqueue(request(user=10))
        await db.jobs.enqueue(request(user=2, guild=2))  # other guilds are separate


@async_test
async def test_paused_intake_and_allowed_channels(store):
    async with await open_db(store) as db:
        await db.guilds.pause_intake(1, "maintenance until 6pm", actor_id=5)
        with pytest.raises(IntakePaused, match="maintenance until 6pm"):
            await db.jobs.enqueue(request())
        await db.guilds.resume_intake(1, actor_id=5)
        await db.guilds.allow_channel(1, 201, actor_id=5)
        await db.guilds.allow_channel(1, 200, actor_id=5)
        with pytest.raises(ChannelNotAllowed, match="<#200>, <#201>"):
            await db.jobs.enqueue(request(channel_id=100))
        await db.jobs.enqueue(request(channel_id=201))
        # A thread (its own channel id) under an allowed channel follows that channel's rule.
        in_thread = await db.jobs.enqueue(request(channel_id=7001, rules_channel_id=201))
        assert in_thread.channel_id == "7001"
        with pytest.raises(ChannelNotAllowed):
            await db.jobs.enqueue(request(channel_id=201, rules_channel_id=7002))
        await db.guilds.disallow_channel(1, 201)
        await db.guilds.allow_channel(1, 100)
        assert (await db.guilds.get(1)).allowed_channel_ids == {"200", "100"}
        for channel in (200, 100):  # an empty list allows every channel
            await db.guilds.disallow_channel(1, channel)
        assert (await db.guilds.get(1)).channel_allowed(12345)
        actions = [e.action for e in await db.audit.list(1)]
        assert actions[-4:] == ["channels.allow", "channels.allow", "intake.resume", "intake.pause"]


@async_test
async def test_banned_words_and_defaults(store):
    async with await open_db(store) as db:
        await db.guilds.add_banned_word(1, "  Gore ")
        await db.guilds.add_banned_word(1, "dark   souls")
        settings = await db.guilds.get(1)
        assert settings.banned_words == ("dark souls", "gore")
        assert await db.guilds.remove_banned_word(1, "GORE") is True
        assert await db.guilds.remove_banned_word(1, "gore") is False
        await db.guilds.set_defaults(1, {"steps": 150, "width_height": [768, 512]}, actor_id=5)
        assert (await db.guilds.get(1)).defaults == {"steps": 150, "width_height": [768, 512]}
        with pytest.raises(InvalidValue):
            await db.guilds.add_banned_word(1, " ")
        assert (await db.guilds.get(2)).defaults == {}


@async_test
async def test_banning_a_word_again_changes_and_audits_nothing_even_at_the_cap(store):
    async with await open_db(store) as db:
        for i in range(MAX_BANNED_WORDS):
            assert await db.guilds.add_banned_word(1, f"word{i}") is True
        assert await db.guilds.add_banned_word(1, "  WORD7 ", actor_id=5) is False
        with pytest.raises(InvalidValue, match="remove some before adding more"):
            await db.guilds.add_banned_word(1, "one more")
        actions = [e.action for e in await db.audit.list(1, limit=500)]
        assert actions == ["banned_words.add"] * MAX_BANNED_WORDS


# ---- presets and the audit log ----------------------------------------------------------------

@async_test
async def test_presets_prefer_the_members_own_and_are_capped(store):
    async with await open_db(store) as db:
        await db.presets.save(1, "Misty", '{"steps": 100}', 1, actor_id=5)
        await db.presets.save(1, "misty", '{"steps": 300}', 1, owner_id=10)
        assert (await db.presets.get(1, "MISTY", owner_id=10)).spec_json == '{"steps": 300}'
        assert (await db.presets.get(1, "misty", owner_id=11)).owner_id is None
        assert [(p.owner_id, p.name) for p in await db.presets.list(1, owner_id=10)] == [
            ("10", "misty"), (None, "misty")]
        await db.presets.save(1, "misty", '{"steps": 301}', 1, owner_id=10)  # replace
        assert (await db.presets.get(1, "misty", owner_id=10)).spec_json == '{"steps": 301}'
        assert await db.presets.delete(1, "misty", owner_id=10) is True
        assert (await db.presets.get(1, "misty", owner_id=10)).owner_id is None
        with pytest.raises(InvalidValue, match="misty-forest"):
            await db.presets.save(1, "../etc", "{}", 1)
        for n in range(24):
            await db.presets.save(1, f"p{n}", "{}", 1)
        with pytest.raises(CapExceeded, match="max_presets"):
            await db.presets.save(1, "one-too-many", "{}", 1)
        with pytest.raises(NotFound):
            await db.presets.get(2, "misty")
        assert (await db.audit.list(1, limit=1))[0].action == "preset.save"


@async_test
async def test_audit_log_pages_newest_first(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        for n in range(5):
            clock.advance(1)
            entry = await db.audit.record(1, 5, "job.cancel", target=f"J{n}", detail={"n": n})
        assert (entry.actor_id, entry.detail, entry.at) == ("5", {"n": 4}, clock.t)
        page = await db.audit.list(1, limit=2)
        assert [e.target for e in page] == ["J4", "J3"]
        assert [e.target for e in await db.audit.list(1, limit=2, before_id=page[-1].id)] == [
            "J2", "J1"]
        assert await db.audit.list(2) == []
        with pytest.raises(InvalidValue):
            await db.audit.record(1, 5, "")


@async_test
async def test_partial_charges_survive_a_failure_and_complete_bills_only_the_balance(store):
    async with await open_db(store) as db:
        failing = await db.jobs.enqueue(request())
        claimed = await db.leases.claim(OWNER)
        await db.leases.charge_partial(failing.id, claimed.attempt, OWNER, gpu_seconds=5, note="cell 1 of 4")
        with pytest.raises(StaleAttempt):  # fenced: a superseded attempt cannot bill
            await db.leases.charge_partial(failing.id, claimed.attempt + 1, OWNER, gpu_seconds=5, note="x")
        await db.leases.fail(failing.id, claimed.attempt, OWNER, code="x", message="y", retryable=False)
        assert (await db.quotas.status(1, 10))["day"].user_used == 5  # the finished cell stays billed

        done = await db.jobs.enqueue(request())
        claimed = await db.leases.claim(OWNER)
        await db.leases.charge_partial(done.id, claimed.attempt, OWNER, gpu_seconds=4, note="cell 1 of 2")
        # The same cell's charge sent again (its answer was lost in a server restart) bills nothing.
        await db.leases.charge_partial(done.id, claimed.attempt, OWNER, gpu_seconds=4, note="cell 1 of 2")
        job = await db.leases.complete(done.id, claimed.attempt, OWNER, artifacts=[], gpu_seconds=10,
                                       already_charged=4)
        assert job.gpu_seconds == 10 and (await db.quotas.status(1, 10))["day"].user_used == 15
        assert await db.quotas.refund(done.id, reason="admin") == 10  # an admin refund gives back all
