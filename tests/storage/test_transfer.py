"""`disco db migrate`: a populated SQLite install copied to the other backend (the `store`
fixture: SQLite or PostgreSQL) and back is row for row the same, the counts are verified, the
queue order survives, and bad input (a password on the command line, a missing source file, a
target that already holds data) is refused with one line."""
from __future__ import annotations

import json
import os
import sqlite3

import pytest

from disco.cli import main
from storage import InvalidState
from storage.transfer import COUNTERS, TABLES, copy_database
from tests.support.storage import FakeClock, Store, async_test, open_db, request, sqlite_store

OWNER = "engine:move"
BIG = os.urandom(2 * 1024 * 1024 + 5)  # several chunks on PostgreSQL


async def populate(path) -> list[str]:
    """An install with work in every state, settings, quotas, presets and audit entries;
    returns the queued jobs in the order the queue would serve them."""
    clock = FakeClock()
    async with await open_db(path.parent, clock, name=path.name) as db:
        await db.guilds.set_limits(1, max_queued_per_user=10, actor_id=5)
        await db.guilds.allow_channel(1, 100, actor_id=5)
        await db.guilds.add_banned_word(1, "gore")
        await db.guilds.pause_intake(2, "maintenance")
        await db.quotas.set_limit(1, "member", "day", 600, actor_id=5)
        await db.quotas.set_limit(1, "role", "month", 9000, subject_id=77)
        await db.presets.save(1, "misty", '{"steps": 80}', 1, owner_id=10)
        await db.presets.save(1, "house", '{"steps": 120}', 1)
        await db.users.set_notify(10, "dm")
        upload = await db.blobs.put(BIG, "init_image.png")
        for user in (10, 11, 12, 10, 11):
            await db.jobs.enqueue(request(user=user, spec_json=json.dumps({"init_image": upload})),
                                  role_ids=[77])
            clock.advance(1)
        done = await db.leases.claim(OWNER)
        result = await db.blobs.put(b"a png", "a.png", job_id=done.id, role="output",
                                    fence=(done.attempt, OWNER))
        await db.leases.complete(done.id, done.attempt, OWNER, artifacts=[result], gpu_seconds=42,
                                 seconds_per_step=0.3)
        await db.jobs.begin_delivery(done.id)
        await db.jobs.mark_delivered(done.id, [555])
        failed = await db.leases.claim(OWNER)
        await db.leases.fail(failed.id, failed.attempt, OWNER, code="oom", message="x", retryable=True)
        await db.leases.claim(OWNER)  # one left running
        await db.audit.record(1, 5, "job.cancel", "X", {"why": "test"})
        return [e.job_id for e in sorted((await db.jobs.positions()).values(), key=lambda e: e.position)]


def dump(path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
                for t in (*TABLES, *(c for c, _ in COUNTERS))}
    finally:
        conn.close()


