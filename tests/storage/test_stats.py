"""Usage statistics (storage/stats.py) on both databases: jobs in every state at known times on
a fake clock, the period's bound, per server and over all servers, and the bounds of `days`."""
from __future__ import annotations

import pytest

from storage import InvalidValue
from storage.stats import DAY, STILL_OPEN, percentile, spread
from tests.support.stats import history
from tests.support.storage import FakeClock, async_test, open_db


@async_test
async def test_one_server_over_seven_days(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        await history(db, clock)
        stats = await db.stats.guild(1, days=7)
    assert (stats.guild_id, stats.days, stats.until, stats.since) == ("1", 7, clock.t, clock.t - 7 * DAY)
    assert stats.jobs == 6
    assert stats.by_kind == {"still": 4, "animation": 1, "study": 1}
    assert stats.by_state == {"succeeded": 2, "failed": 1, "cancelled": 1, "dead": 1, STILL_OPEN: 1}
    assert (stats.gpu_seconds, stats.refunded_seconds) == (90, 30)
    assert [(m.user_id, m.gpu_seconds, m.jobs) for m in stats.top_members] == [
        ("10", 90, 2), ("20", 0, 2), ("30", 0, 2)]
    assert stats.members == 3
    assert (stats.wait.count, stats.wait.median, stats.wait.p90) == (4, 27.5, 40)  # 10, 20, 35, 40
    assert (stats.render.count, stats.render.median, stats.render.p90) == (2, 75, 100)  # 100, 50
    assert stats.failures == {"out_of_memory": 1, "model_missing": 1}
    assert stats.retried == 1
    assert [(c.kind, c.width, c.height, c.steps, c.jobs, c.gpu_seconds) for c in stats.costliest] == [
        ("still", 512, 512, 50, 1, 90), ("still", 512, 512, 100, 1, 30)]
    assert not stats.empty


@async_test
async def test_every_server_and_the_totals(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        await history(db, clock)
        report = await db.stats.report(7)
        longer = await db.stats.report(30)
    assert [(s.guild_id, s.jobs, s.gpu_seconds) for s in report.servers] == [("1", 6, 90), ("2", 1, 60)]
    total = report.total
    assert (total.guild_id, total.jobs, total.gpu_seconds, total.members) == (None, 7, 150, 3)
    # One member in two servers is one member of the totals, with both servers' time.
    assert (total.top_members[0].user_id, total.top_members[0].gpu_seconds, total.top_members[0].jobs) == (
        "10", 150, 3)
    assert (total.wait.median, total.wait.p90) == (35, 60)  # 10, 20, 35, 40, 60
    # 30 days reach the old job and its charge.
    assert (longer.total.jobs, longer.total.gpu_seconds) == (8, 650)
    assert longer.servers[0].guild_id == "1" and longer.servers[0].gpu_seconds == 590


@async_test
async def test_a_quiet_server_is_empty(store):
    clock = FakeClock()
    async with await open_db(store, clock) as db:
        await history(db, clock)
        clock.advance(8 * DAY)  # everything is older than the period now
        quiet = await db.stats.report(7)
        other = await db.stats.guild(3)
    assert quiet.servers == () and quiet.total.empty
    assert other.empty and other.top_members == () and other.wait.median is None


@pytest.mark.parametrize("days", [0, 91, -1, True, 7.5, "7"])
@async_test
async def test_days_out_of_bounds_are_refused(tmp_path, days):
    async with await open_db(tmp_path) as db:
        with pytest.raises(InvalidValue, match="days must be a whole number from 1 to 90"):
            await db.stats.report(days)


def test_percentiles_by_nearest_rank():
    assert percentile([1.0], 90) == 1.0
    assert percentile([float(n) for n in range(1, 11)], 90) == 9.0
    assert percentile([float(n) for n in range(1, 11)], 50) == 5.0
    assert spread([]).median is None
    assert spread([-2.0, 4.0]).median == 2.0  # a clock stepped back counts as no wait
