"""`disco db backup` (storage/backup.py): a running install of either backend (the `store`
fixture) copied, in one snapshot, into a new SQLite install; restored with `disco db migrate`
into the other backend it is row for row the same. Writers that keep enqueuing, completing and
replacing job files during the copy (and so deleting the blobs they replace) change nothing in
the backup: it is the install as it was when the snapshot began, every job file whole."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from pathlib import Path

import pytest

from disco.cli import main
from storage import Database, InvalidState, WorkerFit
from storage.backup import back_up, backups_in
from storage.snapshot_files import PIN_PREFIX, SnapshotFiles
from storage.transfer import COUNTERS, TABLES
from tests.support.storage import START, FakeClock, Store, async_test, check_invariants, request, skip_without_postgres

OWNER = "engine:box:1"
BIG = os.urandom(2 * 1024 * 1024 + 5)  # several chunks on PostgreSQL


async def populate(db: Database) -> tuple[str, int]:
    """Jobs in every state, with job files; guild, channel and member settings (defaults too),
    quotas, presets, a live engine. Returns the running job (id, attempt)."""
    await db.guilds.set_limits(1, max_queued_per_user=20, actor_id=5)
    await db.guilds.allow_channel(1, 100, actor_id=5)
    await db.guilds.add_banned_word(1, "gore")
    await db.guilds.set_defaults(1, {"steps": 90}, channel_id=100, actor_id=5)
    await db.quotas.set_limit(1, "member", "day", 600, actor_id=5)
    await db.quotas.set_limit(1, "role", "month", 9000, subject_id=77)
    await db.presets.save(1, "misty", '{"steps": 80}', 1, owner_id=10)
    await db.users.set_notify(10, "dm")
    await db.users.set_defaults(11, {"steps": 150, "width": 640})
    await db.workers.register(OWNER, host="box", device="cuda:0", fit=WorkerFit())
    upload = await db.blobs.put(BIG, "init_image.png")

    async def claimed(user: int, **fields: object):
        """Each job is claimed while it is the only one waiting: which job gets which state
        does not depend on the queue's order."""
        await enqueue(user, **fields)
        return await db.leases.claim(OWNER)

    async def enqueue(user: int, **fields: object):
        return await db.jobs.enqueue(request(user=user, spec_json=json.dumps({"init_image": upload}),
                                             **fields), role_ids=[77])

    done = await claimed(10)
    out = await db.blobs.put(b"a png", "a.png", job_id=done.id, role="output", fence=(done.attempt, OWNER))
    await db.leases.complete(done.id, done.attempt, OWNER, artifacts=[out], gpu_seconds=42, seconds_per_step=0.3)
    await db.jobs.begin_delivery(done.id)
    await db.jobs.mark_delivered(done.id, [555])
    failed = await claimed(11)
    await db.leases.fail(failed.id, failed.attempt, OWNER, code="bad", message="x", retryable=False)
    dead = await claimed(12, max_attempts=1)
    await db.leases.fail(dead.id, dead.attempt, OWNER, code="oom", message="x", retryable=True)
    running = await claimed(13)
    for role, data in (("preview", b"preview 1"), ("checkpoint", b"checkpoint 1")):
        await db.blobs.put(data, f"{role}.bin", job_id=running.id, role=role, fence=(running.attempt, OWNER))
    await db.jobs.cancel((await enqueue(14)).id)
    for user in (15, 16):
        await enqueue(user)
    states = {j.state for j in await db.jobs.list()}
    assert states == {"queued", "running", "succeeded", "failed", "dead", "cancelled"}
    return running.id, running.attempt


def _value(value: object) -> object:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def dump(store: Store) -> dict[str, list[tuple]]:
    """Every copied table, rows normalised across the backends (booleans, bytes) and sorted."""
    return {table: sorted((tuple(_value(v) for v in row) for row in store.query(f"SELECT * FROM {table}")), key=repr)
            for table in (*TABLES, *(c for c, _ in COUNTERS))}


def backup_store(folder: Path) -> Store:
    from tests.support.storage import sqlite_store
    return sqlite_store(folder / "disco.db")


def assert_job_files_whole(folder: Path) -> None:
    """Every blob a job file names is in the backup, its bytes whole (their sha256 is its name)."""
    conn = sqlite3.connect(folder / "disco.db")
    try:
        named = {row[0] for row in conn.execute("SELECT sha256 FROM job_files")}
        blobs = dict(conn.execute("SELECT sha256, size FROM blobs").fetchall())
    finally:
        conn.close()
    assert named <= set(blobs)
    for sha, size in blobs.items():
        data = (folder / "blobs" / sha[:2] / sha).read_bytes()
        assert (hashlib.sha256(data).hexdigest(), len(data)) == (sha, size)


