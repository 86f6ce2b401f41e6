"""The PostgreSQL connection under every repository (psycopg 3, async, with psycopg_pool): the
same `transaction()`, `snapshot()`, `execute()` and `clock()` as the SQLite one
(storage/connection.py), so the repositories run the same SQL on both.

- Every write transaction first takes one transaction-scoped advisory lock, so read-then-write
  transactions (a claim, an enqueue checking caps) run one at a time, as under SQLite's BEGIN
  IMMEDIATE; that keeps the fairness rule exact with many claimers (a claim is ~1 ms, a GPU job
  minutes). The claim's pick also says FOR UPDATE SKIP LOCKED, so it never waits on a job row
  another connection holds. Single-statement writes (heartbeat, progress) take no lock, nor
  do a blob's chunks (`unlocked_transaction`), written before the locked step that names them.
- Time comes from the database clock (`clock_timestamp()`), never from this machine: a worker
  whose clock is off can neither expire nor keep alive a lease by mistake. Tests may inject a
  clock (`now=`), which then replaces it.
- Placeholders: the repositories write SQLite's `?` and `:name`; `pyformat` rewrites them.
- The server going away is `DatabaseUnavailable` (retry later); the pool reconnects by itself
  and checks a connection that sat idle before handing it out, so the first call after a
  restart works (a call that is in flight when the server goes away fails; callers retry).
  `open(wait_s=…)` waits for a server that is down at start, saying so once per try.
- `wait_for_change` returns when a job is queued or changes state (LISTEN on the channel that
  the jobs trigger NOTIFYs, pg_schema.py), or after the timeout: NOTIFY is a hint, polling
  stays the fallback. The listening connection reconnects with back-off.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, Self

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict, timeout_from_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .errors import DatabaseError, DatabaseLocked, DatabaseUnavailable, DiskFull, ForeignDatabase, SchemaTooNew
from .migrations import OWN_TABLES
from .pg_schema import NOTIFY_CHANNEL, PG_MIGRATIONS

log = logging.getLogger("disco.storage")
# The pool warns (several lines, each reconnect attempt) about what this module already reports
# once per try through `translate`: an outage would fill the log twice over. Its errors still show.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

WRITER_LOCK = 0x44495343  # "DISC": the advisory lock key every write transaction takes
MAX_BACKOFF_S = 30.0
IDLE_CHECK_S = 2.0  # a pooled connection idle longer than this is pinged before use


# ---- rows and placeholders ------------------------------------------------------------------------

class Row(tuple):
    """A result row readable by position and by column name, like sqlite3.Row."""

    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        return super().__getitem__(self._index[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._index)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: n for n, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|::|%|\?|:([A-Za-z_]\w*)")


@lru_cache(maxsize=512)
def pyformat(sql: str) -> str:
    """SQLite's `?` / `:name` placeholders as psycopg's `%s` / `%(name)s` (quoted text, `::`
    casts and literal `%` left as they mean)."""
    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token[0] in "'\"":
            return token.replace("%", "%%")
        return {"::": "::", "%": "%%", "?": "%s"}.get(token) or f"%({match.group(1)})s"
    return _TOKEN.sub(swap, sql)


def describe(url: str) -> str:
    """The URL without its password, for messages: user@host:port/dbname."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured PostgreSQL URL"
    host = parts.get("host") or "localhost"
    port = f":{parts['port']}" if parts.get("port") else ""
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}{port}/{parts.get('dbname', '')}"


