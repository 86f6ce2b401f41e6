"""Opening the database: pragmas, migrations (one transaction per step, newer files refused), and
bad input: a non-SQLite file, a damaged one, another program's database, a locked database, a
full disk. Each gives a clear error, loses nothing and never resets the file. (PostgreSQL's
counterparts are in test_postgres.py; reopening runs on both backends.)"""
from __future__ import annotations

import asyncio
import sqlite3

import pytest

import storage.connection
from storage import (
    SCHEMA_VERSION,
    DatabaseCorrupt,
    DatabaseError,
    DatabaseLocked,
    DiskFull,
    ForeignDatabase,
    SchemaTooNew,
)
from storage.migrations import APPLICATION_ID, MIGRATIONS, Migration
from tests.support.storage import async_test, check_invariants, open_db, request


def pragma(path, name):
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


@async_test
async def test_new_database_gets_wal_full_sync_busy_timeout_and_the_schema(tmp_path):
    async with await open_db(tmp_path / "nested" / "dir", busy_timeout_s=2.5) as db:
        assert (await db.execute("PRAGMA journal_mode"))[0][0] == "wal"
        assert (await db.execute("PRAGMA synchronous"))[0][0] == 2  # FULL
        assert (await db.execute("PRAGMA busy_timeout"))[0][0] == 2500
        assert await db.integrity_check() == "ok"
    path = tmp_path / "nested" / "dir" / "disco.db"
    assert pragma(path, "user_version") == SCHEMA_VERSION == len(MIGRATIONS)
    assert pragma(path, "application_id") == APPLICATION_ID


@async_test
async def test_reopening_keeps_data_and_two_openers_migrate_once(store):
    first, second = await asyncio.gather(open_db(store), open_db(store))
    job = await first.jobs.enqueue(request())
    await first.close()
    assert (await second.jobs.get(job.id)).state == "queued"
    await second.close()
    async with await open_db(store) as db:
        assert [j.id for j in await db.jobs.list()] == [job.id]


