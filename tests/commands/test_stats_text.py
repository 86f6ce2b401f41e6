"""Usage statistics as text (commands/stats_text.py): durations, shares, the empty period, and a
long list cut to fit one Discord message with a note saying what was cut."""
from __future__ import annotations

from commands.stats_text import (DISCORD, TERMINAL, duration_text, failures_text, report_text,
                                 share_text, stats_text)
from storage.stats import DAY, MemberUse, Report, SettingsCost, Spread, Stats

NOW = 1_800_000_000.0


def stats(members: int = 3, **overrides) -> Stats:
    top = tuple(MemberUse(str(100_000_000_000_000_000 + n), 3600.0 / (n + 1), n + 1) for n in range(members))
    fields = dict(guild_id="1", since=NOW - 7 * DAY, until=NOW, days=7, jobs=12,
                  by_kind={"still": 10, "animation": 2}, by_state={"still open": 1, "succeeded": 9, "failed": 2},
                  gpu_seconds=sum(m.gpu_seconds for m in top), refunded_seconds=30.0, members=members,
                  top_members=top, wait=Spread(10, 12.0, 250.0), render=Spread(9, 95.0, 300.0),
                  failures={"out_of_memory": 2}, retried=1,
                  costliest=(SettingsCost("still", 1024, 768, 250, 3, 5400.0),))
    fields.update(overrides)
    return Stats(**fields)


def test_durations():
    assert [duration_text(s) for s in (None, 0, 4.5, 12, 59.4, 60, 250, 3600, 5400, 360_000)] == [
        "–", "0 s", "4.5 s", "12 s", "59 s", "1.0 min", "4.2 min", "1.0 h", "1.5 h", "100.0 h"]


def test_shares():
    assert [share_text(p, w) for p, w in ((1, 4), (0.001, 100), (0, 100), (5, 0), (-3, 10), (10, 10))] == [
        "25%", "<1%", "0%", "–", "0%", "100%"]


def test_one_server_for_discord():
    text = stats_text(stats())
    assert text.startswith(f"**Usage in the last 7 day(s)** (since <t:{int(NOW - 7 * DAY)}:f>)\n")
    assert "**Jobs:** 12 — 10 still images · 2 animations" in text
    assert "**Outcome:** 9 succeeded · 2 failed · 1 still open" in text  # final states first
    assert "**GPU time charged:** 1.8 h (30 s refunded)" in text
    assert "**Queue wait:** median 12 s, 90th percentile 4.2 min (10 jobs started)" in text
    assert "**Render time:** median 1.6 min per job (9 succeeded)" in text
    assert "**Failures:** `out_of_memory` ×2" in text and "**Retried:** 1 job(s)" in text
    assert "still 1024×768, 250 steps: 1.5 h over 3 job(s)" in text
    assert "**Most GPU time** (top 3 of 3 members):\n1. <@100000000000000000> — 1.0 h (55%), 1 job(s)" in text
    assert "cut to fit" not in text


def test_a_long_answer_is_cut_to_fit_and_says_so():
    many = stats(members=10, failures={f"code_{n:02}_{'x' * 50}": 1 for n in range(12)})
    full = stats_text(many)
    assert "4 more codes" in full  # failure codes beyond the first 8 are counted
    cut = stats_text(many, limit=1300)
    assert len(cut) <= 1300 < len(full)
    kept = sum(1 for line in cut.splitlines() if line.split(". <@")[0].isdigit())
    assert 0 < kept < 10
    assert f"(cut to fit one message: {kept} of the top 10 members shown)" in cut
    assert "**Failures:**" in cut  # the figures stay; members go first
    tiny = stats_text(many, limit=300)
    assert len(tiny) <= 300 and "0 of the top 10 members" in tiny and "figures shown" in tiny


def test_an_empty_period_says_so_plainly():
    empty = stats(members=0, jobs=0, by_kind={}, by_state={}, gpu_seconds=0.0, refunded_seconds=0.0,
                  wait=Spread(0, None, None), render=Spread(0, None, None), failures={}, retried=0,
                  costliest=())
    assert stats_text(empty).endswith("\nNo jobs were queued and no GPU time was charged in this period.")
    assert "No jobs were queued" in report_text(Report((), empty))


def test_the_terminal_report_names_servers_and_totals():
    one, two = stats(), stats(guild_id="2", members=1)
    text = report_text(Report((one, two), stats(guild_id=None)))
    assert text.startswith("== Server 1 ==\nUsage in the last 7 day(s) (since 2027-01-08 08:00 UTC)")
    assert "== Server 2 ==" in text and "== All 2 servers ==" in text
    assert "1. user 100000000000000000 — 1.0 h" in text and "**" not in text and "<@" not in text
    assert report_text(Report((one,), one)).count("==") == 2  # one server: no separate totals


def test_failure_codes_are_shown_as_code():
    assert failures_text({"out_of_memory": 3, "model_missing": 1}) == "`out_of_memory` ×3 · `model_missing` ×1"
    assert DISCORD.member("5") == "<@5>" and TERMINAL.member("5") == "user 5"
