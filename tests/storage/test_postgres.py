"""What only the PostgreSQL backend has: the database clock for leases, LISTEN/NOTIFY wake-ups,
the writer lock, a clear line for a bad URL, refusing foreign or newer schemas, a failing
migration step, and outages: a server that is down at start or restarted mid-run. Skipped
(with how to get a server) when DISCO_TEST_POSTGRES_URL is not set; scripts/test.sh sets it.
The outage tests stop and restart a cluster of their own (scripts/postgres.sh), so the tests
running beside them (pytest-xdist) never see the shared server go away; they run where
scripts/test.sh started the shared cluster (DISCO_TEST_POSTGRES_DIR): there postgres.sh works."""
from __future__ import annotations

import asyncio
import os
import subprocess
import time

import psycopg
import pytest

import storage.postgres
from storage import (
    Database,
    DatabaseError,
    DatabaseLocked,
    DatabaseUnavailable,
    ForeignDatabase,
    InvalidValue,
    SchemaTooNew,
)
from storage.migrations import Migration
from tests.support import REPO_ROOT
from tests.support.storage import Store, async_test, check_invariants, request, skip_without_postgres


@pytest.fixture
def pg(tmp_path):
    skip_without_postgres()
    made = Store("postgresql", tmp_path)
    yield made
    made.drop()


POSTGRES_SH = str(REPO_ROOT / "scripts" / "postgres.sh")


@pytest.fixture(scope="module")
def own_cluster():
    """The folder and URL of a throw-away cluster these tests may stop (started once per module)."""
    skip_without_postgres()
    if not os.environ.get("DISCO_TEST_POSTGRES_DIR"):
        pytest.skip("needs DISCO_TEST_POSTGRES_DIR: a cluster of scripts/test.sh's (scripts/postgres.sh works)")
    started = subprocess.run([POSTGRES_SH, "start"], check=True, timeout=120, capture_output=True, text=True)
    folder, url = started.stdout.splitlines()[-2:]
    yield folder, url
    subprocess.run([POSTGRES_SH, "stop", folder], check=True, timeout=60)


@pytest.fixture
def outage_pg(own_cluster, tmp_path):
    """A fresh database on the tests' own cluster; `.cluster(action)` runs postgres.sh on it."""
    folder, url = own_cluster
    made = Store("postgresql", tmp_path, server=url)
    made.cluster = lambda action: subprocess.run([POSTGRES_SH, action, folder], check=True, timeout=60)
    yield made
    made.drop()


@async_test
async def test_leases_use_the_database_clock_so_a_skewed_worker_cannot_steal_one(pg, monkeypatch):
    async with await Database.open(pg.url) as honest:  # no test clock: the server's time
        job = await honest.jobs.enqueue(request())
        claimed = await honest.leases.claim("engine:honest", lease_seconds=60)
        assert abs(claimed.started_at - time.time()) < 30  # the server's clock, near ours
        assert claimed.lease_expires_at == pytest.approx(claimed.started_at + 60)
        monkeypatch.setattr(time, "time", lambda: 1e10)  # this machine's clock is centuries ahead
        async with await Database.open(pg.url) as skewed:
            assert await skewed.leases.requeue_expired() == []
            assert await skewed.leases.claim("engine:skewed") is None
            assert (await skewed.jobs.get(job.id)).lease_owner == "engine:honest"
            assert await skewed.clock() < 1e10


@async_test
async def test_a_change_wakes_waiters_at_once(pg):
    async with await pg.open() as waiter, await pg.open() as bot:
        await waiter.wait_for_change(0.01)  # starts listening
        await waiter.wait_for_change(5)  # the wake-up a (re)connect gives
        started = time.monotonic()
        waiting = asyncio.create_task(waiter.wait_for_change(30))
        await asyncio.sleep(0.2)
        await bot.jobs.enqueue(request())
        await waiting
        assert time.monotonic() - started < 10


@async_test
async def test_the_writer_lock_times_out_with_a_clear_error_and_recovers(pg):
    async with await pg.open(busy_timeout_s=0.3) as db:
        other = psycopg.connect(pg.url)  # another process holds the writer lock
        other.execute("SELECT pg_advisory_xact_lock(%s)", (storage.postgres.WRITER_LOCK,))
        try:
            with pytest.raises(DatabaseLocked, match="held by another connection for more than 0.3 s"):
                await db.jobs.enqueue(request())
        finally:
            other.rollback()
            other.close()
        await db.jobs.enqueue(request())
    assert check_invariants(pg) == {"queued": 1}