@async_test
async def test_a_failing_migration_step_leaves_the_previous_version(tmp_path, monkeypatch):
    async with await open_db(tmp_path) as db:
        await db.jobs.enqueue(request())
    broken = Migration("broken", ("CREATE TABLE extra (x)", "CREATE TABLE jobs (x)"))
    monkeypatch.setattr(storage.connection, "MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(DatabaseError, match=f"already exists. The file was left at version {len(MIGRATIONS)}"):
        await open_db(tmp_path)
    path = tmp_path / "disco.db"
    assert pragma(path, "user_version") == len(MIGRATIONS)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'extra'").fetchall() == []
    assert conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 1
    conn.close()


@async_test
async def test_newer_schema_is_refused_and_untouched(tmp_path):
    async with await open_db(tmp_path):
        pass
    path = tmp_path / "disco.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(SchemaTooNew) as info:
        await open_db(tmp_path)
    assert (info.value.found, info.value.known) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert "newer version of disco" in str(info.value) and "upgrade disco" in str(info.value)
    assert path.read_bytes() == before


@async_test
async def test_a_file_that_is_not_sqlite_is_refused_and_untouched(tmp_path):
    path = tmp_path / "disco.db"
    path.write_bytes(b"PNG? no. just some bytes\n" * 400)
    before = path.read_bytes()
    with pytest.raises(DatabaseCorrupt, match="is not a SQLite database; move it away"):
        await open_db(tmp_path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disco.db"]


@async_test
async def test_a_damaged_database_gives_a_clear_error_not_a_reset(tmp_path):
    async with await open_db(tmp_path) as db:
        for user in range(3):
            await db.jobs.enqueue(request(user=user, spec_json="x" * 5000))
    path = tmp_path / "disco.db"
    data = bytearray(path.read_bytes())
    page = pragma(path, "page_size")
    data[page: len(data)] = b"\xa5" * (len(data) - page)  # every page after the first
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    with pytest.raises(DatabaseCorrupt, match="is damaged .* restore a backup"):
        db = await open_db(tmp_path)
        try:
            await db.jobs.list()
        finally:
            await db.close()
    assert path.read_bytes() == before


@async_test
async def test_another_programs_database_is_refused(tmp_path):
    path = tmp_path / "disco.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ForeignDatabase, match="another program .*notes.*move it away"):
        await open_db(tmp_path)
    assert path.read_bytes() == before

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    with pytest.raises(ForeignDatabase):
        await open_db(tmp_path, name="other.db")


@async_test
async def test_a_directory_is_not_a_database(tmp_path):
    (tmp_path / "disco.db").mkdir()
    with pytest.raises(DatabaseError, match="is a directory"):
        await open_db(tmp_path)


@async_test
async def test_locked_database_gives_a_clear_error_and_recovers(tmp_path):
    async with await open_db(tmp_path, busy_timeout_s=0.2) as db:
        job = await db.jobs.enqueue(request())
        await db.leases.claim("engine:1")
        other = sqlite3.connect(tmp_path / "disco.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(DatabaseLocked, match="locked by another connection for more "
                                                     "than 0.2 s"):
                await db.jobs.enqueue(request(user=11))
            with pytest.raises(DatabaseLocked):
                await db.leases.heartbeat(job.id, 1, "engine:1")
            assert (await db.jobs.get(job.id)).state == "running"  # reads still work (WAL)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await db.leases.heartbeat(job.id, 1, "engine:1") is False
        await db.jobs.enqueue(request(user=11))
    assert check_invariants(tmp_path / "disco.db") == {"running": 1, "queued": 1}


@async_test
async def test_full_disk_rolls_back_and_loses_nothing(tmp_path):
    async with await open_db(tmp_path) as db:
        kept = [await db.jobs.enqueue(request(user=u)) for u in range(3)]
        pages = (await db.execute("PRAGMA page_count"))[0][0]
        await db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now "full"
        with pytest.raises(DiskFull, match="disk holding .* is full; the change was rolled back"):
            await db.jobs.enqueue(request(user=9, spec_json="x" * 200_000))
        assert {j.id for j in await db.jobs.list()} == {j.id for j in kept}
        assert (await db.leases.claim("engine:1")).id == kept[0].id  # still usable
        await db.execute("PRAGMA max_page_count = 1073741823")
        await db.jobs.enqueue(request(user=9, spec_json="x" * 200_000))
    assert check_invariants(tmp_path / "disco.db") == {"running": 1, "queued": 3}


@async_test
async def test_a_version_1_file_is_upgraded_and_keeps_its_jobs(tmp_path):
    async with await open_db(tmp_path, name="current.db") as db:
        old = await db.jobs.enqueue(request(), role_ids=[7])
    conn = sqlite3.connect(tmp_path / "disco.db")  # what version 1 wrote: its step, its columns
    for statement in MIGRATIONS[0].statements:
        conn.execute(statement)
    columns = ", ".join(row[1] for row in conn.execute("PRAGMA table_info(jobs)"))
    conn.execute("ATTACH DATABASE ? AS current", (str(tmp_path / "current.db"),))
    conn.execute(f"INSERT INTO jobs ({columns}) SELECT {columns} FROM current.jobs")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    async with await open_db(tmp_path) as db:
        assert (await db.jobs.get(old.id)).role_ids == ()  # queued before roles were kept
        new = await db.jobs.enqueue(request(), role_ids=[7, 8])
        assert (await db.jobs.get(new.id)).role_ids == ("7", "8")
    assert pragma(tmp_path / "disco.db", "user_version") == len(MIGRATIONS)


_WRITER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], timeout=10)
conn.execute("INSERT INTO audit_log (guild_id, action, at) VALUES ('1', 'test.write', 0)")
conn.commit()
conn.close()
"""


@async_test
async def test_opening_the_database_again_keeps_this_processs_locks(tmp_path):
    """The bot opens the file while the poster's (or a test's) connection is open in the same
    process. Reading the file outside SQLite would drop every POSIX lock SQLite holds on it
    here, so another process closing its last connection would think it the last one and
    delete the WAL still in use (the road to 'database disk image is malformed')."""
    import subprocess
    import sys

    path = tmp_path / "disco.db"
    async with await open_db(tmp_path) as first:
        second = await open_db(tmp_path)
        await second.close()
        subprocess.run([sys.executable, "-c", _WRITER, str(path)], check=True, timeout=60)
        assert path.with_name("disco.db-wal").exists()  # it saw this process's connection
        await first.audit.record(1, 5, "test.after", None, {})
        assert [tuple(r) for r in await first.execute("PRAGMA integrity_check")] == [("ok",)]