def translate(exc: BaseException, where: str, busy_timeout_s: float, *, connected: bool = False) -> Exception:
    """The storage error for an operational PostgreSQL failure; programming errors pass through.
    `connected`: the URL has worked in this process, so a host name that no longer resolves is
    the host away for a moment (a container being recreated), not a typo."""
    text = " ".join(str(exc).split())
    if isinstance(exc, (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled,
                        psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)):
        return DatabaseLocked(f"{where}: a lock was held by another connection for more than "
                              f"{busy_timeout_s:g} s ({text}); try again", where)
    if isinstance(exc, psycopg.errors.DiskFull):
        return DiskFull(f"the disk of the PostgreSQL server {where} is full; the change was rolled "
                        f"back and nothing was lost. Free some space, then try again", where)
    if isinstance(exc, psycopg.errors.InvalidPassword) or "password" in text \
            or "authentication failed" in text:
        return DatabaseError(f"{where} refused the login ({text}); check the user and password "
                             f"(DISCO_DATABASE_URL, PGPASSWORD or ~/.pgpass)", where)
    if isinstance(exc, psycopg.OperationalError) and _NO_ROLE.search(text):
        return DatabaseError(f"{where}: {text}; create the role (createuser), or fix the user in the URL",
                             where)
    if isinstance(exc, psycopg.errors.InvalidCatalogName) or (
            isinstance(exc, psycopg.OperationalError) and "does not exist" in text):
        return DatabaseError(f"{where}: {text}; create it (createdb) or fix the URL", where)
    if isinstance(exc, psycopg.OperationalError) and _BAD_VALUE.search(text):
        return DatabaseError(f"{where}: the URL holds a value PostgreSQL does not accept ({text}); "
                             f"fix the database URL ({URL_SOURCES})", where)
    if ("resolve host" in text or "translate host name" in text) and not connected:
        return DatabaseError(f"{where}: {text}; check the host name in the URL", where)
    if isinstance(exc, PoolTimeout) or isinstance(exc, psycopg.OperationalError):
        return DatabaseUnavailable(f"PostgreSQL at {where} is not reachable ({text}); retrying "
                                   f"later is safe: nothing was changed", where)
    return exc if isinstance(exc, Exception) else RuntimeError(text)


# The server's words for a login as a user it does not know.
_NO_ROLE = re.compile(r'role "[^"]*" does not exist')

# libpq's words for a URL value it refuses before connecting (a port out of range, an unknown
# sslmode): a mistake to fix, never an outage to wait for.
_BAD_VALUE = re.compile(r"invalid [\w ]*(value|number)|bad value for", re.IGNORECASE)
URL_SOURCES = "DISCO_DATABASE_URL, the file in DISCO_DATABASE_URL_FILE or [storage] url"


# A server that vanishes without closing the connection (a network drop between hosts) is
# noticed in ~25 s by TCP keepalives, and a write it never acknowledges fails after 30 s,
# instead of after the kernel's ~15 minutes; the URL's own values win. Unix sockets ignore them.
TCP_GUARDS = {"keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5",
              "keepalives_count": "3", "tcp_user_timeout": "30000"}


def tcp_guards(url: str) -> dict[str, str]:
    """The `TCP_GUARDS` the URL does not set itself (connection keyword arguments)."""
    given = conninfo_to_dict(url)
    return {key: value for key, value in TCP_GUARDS.items() if key not in given}


def _transient(exc: Exception) -> bool:
    return isinstance(exc, DatabaseUnavailable)


# ---- the session a transaction hands out ---------------------------------------------------

