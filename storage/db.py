"""`Database`: an open database with its repositories: `jobs` (the bot's side of the queue),
`leases` (the engine's), `workers` (the fleet), `guilds`, `quotas`, `presets`, `audit`, `stats`
(usage statistics) and `blobs` (job files).

Two backends, one API, chosen by the URL: `sqlite:///data/disco.db` (or a plain path; the
embedded default, storage/connection.py) or `postgresql://…` (storage/postgres.py, for several
machines). The repositories write one SQL for both; the backend supplies the transactions, the
clock and the few words that differ (`skip_locked`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Self

from .audit import AuditLog
from .blobs import Blobs
from .connection import Clock, Connection
from .errors import InvalidValue
from .guilds import Guilds
from .jobs import Jobs
from .leases import Leases
from .presets import Presets
from .quotas import Quotas
from .stats import UsageStats
from .users import Users
from .workers import Workers

DATABASE_FILE = "disco.db"
URL_VARIABLE = "DISCO_DATABASE_URL"
URL_FILE_VARIABLE = "DISCO_DATABASE_URL_FILE"  # a file holding the URL (compose secrets)
MAX_URL_FILE_BYTES = 4096
SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def database_path(data_dir: str | Path) -> Path:
    """The SQLite file in a data folder: the default database of the bot, the engine and `disco`."""
    return Path(data_dir) / DATABASE_FILE


def database_url(data_dir: str | Path, configured: str | None = None) -> str:
    """The database every process opens: `DISCO_DATABASE_URL`, else the URL in the file named
    by `DISCO_DATABASE_URL_FILE` (it may hold the password: a secret mounted into a
    container), else `configured` (the config file's `[storage] url`), else the SQLite file in
    `data_dir`."""
    chosen = os.environ.get(URL_VARIABLE, "").strip() or _url_from_file() or (configured or "").strip()
    return chosen or f"{SQLITE_PREFIX}{database_path(data_dir)}"


def _url_from_file() -> str:
    path = os.environ.get(URL_FILE_VARIABLE, "").strip()
    if not path:
        return ""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_URL_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidValue(f"{URL_FILE_VARIABLE}: cannot read {path} ({exc.strerror}); name a "
                           f"readable file holding the database URL") from None
    if len(data) > MAX_URL_FILE_BYTES:
        raise InvalidValue(f"{URL_FILE_VARIABLE}: {path} is over {MAX_URL_FILE_BYTES} bytes; it "
                           f"should hold one database URL")
    return data.decode("utf-8", errors="replace").strip()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (`sqlite:///relative` or `sqlite:////absolute`); None for PostgreSQL."""
    if url.startswith(POSTGRES_PREFIXES):
        return None
    if url.startswith(SQLITE_PREFIX):
        return Path(url[len(SQLITE_PREFIX):])
    if "://" in url:
        scheme = url.split("://", 1)[0]
        raise InvalidValue(f"database URL scheme {scheme!r} is not supported; use "
                           f"sqlite:///path/to/disco.db or postgresql://USER@HOST/DBNAME")
    return Path(url)


class Database:
    """Create with `await Database.open(url_or_path)`; close with `await db.close()` or use
    `async with`. Each repository shares the backend, its transactions and its clock."""

    def __init__(self, backend: Any):
        self.backend = backend
        self.jobs = Jobs(self)
        self.leases = Leases(self)
        self.guilds = Guilds(self)
        self.quotas = Quotas(self)
        self.presets = Presets(self)
        self.audit = AuditLog(self)
        self.users = Users(self)
        self.blobs = Blobs(self)
        self.workers = Workers(self)
        self.stats = UsageStats(self)

    @classmethod
    async def open(cls, target: str | Path, *, now: Clock | None = None, busy_timeout_s: float = 5.0,
                   wait_s: float = 0.0) -> Self:
        """Open (creating or upgrading the schema). `target`: a URL or a SQLite file path.
        `now`: a test clock (default: the database's). `wait_s`: how long to wait for a
        PostgreSQL server that is down (SQLite never waits)."""
        path = sqlite_file(str(target))
        if path is None:
            from .postgres import PostgresConnection  # psycopg loads only for PostgreSQL
            return cls(await PostgresConnection.open(str(target), now=now,
                                                     busy_timeout_s=busy_timeout_s, wait_s=wait_s))
        return cls(await Connection.open(path, now=now or time.time,
                                         busy_timeout_s=busy_timeout_s))

    # ---- the backend's interface, for the repositories ------------------------------------------

    @property
    def kind(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.backend.kind

    @property
    def path(self) -> Any:
        """The SQLite file, or the PostgreSQL URL without its password (for messages)."""
        return self.backend.path

    @property
    def now(self) -> Clock | None:
        return self.backend.now

    @property
    def skip_locked(self) -> str:
        return self.backend.skip_locked

    def transaction(self) -> AbstractAsyncContextManager[Any]:
        return self.backend.transaction()

    def snapshot(self) -> AbstractAsyncContextManager[Any]:
        return self.backend.snapshot()

    def unlocked_transaction(self) -> AbstractAsyncContextManager[Any]:
        """PostgreSQL only: a write transaction that does not take the writer lock."""
        return self.backend.unlocked_transaction()

    async def execute(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[Any]:
        return await self.backend.execute(sql, params)

    async def clock(self, conn: Any = None) -> float:
        """Now, in epoch seconds, as the database sees it (read it inside the transaction)."""
        return await self.backend.clock(conn)

    async def wait_for_change(self, timeout: float) -> None:
        """Sleep until a job is queued or changes state (PostgreSQL: LISTEN/NOTIFY), at most
        `timeout` seconds (SQLite: always the timeout: poll)."""
        await self.backend.wait_for_change(timeout)

    async def integrity_check(self) -> str:
        return await self.backend.integrity_check()

    async def close(self) -> None:
        await self.backend.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

