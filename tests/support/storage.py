"""Shared helpers for the storage tests: a fake clock, a job request builder, sync wrappers for
async tests (no pytest-asyncio needed), and the database invariants every test can assert."""
from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from storage import Database, JobRequest

START = 1_800_000_000.0  # 2027-01-15 08:00 UTC


class FakeClock:
    """An injectable `now()`: time moves only when a test says so."""

    def __init__(self, start: float = START):
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def async_test(fn: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async test body with asyncio.run; pytest fixtures still reach it."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))
    return wrapper


async def open_db(tmp_path: Path, clock: Callable[[], float] | None = None,
                  name: str = "disco.db", **kwargs: Any) -> Database:
    return await Database.open(tmp_path / name, now=clock or FakeClock(), **kwargs)


def request(guild: int | str = 1, user: int | str = 10, **overrides: Any) -> JobRequest:
    fields = dict(guild_id=guild, channel_id=100, user_id=user, kind="still",
                  spec_json='{"text_prompts": ["a lighthouse"]}', spec_version=1,
                  model_set="test-tiny", width=512, height=512, steps=50)
    fields.update(overrides)
    return JobRequest(**fields)


def check_invariants(path: Path) -> dict[str, int]:
    """Assert the file is sound and every row is consistent; returns job counts per state."""
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for table, match in (("queue_guilds", "j.guild_id = q.guild_id"),
                             ("queue_users", "j.guild_id = q.guild_id AND j.user_id = q.user_id")):
            drift = conn.execute(
                f"SELECT * FROM (SELECT q.*, "
                f"(SELECT COUNT(*) FROM jobs j WHERE j.state = 'queued' AND {match}) AS real_q, "
                f"(SELECT COUNT(*) FROM jobs j WHERE j.state = 'running' AND {match}) AS real_r "
                f"FROM {table} q) WHERE queued != real_q OR running != real_r").fetchall()
            assert not drift, f"{table} counters drifted from jobs: {drift}"
        bad = conn.execute(
            "SELECT id, state FROM jobs WHERE "
            "(state = 'running' AND (lease_owner IS NULL OR lease_expires_at IS NULL OR attempt < 1)) "
            "OR (state = 'queued' AND (lease_owner IS NOT NULL OR finished_at IS NOT NULL)) "
            "OR (state IN ('succeeded','failed','cancelled','dead') AND "
            "    (finished_at IS NULL OR lease_owner IS NOT NULL)) "
            "OR (state = 'dead' AND attempt < max_attempts) "
            "OR attempt > max_attempts").fetchall()
        assert not bad, f"rows in an impossible state: {bad}"
        return dict(conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
    finally:
        conn.close()
