"""Moving an install between databases (`disco db migrate --from URL --to URL`) and backing it up
(`disco db backup`, storage/backup.py): every table of the schema is read in one snapshot of the
source and copied row by row, ids included, into an empty database of either backend, in one
transaction, and the row counts (the source's counted in that snapshot) are compared afterwards.
A backup copies a source the bot and engines keep writing to (`live=True`); the snapshot's job
files stay readable until the copy ends (storage/snapshot_files.py).

The fairness counters (`queue_guilds`, `queue_users`) are rebuilt by the jobs triggers as the
jobs arrive; their round-robin history (turn, waiting_since, served_at) is copied over them, so
the queue order is the same after the move. Job files are blobs (storage/blobs.py): the
`blobs` and `job_files` rows come with the tables, and every blob's bytes (files next to a
SQLite database, chunks in PostgreSQL) are copied one at a time in the same transaction and
counted too: a copy that dies part-way leaves the target empty, so it is simply run again
(files a dead copy wrote beside a SQLite target name no row: the sweep deletes them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .blobs import Blobs
from .db import Database
from .errors import InvalidState
from .snapshot_files import snapshot_files
from .workers import live_workers

# Parents before children is not needed (no foreign keys); jobs before the counters they feed.
TABLES = ("guild_settings", "guild_channels", "channel_defaults", "banned_words", "quota_limits", "presets",
          "audit_log", "usage", "step_timings", "user_settings", "jobs", "blobs", "job_files")
COUNTERS = (("queue_guilds", ("guild_id",)), ("queue_users", ("guild_id", "user_id")))
HISTORY = ("turn", "waiting_since", "served_at")
BOOLEANS = {"cancel_requested", "intake_paused"}  # INTEGER on SQLite, BOOLEAN on PostgreSQL
IDENTITIES = {"jobs": "seq", "audit_log": "id", "usage": "id", "step_timings": "id"}
BATCH = 500


@dataclass(frozen=True)
class Copied:
    table: str
    source: int
    target: int


async def _count(db: Database, table: str) -> int:
    return int((await db.execute(f"SELECT COUNT(*) FROM {table}"))[0][0])  # names are constants


async def _count_in(conn: Any, table: str) -> int:
    return int((await conn.execute_fetchall(f"SELECT COUNT(*) FROM {table}"))[0][0])


def _values(row: Any, columns: list[str], to_postgres: bool) -> tuple:
    return tuple(bool(row[c]) if to_postgres and c in BOOLEANS and row[c] is not None else row[c]
                 for c in columns)


async def copy_database(source: Database, target: Database, *, live: bool = False) -> list[Copied]:
    """Copy every row of `source`, as one snapshot of it, into the empty `target`; returns the
    counts per table, the source's counted in that snapshot (the caller checks them: `verify`).
    Refuses a target that already holds data, and, unless `live`, a source that live engines
    still work from."""
    if not live:
        await _refuse_live_engines(source)
    held = {table: await _count(target, table) for table in (*TABLES, *(c for c, _ in COUNTERS))}
    if any(held.values()):
        busy = ", ".join(f"{t}: {n}" for t, n in held.items() if n)
        raise InvalidState(f"the target database is not empty ({busy}); copy into a new, empty "
                           f"database so nothing is mixed or overwritten")
    to_postgres = target.kind == "postgresql"
    async with source.snapshot() as read, target.transaction() as write, \
            snapshot_files(source, read) as files:
        for table in TABLES:
            order = IDENTITIES.get(table, "1")
            rows = await read.execute_fetchall(f"SELECT * FROM {table} ORDER BY {order}")
            if not rows:
                continue
            columns = list(rows[0].keys())
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            for start in range(0, len(rows), BATCH):
                await write.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})",
                                        [_values(r, columns, to_postgres) for r in rows[start:start + BATCH]])
            if to_postgres and table in IDENTITIES:  # the next id continues after the copied ones
                column = IDENTITIES[table]
                await write.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
                                    f"(SELECT MAX({column}) FROM {table}))")
        for table, keys in COUNTERS:
            rows = await read.execute_fetchall(f"SELECT {', '.join((*keys, *HISTORY))} FROM {table}")
            where = " AND ".join(f"{k} = ?" for k in keys)
            await write.executemany(
                f"UPDATE {table} SET {', '.join(f'{h} = ?' for h in HISTORY)} WHERE {where}",
                [tuple(r[h] for h in HISTORY) + tuple(r[k] for k in keys) for r in rows])
        blobs = [row[0] for row in await read.execute_fetchall("SELECT sha256 FROM blobs ORDER BY sha256")]
        await Blobs.copy_into(target.blobs, write, blobs, files.read)
        # Counted in the snapshot: the live source may hold more rows by now (a backup).
        counted = {table: await _count_in(read, table) for table in (*TABLES, *(c for c, _ in COUNTERS))}
    copied = [Copied(table, counted[table], await _count(target, table)) for table in counted]
    return copied + [Copied("blob contents", len(blobs), await target.blobs.complete())]


async def _refuse_live_engines(source: Database) -> None:
    async with source.snapshot() as read:
        engines = await live_workers(read, await source.clock(read))
    if engines:
        names = ", ".join(w.id for w in engines[:5])
        raise InvalidState(f"the source is still in use: {len(engines)} live engine(s) ({names}); stop "
                           f"the bot and every engine first, else what they record in the source after "
                           f"the copy is rendered and posted again from the new database")


def verify(copied: list[Copied]) -> list[str]:
    """The tables whose counts differ (empty when the copy is complete)."""
    return [f"{c.table}: {c.source} rows in the source, {c.target} in the target"
            for c in copied if c.source != c.target]