class Session:
    """One pooled connection inside a transaction: the aiosqlite calls the repositories use."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], now: float | None = None):
        self._conn = conn
        self.now = now  # the server's clock when the writer lock was granted

    async def execute_fetchall(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()
                               ) -> list[Row]:
        cursor = await self._conn.execute(pyformat(sql), _params(params))
        return await cursor.fetchall() if cursor.description else []

    async def execute(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> None:
        await self._conn.execute(pyformat(sql), _params(params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(pyformat(sql), list(rows))


def _params(params: Iterable[Any] | dict[str, Any]) -> Any:
    return params if isinstance(params, dict) else tuple(params)


# ---- the connection ------------------------------------------------------------------------

class PostgresConnection:
    """A pool of connections to one PostgreSQL database; open with
    `await Database.open("postgresql://…")` (storage.db), which adds the repositories."""

    kind = "postgresql"
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, pool: AsyncConnectionPool, url: str, now: Callable[[], float] | None,
                 busy_timeout_s: float):
        self._pool = pool
        self._url = url
        self.path = describe(url)  # what messages name
        self.now = now
        self.busy_timeout_s = busy_timeout_s
        self._changed = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, *, now: Callable[[], float] | None = None,
                   busy_timeout_s: float = 5.0, wait_s: float = 0.0, pool_size: int = 4) -> Self:
        """Connect (waiting up to `wait_s` for a server that is down), then migrate."""
        where = describe(url)
        await _first_connection(url, where, busy_timeout_s, wait_s)
        # Session guards, added to the URL's own `options` (sent at connect: no extra trip).
        options = " ".join(filter(None, [
            conninfo_to_dict(url).get("options", ""), f"-c lock_timeout={int(busy_timeout_s * 1000)}",
            "-c idle_in_transaction_session_timeout=60000"]))
        pool = AsyncConnectionPool(
            url, min_size=1, max_size=pool_size, open=False, check=_check_if_idle,
            timeout=max(busy_timeout_s, 10.0), name="disco",
            kwargs={"autocommit": True, "row_factory": _row_factory, "options": options, **tcp_guards(url)})
        try:
            await pool.open(wait=True, timeout=max(busy_timeout_s, 10.0))
        except PoolTimeout as exc:
            await pool.close()
            raise translate(exc, where, busy_timeout_s) from None
        db = cls(pool, url, now, busy_timeout_s)
        try:
            await db.migrate()
        except BaseException:
            await pool.close()
            raise
        return db

    async def migrate(self) -> None:
        """Apply missing steps, one transaction each, under the writer lock (another process
        may be migrating the same database at the same moment)."""
        try:
            if (await self.execute("SELECT version FROM disco_schema"))[0][0] == len(PG_MIGRATIONS):
                return  # the common case: one look, no lock
        except (psycopg.Error, IndexError):
            pass  # not ours yet, or older: the careful path below says which
        for version, step in enumerate(PG_MIGRATIONS, start=1):
            try:
                async with self.transaction() as conn:
                    if await _schema_version(conn, self.path) >= version:
                        continue
                    for statement in step.statements:
                        await conn.execute(statement)
                    await conn.execute("UPDATE disco_schema SET version = ?", (version,))
            except psycopg.errors.InsufficientPrivilege as exc:
                raise DatabaseError(f"{self.path}: this user may not create disco's tables "
                                    f"({' '.join(str(exc).split())}); connect as the database's "
                                    f"owner, or grant CREATE on its schema", self.path) from None
            except psycopg.Error as exc:
                raise DatabaseError(f"{self.path}: upgrading the schema to version {version} "
                                    f"({step.description}) failed: {exc}. The database was left "
                                    f"at version {version - 1}; please report this bug",
                                    self.path) from exc

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        await self._pool.close()

    # ---- statements and transactions -----------------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with self._pool.connection() as conn:
                conn.disco_used = time.monotonic()  # type: ignore[attr-defined]
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise translate(exc, self.path, self.busy_timeout_s, connected=True) from exc

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Session]:
        """BEGIN; the writer lock; … COMMIT. Rolled back on any exception."""
        async with self._connection() as conn, conn.transaction():
            # The clock is read in the same round trip, after the lock wait: never stale.
            cursor = await conn.execute("SELECT pg_advisory_xact_lock(%s), "
                                        "EXTRACT(EPOCH FROM clock_timestamp())::float8", (WRITER_LOCK,))
            yield Session(conn, float((await cursor.fetchone())[1]))

    @asynccontextmanager
    async def unlocked_transaction(self) -> AsyncIterator[Session]:
        """BEGIN … COMMIT without the writer lock: for rows no read-then-write rule reads
        until a locked transaction names them (a blob's chunks before its `blobs` row)."""
        async with self._connection() as conn, conn.transaction():
            yield Session(conn)

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Session]:
        """A read-only transaction: several SELECTs see one consistent state."""
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield Session(conn)

    async def execute(self, sql: str, params: Iterable[Any] | dict[str, Any] = ()) -> list[Row]:
        """One statement in autocommit mode, its rows returned."""
        async with self._connection() as conn:
            return await Session(conn).execute_fetchall(sql, params)

    async def clock(self, conn: Session | None = None) -> float:
        """Now, in epoch seconds, from the database server's clock (or the injected test clock)."""
        if self.now is not None:
            return self.now()
        if conn is not None and conn.now is not None:
            return conn.now
        sql = "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8"
        rows = await (conn.execute_fetchall(sql) if conn else self.execute(sql))
        return float(rows[0][0])

    async def integrity_check(self) -> str:
        """'ok', or the fairness counters that no longer match the jobs (the server checks its
        own pages and WAL; this checks what our triggers keep)."""
        rows = await self.execute(
            "SELECT q.guild_id, q.queued, COUNT(j.seq) FILTER (WHERE j.state = 'queued') "
            "FROM queue_guilds q LEFT JOIN jobs j ON j.guild_id = q.guild_id "
            "GROUP BY q.guild_id, q.queued HAVING q.queued <> COUNT(j.seq) FILTER (WHERE j.state = 'queued')")
        return "ok" if not rows else "; ".join(
            f"guild {r[0]}: {r[1]} queued counted, {r[2]} in jobs" for r in rows[:5])

    # ---- waking on changes ---------------------------------------------------------------------

    async def wait_for_change(self, timeout: float) -> None:
        """Return when a job was queued or changed state since the last call, or after
        `timeout` seconds, whichever is first."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="disco-listen")
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            pass
        self._changed.clear()

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True,
                                                                 **tcp_guards(self._url)) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    backoff = 0.5
                    self._changed.set()  # anything may have happened while we were not listening
                    async for _ in conn.notifies():
                        self._changed.set()
            except psycopg.Error as exc:
                log.warning("%s: listening for job changes failed (%s); retrying in %.1f s",
                            self.path, " ".join(str(exc).split()), backoff)
                self._changed.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)


async def _check_if_idle(conn: psycopg.AsyncConnection[Any]) -> None:
    """The pool's check: ping a connection that sat idle (the server may have restarted since),
    and let busy ones through without the extra round trip."""
    if time.monotonic() - getattr(conn, "disco_used", 0.0) > IDLE_CHECK_S:
        await AsyncConnectionPool.check_connection(conn)


async def _first_connection(url: str, where: str, busy_timeout_s: float, wait_s: float) -> None:
    """Connect once to check the URL and the login; wait (with back-off) for a server that is
    down, up to `wait_s`, and say so in one line per try."""
    deadline, backoff = time.monotonic() + wait_s, 0.5
    while True:
        try:
            timeout_from_conninfo(conninfo_to_dict(url))  # raises on a connect_timeout psycopg cannot read (the pool would use it)
            conn = await psycopg.AsyncConnection.connect(url, connect_timeout=max(2, int(busy_timeout_s)),
                                                         **tcp_guards(url))
            await conn.close()
            return
        except psycopg.ProgrammingError as exc:  # a malformed URL
            raise DatabaseError(f"the storage URL is not valid ({' '.join(str(exc).split())}); fix the "
                                f"database URL ({URL_SOURCES}): postgresql://USER@HOST:PORT/DBNAME",
                                where) from None
        except psycopg.Error as exc:
            error = translate(exc, where, busy_timeout_s)
            if not _transient(error) or time.monotonic() + backoff > deadline:
                raise error from None
            log.warning("%s; retrying in %.1f s", error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)


async def _schema_version(conn: Session, where: str) -> int:
    """The stored schema version (0 for an empty database); refuses foreign and newer ones."""
    rows = await conn.execute_fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    tables = {row[0] for row in rows}
    if "disco_schema" not in tables:
        if tables - OWN_TABLES:
            raise ForeignDatabase(f"{where} holds tables of another program ("
                                  f"{', '.join(sorted(tables)[:5])}); use an empty database for "
                                  f"disco (it was left untouched)", where)
        return 0
    found = int((await conn.execute_fetchall("SELECT version FROM disco_schema"))[0][0])
    if found > len(PG_MIGRATIONS):
        raise SchemaTooNew(f"{where} was written by a newer version of disco (schema {found}; "
                           f"this version knows up to {len(PG_MIGRATIONS)}); upgrade disco, or "
                           f"restore a backup made by this version", where, found, len(PG_MIGRATIONS))
    return found