@async_test
async def test_bad_urls_are_one_clear_line_without_the_password(pg, tmp_path):
    missing_server = f"postgresql://disco:s3cret@/disco?host={tmp_path}"
    with pytest.raises(DatabaseUnavailable, match="is not reachable") as info:
        await Database.open(missing_server)
    assert "\n" not in str(info.value) and "s3cret" not in str(info.value)
    no_database = pg.url.replace(pg.url.split("?")[0].rsplit("/", 1)[1], "no_such_db")
    with pytest.raises(DatabaseError, match="does not exist; create it") as info:
        await Database.open(no_database)
    assert "\n" not in str(info.value)
    no_role = pg.url.replace("postgresql://postgres@", "postgresql://no_such_role@")
    assert no_role != pg.url
    with pytest.raises(DatabaseError, match=r'role "no_such_role" does not exist; create the role '
                                            r'\(createuser\), or fix the user in the URL'):
        await Database.open(no_role)
    with pytest.raises(DatabaseError, match="URL is not valid"):
        await Database.open("postgresql://localhost/disco?no_such_option=1")
    with pytest.raises(DatabaseError, match="check the host name"):
        await Database.open("postgresql://no-such-host.invalid/disco")
    with pytest.raises(InvalidValue, match="scheme 'mysql' is not supported"):
        await Database.open("mysql://localhost/disco")


@async_test
@pytest.mark.parametrize("option", ["port=99999", "sslmode=bogus", "target_session_attrs=any-one",
                                    "connect_timeout=soon"])
async def test_a_url_value_postgresql_refuses_is_a_mistake_to_fix_not_an_outage_to_wait_for(pg, option):
    """The bot and the engine wait without end for a server that is down; a value libpq
    refuses before any connection (a port out of range, an unknown sslmode) will never work,
    so it is refused at once, naming the URL to fix, however long `wait_s` is."""
    started = time.monotonic()
    with pytest.raises(DatabaseError, match="fix the database URL") as info:
        await Database.open(f"{pg.url}&{option}", wait_s=30)
    assert not isinstance(info.value, DatabaseUnavailable) and "\n" not in str(info.value)
    assert option.split("=")[1] in str(info.value) and time.monotonic() - started < 5


@async_test
async def test_connections_notice_a_server_that_vanished_without_closing_them(pg):
    """A worker on another host whose network drops mid-query would otherwise wait for the
    kernel to give up (tcp_retries2: about 15 minutes) while its leases expire: every
    connection asks for TCP keepalives and a bound on unacknowledged writes (a URL's own
    values win). Unix sockets ignore both."""
    async with await Database.open(f"{pg.url}&keepalives_idle=7") as db:
        async with db.backend._connection() as conn:
            settings = conn.info.get_parameters()
        await db.wait_for_change(0.2)
        listening = db.backend._listener is not None and not db.backend._listener.done()
    assert settings["keepalives_idle"] == "7" and settings["tcp_user_timeout"] == "30000"
    assert settings["keepalives_interval"] == "5" and settings["keepalives_count"] == "3"
    assert listening
    assert storage.postgres.tcp_guards("postgresql://db/disco?tcp_user_timeout=9")["keepalives_idle"] == "10"
    assert "tcp_user_timeout" not in storage.postgres.tcp_guards("postgresql://db/disco?tcp_user_timeout=9")


@async_test
async def test_a_host_name_that_stops_resolving_mid_run_is_an_outage_not_a_typo(pg):
    """At start, a name that does not resolve is a typo in the URL. Once connected, the same
    failure is the database host going away for a moment (compose recreating the postgres
    container: its name resolves again once it is back): retried like any outage, where it
    used to stop the worker and fail the job it was rendering."""
    from contextlib import asynccontextmanager

    dns = psycopg.OperationalError("failed to resolve host 'postgres': [Errno -2] Name or service not known")
    assert isinstance(storage.postgres.translate(dns, "db", 5.0), DatabaseError)
    assert not isinstance(storage.postgres.translate(dns, "db", 5.0), DatabaseUnavailable)
    async with await pg.open() as db:
        @asynccontextmanager
        async def unresolvable(*args, **kwargs):
            raise dns
            yield
        real, db.backend._pool.connection = db.backend._pool.connection, unresolvable
        with pytest.raises(DatabaseUnavailable, match="retrying later is safe"):
            await db.jobs.list()
        db.backend._pool.connection = real
        assert await db.jobs.list() == []


