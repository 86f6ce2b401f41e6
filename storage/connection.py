"""The SQLite connection under every repository: open the file safely, set its pragmas,
migrate it, and hand out transactions. `storage.db.Database` adds the repositories on top.

- The file is checked before SQLite writes anything to it: a non-SQLite file, a SQLite file of
  another program, or one written by a newer version of this code is refused with a message
  that says what to do; nothing is ever overwritten or reset.
- WAL (readers never block the writer), synchronous=FULL (a committed job survives power loss),
  a busy timeout, and BEGIN IMMEDIATE for every read-then-write, so the busy handler applies
  (a deferred transaction that upgrades to a writer fails with SQLITE_BUSY at once).
- One aiosqlite connection per `Database`; an asyncio lock keeps one task's statements from
  landing inside another task's transaction on that connection.
- SQLite errors that users can hit (locked, disk full, damaged file) become `DatabaseError`s.
"""
from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

import aiosqlite

from .errors import (
    DatabaseCorrupt,
    DatabaseError,
    DatabaseLocked,
    DiskFull,
    ForeignDatabase,
    SchemaTooNew,
)
from .migrations import APPLICATION_ID, MIGRATIONS, OWN_TABLES

MIN_SQLITE = (3, 35, 0)  # UPDATE … RETURNING
Clock = Callable[[], float]


class Connection:
    """One aiosqlite connection with its lock, clock and busy timeout. Repositories run their
    statements through `transaction()`, `snapshot()`, `execute()` and `clock()`; open with
    `await Database.open(path)` (storage.db), which adds them. storage/postgres.py is the same
    interface on PostgreSQL."""

    kind = "sqlite"
    skip_locked = ""  # BEGIN IMMEDIATE already makes every claim the only writer

    def __init__(self, conn: aiosqlite.Connection, path: Path, now: Clock, busy_timeout_s: float):
        self._conn = conn
        self.path = path
        self.now = now
        self.busy_timeout_s = busy_timeout_s
        self._lock = asyncio.Lock()

    # ---- opening ----------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path, *, now: Clock = time.time,
                   busy_timeout_s: float = 5.0) -> Self:
        """Open (or create) the database at `path` and bring its schema up to date."""
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise DatabaseError(f"SQLite {sqlite3.sqlite_version} is too old: storage needs "
                                f"{'.'.join(map(str, MIN_SQLITE))} or newer (UPDATE … RETURNING); "
                                f"use a newer Python build")
        path = Path(path)
        _check_path(path)
        _check_not_a_folder(path)
        try:
            conn = await aiosqlite.connect(str(path), isolation_level=None)
        except sqlite3.Error as exc:
            raise translate(exc, path, busy_timeout_s) from exc
        conn.row_factory = sqlite3.Row
        db = cls(conn, path, now, busy_timeout_s)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            await _check_ownership(conn, path)  # before anything writes to the file
            await _enable_wal(conn, path, busy_timeout_s)
            await conn.execute("PRAGMA synchronous = FULL")
            await db.migrate()
            await _check_tables(conn, path)
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, sqlite3.DatabaseError) and "not a database" in str(exc):
                # SQLite read the header and refused it before writing anything.
                raise DatabaseCorrupt(f"{path} is not a SQLite database; move it away or point "
                                      f"--data-dir elsewhere (it was left untouched)", str(path)) from None
            if isinstance(exc, sqlite3.Error):
                raise translate(exc, path, busy_timeout_s) from exc
            raise
        return db

    async def migrate(self) -> None:
        """Apply missing steps, one transaction each (re-checked inside it: another process
        may be migrating the same file at the same moment)."""
        async with self._lock:
            if await _user_version(self._conn) >= len(MIGRATIONS):
                return  # the common case needs no write lock
        for version, step in enumerate(MIGRATIONS, start=1):
            try:
                async with self.transaction() as conn:
                    if await _user_version(conn) >= version:
                        continue
                    for statement in step.statements:
                        await conn.execute(statement)
                    await conn.execute(f"PRAGMA user_version = {int(version)}")
            except sqlite3.Error as exc:  # a bug in a step: say so, and that nothing half-applied
                raise DatabaseError(f"{self.path}: upgrading the schema to version {version} "
                                    f"({step.description}) failed: {exc}. The file was left at "
                                    f"version {version - 1}; please report this bug",
                                    str(self.path)) from exc

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ---- statements and transactions ---------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE … COMMIT; rolled back on any exception, SQLite errors translated."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.busy_timeout_s) from exc
            try:
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, self.busy_timeout_s) from exc
                raise

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only transaction: several SELECTs see one consistent state."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN")
                yield self._conn
                await self._conn.execute("COMMIT")
            except BaseException as exc:
                await self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path, self.busy_timeout_s) from exc
                raise

    async def execute(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """One statement in autocommit mode, its rows returned (a single statement is atomic, so
        a lone UPDATE … RETURNING needs no BEGIN IMMEDIATE: there is no read-then-write gap)."""
        async with self._lock:
            try:
                return list(await self._conn.execute_fetchall(sql, params))
            except sqlite3.Error as exc:
                raise translate(exc, self.path, self.busy_timeout_s) from exc

    async def clock(self, conn: aiosqlite.Connection | None = None) -> float:
        """Now, in epoch seconds: this machine's clock (the file is on it), or the test clock."""
        return self.now()

    async def wait_for_change(self, timeout: float) -> None:
        """SQLite has no notifications: callers poll, this waits `timeout` seconds."""
        await asyncio.sleep(timeout)

    async def integrity_check(self) -> str:
        """PRAGMA integrity_check's verdict: 'ok' or the first problems SQLite found."""
        rows = await self.execute("PRAGMA integrity_check")
        return "\n".join(str(row[0]) for row in rows)

    async def _rollback(self) -> None:
        try:
            await self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite already rolled back (e.g. after SQLITE_FULL) or never began


# ---- checks before SQLite touches the file ------------------------------------------------------

def _check_path(path: Path) -> None:
    """Refuse, in one line, a data folder that is a file or cannot be made, and a database path
    that is a dangling link, a FIFO or another non-file (SQLite would hang or write elsewhere)."""
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise DatabaseError(f"the data folder {folder} is a file, not a folder; point --data-dir "
                            f"(or DISCO_DATA_DIR) at a folder", str(path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create the data folder {folder} ({exc.strerror}); point "
                            f"--data-dir at a writable folder", str(path)) from None
    if path.is_symlink() and not path.exists():
        raise DatabaseError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; "
                            f"remove the link or restore its target", str(path))
    if path.exists() and not path.is_dir() and not path.is_file():
        raise DatabaseError(f"{path} is not a regular file (a FIFO, socket or device); move it away "
                            f"so a database can be created there", str(path))


def _check_not_a_folder(path: Path) -> None:
    """A folder where the file should be is refused in one line. The file itself is never
    opened here: closing any descriptor of it drops every POSIX lock SQLite holds on it in this
    process, and another process could then checkpoint and delete the WAL in use (SQLite's
    "How To Corrupt" §2.2). SQLite checks the header itself (`open`)."""
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a database file; point --data-dir at "
                            f"the folder that should contain it", str(path))


