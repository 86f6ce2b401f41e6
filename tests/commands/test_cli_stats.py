"""`disco stats` on a real data folder holding a known history (tests/support/stats.py): the
table per server and in total, one server, `--json` parsed, and the bounds of `--days`."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from commands import cli_stats
from storage import stats as storage_stats
from storage.stats import DAY
from tests.support.cli import disco_here
from tests.support.stats import history
from tests.support.storage import FakeClock, open_db


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A data folder whose jobs ran in the last day (the old one 9 days ago), on the real clock's
    side of now, since `disco stats` reads the database's own clock."""
    async def fill():
        clock = FakeClock(time.time() - 9 * DAY)
        async with await open_db(tmp_path, clock) as db:
            await history(db, clock)
    asyncio.run(fill())
    monkeypatch.setenv("DISCO_DATA_DIR", str(tmp_path))
    return tmp_path


def test_every_server_then_the_totals(data, capsys):
    out = disco_here(capsys, "stats")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.index("== Server 1 ==") < text.index("== Server 2 ==") < text.index("== All 2 servers ==")
    assert "Jobs: 6 — 4 still images · 1 animation · 1 study" in text
    assert "Outcome: 2 succeeded · 1 failed · 1 dead · 1 cancelled · 1 still open" in text
    assert "Failures: out_of_memory ×1 · model_missing ×1" in text and "`" not in text
    assert "1. user 10 — 2.5 min (100%), 3 job(s)" in text  # the totals: both servers' time


def test_one_server_as_json(data, capfd):
    out = disco_here(capfd, "stats", "--guild", "1", "--days", "30", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)  # one JSON object, nothing else on stdout
    assert [s["guild_id"] for s in report["servers"]] == ["1"]
    total = report["total"]
    assert (total["guild_id"], total["days"], total["jobs"], total["gpu_seconds"]) == ("1", 30, 7, 590)
    assert total["failures"] == {"out_of_memory": 1, "model_missing": 1} and total["retried"] == 1
    assert (total["wait"]["median"], total["wait"]["p90"]) == (20, 40)  # 1, 10, 20, 35, 40
    assert total["top_members"][0] == {"user_id": "10", "gpu_seconds": 590, "jobs": 3}


def test_a_quiet_server_says_so(data, capsys):
    out = disco_here(capsys, "stats", "--guild", "3")
    assert out.returncode == 0 and "No jobs were queued and no GPU time was charged" in out.stdout
    assert "**" not in out.stdout


@pytest.mark.parametrize("days", ["0", "91", "-1", "seven"])
def test_days_out_of_bounds_are_refused(data, capsys, days):
    out = disco_here(capsys, "stats", "--days", days)
    assert out.returncode == 2 and "--days: give a whole number from 1 to 90" in out.stderr


def test_the_cli_bounds_are_storage_s():
    assert (cli_stats.DEFAULT_DAYS, cli_stats.MAX_DAYS) == (storage_stats.DEFAULT_DAYS, storage_stats.MAX_DAYS)