@async_test
async def test_a_populated_install_survives_a_round_trip(store: Store, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    original = tmp_path / "a" / "original.db"  # each SQLite install keeps its blobs beside it
    order = await populate(original)
    async with await open_db(original.parent, name="original.db") as source, await store.open() as target:
        copied = await copy_database(source, target)
        assert all(c.source == c.target for c in copied)
        counts = {c.table: c.target for c in copied}
        assert (counts["jobs"], counts["blobs"], counts["job_files"], counts["blob contents"]) == (5, 2, 6, 2)
        done = next(j for j in await target.jobs.list() if j.artifacts)
        assert await target.blobs.get(done.artifacts[0]) == b"a png"
        assert [e.job_id for e in sorted((await target.jobs.positions()).values(),
                                         key=lambda e: e.position)] == order
        job = await target.jobs.enqueue(request(user=13))  # ids continue after the copied ones
        assert job.seq == 6
        await target.execute("DELETE FROM jobs WHERE id = ?", (job.id,))
    back = tmp_path / "b" / "back.db"
    async with await store.open() as source, await open_db(back.parent, name="back.db") as target:
        await copy_database(source, target)
        upload = json.loads((await target.jobs.list())[0].spec_json)["init_image"]
        assert await target.blobs.get(upload) == BIG
    assert dump(back) == dump(original)


@async_test
async def test_a_target_with_data_is_refused(store: Store, tmp_path):
    (tmp_path / "a").mkdir()
    await populate(tmp_path / "a" / "original.db")
    async with await store.open() as target:
        await target.jobs.enqueue(request())
        async with await open_db(tmp_path / "a", name="original.db") as source:
            with pytest.raises(InvalidState, match="not empty .*jobs: 1.*new, empty database"):
                await copy_database(source, target)
        assert len(await target.jobs.list()) == 1


def test_the_command_copies_verifies_and_refuses_bad_input(tmp_path, capsys, monkeypatch):
    import asyncio
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    original = tmp_path / "a" / "original.db"
    asyncio.run(populate(original))
    target = sqlite_store(tmp_path / "b" / "new.db")
    assert main(["db", "migrate", "--from", f"sqlite:///{original}", "--to", target.url]) == 0
    out = capsys.readouterr().out
    assert "jobs: 5 → 5" in out and "verified" in out and "blob contents: 2 → 2" in out
    assert f"into {tmp_path / 'b' / 'new.db'}" in out  # where a SQLite target is, resolved
    assert (tmp_path / "b" / "blobs").is_dir()
    assert main(["db", "migrate", "--from", f"sqlite:///{original}",
                 "--to", "postgresql://disco:hunter2@db/disco"]) == 2
    assert "holds a password" in capsys.readouterr().err
    assert main(["db", "migrate", "--from", str(tmp_path / "none.db"), "--to", target.url]) == 2
    assert "does not exist" in capsys.readouterr().err
    monkeypatch.chdir(tmp_path)  # sqlite:/// + "tmp/…/original.db" names a file under this folder
    assert main(["db", "migrate", "--from", f"sqlite:///{str(original).lstrip('/')}",
                 "--to", target.url]) == 2
    assert f"{original} is sqlite:///{original}" in capsys.readouterr().err
    assert main(["db", "migrate", "--from", str(original), "--to", target.url]) == 2
    assert "not empty" in capsys.readouterr().err


def test_disco_db_sweep_deletes_what_no_job_needs(tmp_path, capsys, monkeypatch):
    import asyncio
    import time
    data = tmp_path / "data"
    data.mkdir()
    asyncio.run(populate(data / "disco.db"))
    clock_far = 1_800_000_000.0 + 400 * 86400  # the upload is old enough, the delivered job too

    async def orphan():
        async with await open_db(data, FakeClock(1_800_000_000.0)) as db:
            await db.blobs.put(b"never queued", "u.png")
    asyncio.run(orphan())
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0 + 3600)
    assert main(["db", "sweep", "--data-dir", str(data)]) == 0  # nothing is old enough yet
    assert "deleted 0 job file name(s)" in capsys.readouterr().out
    monkeypatch.setattr(time, "time", lambda: clock_far)  # the database's clock on SQLite
    assert main(["db", "sweep", "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    # The delivered job's output and input names go, then the orphan upload and the output
    # blob; the upload the queued jobs name stays.
    assert "deleted 2 job file name(s) past retention and 2 blob(s)" in out and "1 blob(s)" in out


@async_test
async def test_a_copy_that_dies_while_moving_job_files_leaves_the_target_empty(store: Store, tmp_path,
                                                                              monkeypatch):
    """`disco db migrate` killed part-way through the blob bytes must not leave a target that
    holds every row but not every file (jobs pointing at missing blobs, and a rerun refused as
    'not empty'): the rows and the bytes land together, or nothing does."""
    from storage.snapshot_files import SnapshotFiles
    (tmp_path / "a").mkdir()
    await populate(tmp_path / "a" / "original.db")
    reads = 0
    real_read = SnapshotFiles.read

    async def dies_on_the_second_blob(self, sha):
        nonlocal reads
        reads += 1
        if reads == 2:
            raise KeyboardInterrupt  # as Ctrl-C or a kill: nothing after this point runs
        return await real_read(self, sha)

    monkeypatch.setattr(SnapshotFiles, "read", dies_on_the_second_blob)
    async with await open_db(tmp_path / "a", name="original.db") as source, await store.open() as target:
        with pytest.raises(KeyboardInterrupt):
            await copy_database(source, target)
        assert [table for table in TABLES if (await target.execute(f"SELECT COUNT(*) FROM {table}"))[0][0]] == []
        monkeypatch.setattr(SnapshotFiles, "read", real_read)
        copied = await copy_database(source, target)  # the operator simply runs it again
        assert all(c.source == c.target for c in copied)
        upload = json.loads((await target.jobs.list())[0].spec_json)["init_image"]
        assert await target.blobs.get(upload) == BIG


@async_test
async def test_a_source_still_in_use_is_refused_until_its_engines_are_gone(store: Store, tmp_path):
    """Copying while the old bot's engine (or a worker) still renders from the source: its
    results would land in the old database after the copy, and the new one would render and
    post those jobs again. Live engines in the source refuse the copy, naming them."""
    from storage import STALE_SECONDS, WorkerFit
    (tmp_path / "a").mkdir()
    await populate(tmp_path / "a" / "original.db")
    clock = FakeClock()
    async with await open_db(tmp_path / "a", clock, name="original.db") as source, await store.open() as target:
        await source.workers.register("engine:box:7", host="box", device="cuda:0", fit=WorkerFit())
        with pytest.raises(InvalidState, match=r"still in use: 1 live engine\(s\) \(engine:box:7\); stop the bot "
                                               r"and every engine"):
            await copy_database(source, target)
        assert not (await target.execute("SELECT COUNT(*) FROM jobs"))[0][0]
        clock.advance(STALE_SECONDS + 1)  # stopped (or killed): its heartbeat went stale
        assert all(c.source == c.target for c in await copy_database(source, target))
