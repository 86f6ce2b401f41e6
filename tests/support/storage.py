"""Shared helpers for the storage tests: a fake clock, a job request builder, sync wrappers for
async tests (no pytest-asyncio needed), the database invariants every test can assert, and
`Store`: one test's database on one backend (the `store` fixture of tests/conftest.py runs a
test on SQLite and on PostgreSQL)."""
from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from storage import Database, JobRequest

POSTGRES_URL_VARIABLE = "DISCO_TEST_POSTGRES_URL"  # a server where tests may create databases
REQUIRE_POSTGRES_VARIABLE = "DISCO_TEST_REQUIRE_POSTGRES"  # scripts/test.sh: never skip them
NO_POSTGRES = (f"no PostgreSQL for the tests: set {POSTGRES_URL_VARIABLE} to a server where they may "
               f"create databases, or run scripts/test.sh (it starts a throw-away cluster with "
               f"scripts/postgres.sh)")

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


class Store:
    """One test's empty database: a SQLite file in a temporary folder, or a fresh PostgreSQL
    database on the test server (dropped at the end). `url` is what `Database.open` takes."""

    def __init__(self, kind: str, folder: Path, server: str | None = None):
        """`server`: the PostgreSQL server's URL (default DISCO_TEST_POSTGRES_URL's)."""
        self.kind, self.folder, self.server = kind, folder, server or postgres_url()
        self._made: list[str] = []
        self.url = self._new_url()

    def _new_url(self) -> str:
        if self.kind == "sqlite":
            folder = self.folder / uuid.uuid4().hex[:8]
            folder.mkdir()
            return str(folder / "disco.db")
        name = f"t_{uuid.uuid4().hex[:12]}"
        with admin_connection(self.server) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        self._made.append(name)
        parts = urlsplit(self.server)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def new(self) -> Store:
        """Another empty database of the same kind (dropped with this one)."""
        other = Store.__new__(Store)
        other.kind, other.folder, other.server, other._made = self.kind, self.folder, self.server, self._made
        other.url = other._new_url()
        return other

    async def open(self, clock: Callable[[], float] | None = None, **kwargs: Any) -> Database:
        return await Database.open(self.url, now=clock or FakeClock(), **kwargs)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows of one statement, read outside the code under test (sqlite3 / psycopg)."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(self.url)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        import psycopg
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()

    def row(self, job_id: str) -> tuple:
        return self.query("SELECT * FROM jobs WHERE id = ?", (job_id,))[0]

    def drop(self) -> None:
        if self._made:
            with admin_connection(self.server) as conn:
                for name in self._made:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self._made.clear()


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_URL_VARIABLE, "").strip() or None


def admin_connection(server: str | None = None) -> Any:
    import psycopg
    return psycopg.connect(server or postgres_url(), autocommit=True, connect_timeout=10)


def skip_without_postgres() -> None:
    """Skip (or, under scripts/test.sh, fail) when no test PostgreSQL server is reachable."""
    if postgres_url() is None:
        if os.environ.get(REQUIRE_POSTGRES_VARIABLE) == "1":
            pytest.fail(f"{POSTGRES_URL_VARIABLE} is not set although scripts/test.sh requires it")
        pytest.skip(NO_POSTGRES)


async def open_db(where: Store | Path, clock: Callable[[], float] | None = None,
                  name: str = "disco.db", **kwargs: Any) -> Database:
    if isinstance(where, Store):
        return await where.open(clock, **kwargs)
    return await Database.open(where / name, now=clock or FakeClock(), **kwargs)


def in_db(folder: Path, call: Callable[[Database], Coroutine[Any, Any, Any]]) -> Any:
    """`await call(db)` on the SQLite database in `folder` (made on first use), synchronously."""
    async def body() -> Any:
        async with await Database.open(Path(folder) / "disco.db") as db:
            return await call(db)
    return asyncio.run(body())


def request(guild: int | str = 1, user: int | str = 10, **overrides: Any) -> JobRequest:
    fields = dict(guild_id=guild, channel_id=100, user_id=user, kind="still",
                  spec_json='{"text_prompts": ["a lighthouse"]}', spec_version=1,
                  model_set="test-tiny", width=512, height=512, steps=50)
    fields.update(overrides)
    return JobRequest(**fields)


def sqlite_store(path: Path) -> Store:
    """A `Store` for an existing SQLite file (tests that name the file themselves)."""
    store = Store.__new__(Store)
    store.kind, store.folder, store.server, store._made, store.url = "sqlite", path.parent, None, [], str(path)
    return store


def check_invariants(where: Store | Path) -> dict[str, int]:
    """Assert the database is sound and every row is consistent; returns job counts per state."""
    store = where if isinstance(where, Store) else sqlite_store(where)
    if store.kind == "sqlite":
        assert store.query("PRAGMA integrity_check")[0][0] == "ok"
    for table, match in (("queue_guilds", "j.guild_id = q.guild_id"),
                         ("queue_users", "j.guild_id = q.guild_id AND j.user_id = q.user_id")):
        drift = store.query(
            f"SELECT * FROM (SELECT q.*, "
            f"(SELECT COUNT(*) FROM jobs j WHERE j.state = 'queued' AND {match}) AS real_q, "
            f"(SELECT COUNT(*) FROM jobs j WHERE j.state = 'running' AND {match}) AS real_r "
            f"FROM {table} q) AS c WHERE queued != real_q OR running != real_r")
        assert not drift, f"{table} counters drifted from jobs: {drift}"
    bad = store.query(
        "SELECT id, state FROM jobs WHERE "
        "(state = 'running' AND (lease_owner IS NULL OR lease_expires_at IS NULL OR attempt < 1)) "
        "OR (state = 'queued' AND (lease_owner IS NOT NULL OR finished_at IS NOT NULL)) "
        "OR (state IN ('succeeded','failed','cancelled','dead') AND "
        "    (finished_at IS NULL OR lease_owner IS NOT NULL)) "
        "OR (state = 'dead' AND attempt < max_attempts) "
        "OR attempt > max_attempts")
    assert not bad, f"rows in an impossible state: {bad}"
    return dict(store.query("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