def other_backend(store: Store, tmp_path: Path) -> Store:
    if store.kind == "sqlite":
        skip_without_postgres()
        return Store("postgresql", tmp_path)
    return Store("sqlite", tmp_path)


def test_a_running_install_is_backed_up_and_restored_into_the_other_backend(store: Store, tmp_path):
    async def back_up_populated():
        async with await store.open() as source:
            running = await populate(source)
            return running, await back_up(source, tmp_path / "backups")  # a live engine does not refuse it

    (running, _), made = asyncio.run(back_up_populated())
    assert made.folder.name.startswith("disco-backup-") and backups_in(tmp_path / "backups") == [made.folder]
    assert {c.table: c.target for c in made.copied}["blob contents"] == made.blobs == 4
    assert all(c.source == c.target for c in made.copied)
    assert dump(backup_store(made.folder)) == dump(store)
    assert_job_files_whole(made.folder)
    check_invariants(made.folder / "disco.db")
    if store.kind == "sqlite":
        assert not list((Path(store.url).parent / "blobs").glob(f"{PIN_PREFIX}*"))  # the pin is gone

    restored = other_backend(store, tmp_path)
    try:
        assert main(["db", "migrate", "--from", f"sqlite:///{made.database}", "--to", restored.url]) == 0
        assert dump(restored) == dump(store)

        async def upload_and_resumed_checkpoint() -> tuple[bytes, bytes]:
            """The running job's lease runs out in the restored install; it resumes from its
            checkpoint."""
            async with await restored.open(FakeClock(START + 3600)) as db:
                upload = await db.blobs.get(json.loads((await db.jobs.list())[0].spec_json)["init_image"])
                assert running in {job.id for job in await db.leases.requeue_expired()}
                claimed = [await db.leases.claim("engine:restored") for _ in range(3)]  # and the queued ones
                assert running in {job.id for job in claimed if job is not None}
                [checkpoint] = await db.blobs.job_files(running, ("checkpoint",))
                return upload, await db.blobs.get(checkpoint.ref)
        assert asyncio.run(upload_and_resumed_checkpoint()) == (BIG, b"checkpoint 1")
    finally:
        restored.drop()


@pytest.mark.parametrize("added_late", [False, True])
@async_test
async def test_writes_during_the_backup_leave_it_as_the_snapshot_saw_the_install(store: Store, tmp_path, monkeypatch,
                                                                                 added_late):
    """The worst moment: the tables are copied, the job files not yet, and meanwhile a writer
    replaces the running job's preview and checkpoint (deleting the old blobs), completes jobs,
    enqueues more and sweeps. The backup holds the install as it was when the snapshot began.
    `added_late`: on SQLite, every blob as if put after the files were first linked, so all
    are held by the links made under the write lock."""
    import storage.snapshot_files
    from storage.blobs import Blobs

    if added_late:
        monkeypatch.setattr(storage.snapshot_files, "_files_in", lambda root: [])
    async with await store.open() as source:
        running, attempt = await populate(source)
    before = dump(store)
    real_copy = Blobs.copy_into
    rounds = 0

    async def write(db: Database) -> None:
        nonlocal rounds
        for role in ("preview", "checkpoint"):  # the snapshot's blobs of these are deleted
            await db.blobs.put(f"{role} 2".encode(), f"{role}.bin", job_id=running, role=role,
                               fence=(attempt, OWNER))
        while True:
            await db.jobs.enqueue(request(guild=2, user=20 + rounds % 3))
            job = await db.leases.claim("engine:writer")
            if job is not None and job.id != running:
                ref = await db.blobs.put(os.urandom(64), "out.png", job_id=job.id, role="output",
                                         fence=(job.attempt, "engine:writer"))
                await db.leases.complete(job.id, job.attempt, "engine:writer", artifacts=[ref], gpu_seconds=1)
            await db.blobs.sweep(0, grace_s=0)
            rounds += 1
            await asyncio.sleep(0)

    writing: list[asyncio.Task] = []

    async def copy_while_writing(target, conn, shas, read):
        writing.append(asyncio.create_task(write(writer)))  # the snapshot began before this
        while rounds < 3:  # the writer gets well into its work before any byte is copied
            await asyncio.sleep(0.01)
        await real_copy(target, conn, shas, read)

    monkeypatch.setattr(Blobs, "copy_into", staticmethod(copy_while_writing))
    async with await store.open() as source, await store.open() as writer:
        try:
            made = await back_up(source, tmp_path / "backups")
        finally:
            writing[0].cancel()
            await asyncio.gather(*writing, return_exceptions=True)
    assert rounds >= 3
    assert dump(backup_store(made.folder)) == before != dump(store)
    assert_job_files_whole(made.folder)
    async with await Database.open(made.database) as backup:
        files = {f.role: f for f in await backup.blobs.job_files(running)}
        assert await backup.blobs.get(files["preview"].ref) == b"preview 1"
        assert await backup.blobs.get(files["checkpoint"].ref) == b"checkpoint 1"