async def _enable_wal(conn: aiosqlite.Connection, path: Path, busy_timeout_s: float) -> None:
    """Switch to WAL (a no-op once the file is WAL: the mode is stored in the file). The switch
    needs an exclusive lock and SQLite answers SQLITE_BUSY at once instead of calling the busy
    handler when another opener holds a lock, so retry here until the busy timeout."""
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            mode = (await conn.execute_fetchall("PRAGMA journal_mode = WAL"))[0][0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)
    if str(mode).lower() != "wal":
        raise DatabaseError(f"{path}: SQLite could not switch to WAL mode (got {mode!r}); put the "
                            f"data dir on a local disk, not a network share", str(path))


async def _user_version(conn: aiosqlite.Connection) -> int:
    return int((await conn.execute_fetchall("PRAGMA user_version"))[0][0])


async def _check_tables(conn: aiosqlite.Connection, path: Path) -> None:
    """A migrated file must hold every table of ours: one dropped by hand is damage to report
    at open, not an error in the middle of the first query."""
    tables = {row[0] for row in await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = sorted(OWN_TABLES - tables)
    if missing:
        raise DatabaseCorrupt(f"{path} is damaged: table {', '.join(missing)} is missing; stop the bot, "
                              f"keep a copy of the file and restore a backup (or move the file away "
                              f"to start with an empty queue)", str(path))


async def _check_ownership(conn: aiosqlite.Connection, path: Path) -> None:
    version = await _user_version(conn)
    app_id = int((await conn.execute_fetchall("PRAGMA application_id"))[0][0])
    tables = {row[0] for row in await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if app_id not in (0, APPLICATION_ID) or (app_id == 0 and (version or tables - OWN_TABLES)):
        raise ForeignDatabase(f"{path} is a SQLite database of another program (tables: "
                              f"{', '.join(sorted(tables)[:5]) or 'none'}); move it away or point "
                              f"--data-dir elsewhere (it was left untouched)", str(path))
    if version > len(MIGRATIONS):
        raise SchemaTooNew(f"{path} was written by a newer version of disco (schema {version}; "
                           f"this version knows up to {len(MIGRATIONS)}); upgrade disco, or restore "
                           f"a backup made by this version", str(path), version, len(MIGRATIONS))


# ---- SQLite errors → storage errors ---------------------------------------------------------------

def translate(exc: sqlite3.Error, path: Path, busy_timeout_s: float) -> Exception:
    """The storage error for an operational SQLite failure; programming errors pass through."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return DatabaseLocked(f"{path} is locked by another connection for more than "
                              f"{busy_timeout_s:g} s (busy timeout); make sure only one bot and "
                              f"one engine use this data dir, then try again", str(path))
    if name == "SQLITE_FULL" or "database or disk is full" in text:
        return DiskFull(f"the disk holding {path} is full; the change was rolled back and nothing "
                        f"was lost. Free some space (`disco db sweep` deletes old job files), then try "
                        f"again", str(path))
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB" or "malformed" in text \
            or "not a database" in text:
        return DatabaseCorrupt(f"{path} is damaged ({text}); stop the bot, keep a copy of the "
                               f"file, and restore a backup or run sqlite3's .recover on the copy",
                               str(path))
    if name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_IOERR",
                        "SQLITE_AUTH")):
        return DatabaseError(f"{path} cannot be written ({text}); check the file's permissions, "
                             f"the disk, and that the data dir is on a local filesystem",
                             str(path))
    return exc