@async_test
async def test_foreign_and_newer_databases_are_refused_and_untouched(pg):
    other = pg.new()
    with psycopg.connect(other.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    with pytest.raises(ForeignDatabase, match="tables of another program .*notes"):
        await Database.open(other.url)
    assert other.query("SELECT table_name FROM information_schema.tables "
                       "WHERE table_schema = 'public'") == [("notes",)]
    async with await pg.open():
        pass
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("UPDATE disco_schema SET version = 99")
    with pytest.raises(SchemaTooNew, match="newer version of disco"):
        await Database.open(pg.url)


@async_test
async def test_a_failing_migration_step_leaves_the_previous_version(pg, monkeypatch):
    async with await pg.open() as db:
        await db.jobs.enqueue(request())
    known = len(storage.postgres.PG_MIGRATIONS)
    broken = Migration("broken", ("CREATE TABLE extra (x INT)", "CREATE TABLE jobs (x INT)"))
    monkeypatch.setattr(storage.postgres, "PG_MIGRATIONS", (*storage.postgres.PG_MIGRATIONS, broken))
    with pytest.raises(DatabaseError, match=f"already exists. The database was left at version {known}"):
        await pg.open()
    assert pg.query("SELECT version FROM disco_schema") == [(known,)]
    assert pg.query("SELECT to_regclass('extra')") == [(None,)]
    assert pg.query("SELECT COUNT(*) FROM jobs") == [(1,)]


@async_test
async def test_a_server_that_is_down_at_start_is_waited_for(outage_pg):
    pg = outage_pg
    async with await pg.open():
        pass  # the schema exists
    pg.cluster("down")
    try:
        opening = asyncio.create_task(Database.open(pg.url, wait_s=60))
        await asyncio.sleep(1.5)
        assert not opening.done()
    finally:
        pg.cluster("up")
    async with await opening as db:
        await db.jobs.enqueue(request())
    assert check_invariants(pg) == {"queued": 1}


@async_test
async def test_a_restart_mid_run_loses_nothing_and_the_queue_carries_on(outage_pg, caplog):
    pg = outage_pg

    async def retrying(call):
        for _ in range(60):
            try:
                return await call()
            except DatabaseUnavailable:
                await asyncio.sleep(0.5)
        raise AssertionError("the database never came back")

    async with await pg.open() as db:
        await db.guilds.set_limits(1, max_queued_per_user=50)
        queued = [(await db.jobs.enqueue(request())).id for _ in range(10)]
        await db.wait_for_change(0.01)  # listening
        finished = []
        for n in range(10):
            if n == 4:
                await asyncio.to_thread(pg.cluster, "restart")
            job = await retrying(lambda: db.leases.claim("engine:1"))
            await retrying(lambda: db.leases.heartbeat(job.id, job.attempt, "engine:1"))
            await retrying(lambda: db.leases.complete(job.id, job.attempt, "engine:1",
                                                      artifacts=[], gpu_seconds=1))
            finished.append(job.id)
        assert sorted(finished) == sorted(queued)
        waiting = asyncio.create_task(db.wait_for_change(30))  # the listener reconnected too
        await asyncio.sleep(0.5)
        await retrying(lambda: db.jobs.enqueue(request()))
        await asyncio.wait_for(waiting, 30)
    assert check_invariants(pg) == {"succeeded": 10, "queued": 1}
    pool_lines = [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]
    assert not pool_lines, pool_lines  # the outage is ours to report, once per try


@async_test
async def test_integrity_check_reports_drifted_counters(pg):
    async with await pg.open() as db:
        await db.jobs.enqueue(request())
        assert await db.integrity_check() == "ok"
        await db.execute("UPDATE queue_guilds SET queued = 5")
        assert await db.integrity_check() == "guild 1: 5 queued counted, 1 in jobs"


@async_test
async def test_a_wrong_password_is_one_line_naming_where_passwords_go(pg, monkeypatch):
    if not pg.query("SELECT 1 FROM pg_roles WHERE rolname = 'disco_pw'"):
        pytest.skip("needs the role disco_pw that scripts/postgres.sh creates")
    url = pg.url.replace("postgresql://postgres@", "postgresql://disco_pw@")
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    with pytest.raises(DatabaseError, match="refused the login .*PGPASSWORD or ~/.pgpass") as info:
        await Database.open(url)
    assert "\n" not in str(info.value) and "not-the-password" not in str(info.value)
    monkeypatch.setenv("PGPASSWORD", "disco-test")
    with pytest.raises(DatabaseError, match="may not create disco's tables .*owner"):  # not the owner
        await Database.open(url)