@async_test
async def test_a_writer_running_throughout_never_breaks_a_backup(store: Store, tmp_path):
    """Backups taken one after another while a writer never stops: each one verifies, is
    internally sound, and every job file in it is whole."""
    async with await store.open() as source:
        await populate(source)
    stop = asyncio.Event()

    async def write(db: Database) -> None:
        n = 0
        while not stop.is_set():
            await db.jobs.enqueue(request(guild=3, user=30 + n % 4))
            job = await db.leases.claim("engine:writer")
            if job is not None:
                for k in range(2):  # the second put replaces the first: its blob is deleted
                    await db.blobs.put(os.urandom(32), "preview.png", job_id=job.id, role="preview",
                                       fence=(job.attempt, "engine:writer"))
                await db.leases.complete(job.id, job.attempt, "engine:writer", artifacts=[], gpu_seconds=1)
            n += 1

    async with await store.open(FakeClock()) as source, await store.open() as writer:
        writing = asyncio.create_task(write(writer))
        try:
            made = [await back_up(source, tmp_path / "backups", keep=2) for _ in range(3)]
        finally:
            stop.set()
            await writing
    assert backups_in(tmp_path / "backups") == [m.folder for m in made[1:]]
    for backup in made[1:]:
        assert all(c.source == c.target for c in backup.copied)
        assert_job_files_whole(backup.folder)
        check_invariants(backup.folder / "disco.db")


@async_test
async def test_a_file_deleted_while_it_could_not_be_held_stops_the_backup(tmp_path, monkeypatch):
    """Where hard links fail (the blobs folder spans file systems), a job file deleted after
    the snapshot began cannot be copied: the backup stops naming it and leaves no folder."""
    import storage.snapshot_files as snapshot_files

    def no_links(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(snapshot_files.os, "link", no_links)
    real_read = SnapshotFiles.read

    async def deleted_first(self, sha):
        (tmp_path / "data" / "blobs" / sha[:2] / sha).unlink()
        return await real_read(self, sha)

    monkeypatch.setattr(SnapshotFiles, "read", deleted_first)
    async with await Database.open(tmp_path / "data" / "disco.db", now=FakeClock()) as source:
        await populate(source)
        with pytest.raises(InvalidState, match=r"is missing .*deleted while it was being copied \(job files "
                                             r"could not be held with hard links .*Invalid cross-device link\)"):
            await back_up(source, tmp_path / "backups")
    assert list((tmp_path / "backups").glob("disco-backup-*")) == []


@async_test
async def test_the_snapshot_is_one_view_across_tables_while_others_commit(store: Store):
    """What the copy reads in: a job committed by another connection after the first read is
    in no table of the snapshot (PostgreSQL: REPEATABLE READ, and the copy's transaction may
    stay idle while a large job file is written)."""
    from storage.snapshot_files import IDLE_LIMIT, snapshot_files

    async with await store.open() as source, await store.open() as writer:
        await populate(source)
        async with source.snapshot() as read, snapshot_files(source, read):
            counts = [(await read.execute_fetchall(f"SELECT COUNT(*) FROM {t}"))[0][0] for t in TABLES]
            job = await writer.jobs.enqueue(request(user=40))
            await writer.blobs.put(b"late", "late.png", job_id=job.id, role="input")
            assert [(await read.execute_fetchall(f"SELECT COUNT(*) FROM {t}"))[0][0] for t in TABLES] == counts
            if store.kind == "postgresql":
                settings = [(await read.execute_fetchall(f"SHOW {name}"))[0][0]
                            for name in ("transaction_isolation", "idle_in_transaction_session_timeout")]
                assert settings == ["repeatable read", IDLE_LIMIT]
        assert len(await source.jobs.list()) == 8


@async_test
async def test_counts_that_differ_leave_no_backup(tmp_path, monkeypatch):
    import storage.backup
    monkeypatch.setattr(storage.backup, "verify", lambda copied: ["jobs: 7 rows in the source, 6 in the target"])
    async with await Database.open(tmp_path / "data" / "disco.db", now=FakeClock()) as source:
        await populate(source)
        with pytest.raises(InvalidState, match=r"counts differ .*jobs: 7 rows in the source, 6 in the target.*it "
                                               r"was removed. Run it again"):
            await back_up(source, tmp_path / "backups")
    assert list((tmp_path / "backups").glob("disco-backup-*")) == []
