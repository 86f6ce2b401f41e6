"""The blob store on both backends: put/get, chunking, the size cap, fencing, references,
retention and reference counts (storage/blobs.py)."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time

import pytest

from storage import BlobTooLarge, NotFound, StaleAttempt, blob_ref, parse_ref
from storage.blobs import CHUNK_BYTES, GRACE_S, LEFTOVER_FILE_AGE_S, refs_in
from storage.errors import InvalidValue
from tests.support.storage import FakeClock, async_test, open_db, request

DAY = 86400.0


@async_test
async def test_put_get_round_trip_and_content_addressing(store):
    db = await open_db(store)
    try:
        data = os.urandom(3 * CHUNK_BYTES + 17)  # several chunks on PostgreSQL
        ref = await db.blobs.put(data, "init_image.png")
        sha = hashlib.sha256(data).hexdigest()
        assert ref == f"blob:{sha}/init_image.png" == blob_ref(sha, "init_image.png")
        assert await db.blobs.get(ref) == data
        assert await db.blobs.put(data, "other name.png") == f"blob:{sha}/other name.png"
        assert await db.blobs.count() == (1, len(data))  # stored once
        if store.kind == "postgresql":
            chunks = store.query("SELECT seq, length(data) FROM blob_chunks ORDER BY seq")
            assert [c[1] for c in chunks] == [CHUNK_BYTES] * 3 + [17]
        else:
            assert (store_folder(store) / "blobs" / sha[:2] / sha).read_bytes() == data
        empty = await db.blobs.put(b"", "empty.txt")
        assert await db.blobs.get(empty) == b""
    finally:
        await db.close()


def store_folder(store):
    from pathlib import Path
    return Path(store.url).parent


@async_test
async def test_blob_over_the_cap_is_refused_with_the_rule(store):
    db = await open_db(store)
    try:
        db.blobs.max_bytes = 1000
        with pytest.raises(BlobTooLarge) as refused:
            await db.blobs.put(b"x" * 1001, "animation.mp4")
        assert refused.value.cap == "blob_bytes" and "[storage] blob_bytes" in str(refused.value)
        assert await db.blobs.count() == (0, 0)
        await db.blobs.put(b"x" * 1000, "fits.bin")
    finally:
        await db.close()


def test_references_parse_and_plain_paths_stay_paths():
    sha = "a" * 64
    assert parse_ref(f"blob:{sha}/frames/0001.png").name == "frames/0001.png"
    assert parse_ref("/data/jobs/01ABC/x.png") is None
    for bad in (f"blob:{sha}/../x", f"blob:{sha}//x", "blob:1234/x.png", f"blob:{sha}/a/./b"):
        with pytest.raises(InvalidValue):
            parse_ref(bad)
    spec = json.dumps({"init_image": f"blob:{sha}/i.png", "image_prompts": [f"blob:{'b' * 64}/p.png:2", "a cat"],
                       "render": {"init_image": f"blob:{sha}/i.png"}})
    assert [r.sha256[0] for r in refs_in(spec)] == ["a", "b"]


@async_test
async def test_reads_of_rows_made_before_blobs(store, tmp_path):
    db = await open_db(store)
    try:
        old = tmp_path / "preview.png"
        old.write_bytes(b"png")
        assert await db.blobs.get(str(old)) == b"png" and await db.blobs.exists(str(old))
        with pytest.raises(NotFound):
            await db.blobs.get(str(tmp_path / "gone.png"))
        with pytest.raises(NotFound):
            await db.blobs.get(blob_ref("c" * 64, "gone.png"))
    finally:
        await db.close()


@async_test
async def test_job_files_are_fenced_by_the_attempt(store):
    db = await open_db(store)
    try:
        job = await db.jobs.enqueue(request())
        claimed = await db.leases.claim("engine:a")
        ref = await db.blobs.put(b"state 1", "checkpoint.pt", job_id=job.id, role="checkpoint",
                                 fence=(claimed.attempt, "engine:a"))
        await db.blobs.put(b"state 2", "checkpoint.pt", job_id=job.id, role="checkpoint",
                           fence=(claimed.attempt, "engine:a"))  # replaces the name
        files = await db.blobs.job_files(job.id)
        assert [(f.name, f.role) for f in files] == [("checkpoint.pt", "checkpoint")]
        assert await db.blobs.get(files[0].ref) == b"state 2" and files[0].ref != ref
        assert not await db.blobs.exists(ref)  # the replaced checkpoint is gone at once
        assert await db.blobs.count() == (1, len(b"state 2"))
        with pytest.raises(StaleAttempt):
            await db.blobs.put(b"stale", "checkpoint.pt", job_id=job.id, role="checkpoint",
                               fence=(claimed.attempt, "engine:b"))
        assert await db.blobs.get((await db.blobs.job_files(job.id))[0].ref) == b"state 2"
    finally:
        await db.close()


async def _delivered(db, job_id, owner="engine:a"):
    claimed = await db.leases.claim(owner)
    assert claimed.id == job_id
    await db.leases.complete(job_id, claimed.attempt, owner, artifacts=[], gpu_seconds=1.0)
    await db.jobs.begin_delivery(job_id)
    await db.jobs.mark_delivered(job_id, [1])


@async_test
async def test_retention_sweep_keeps_blobs_a_job_still_needs(store):
    clock = FakeClock()
    db = await open_db(store, clock)
    try:
        shared = await db.blobs.put(b"the result", "r.png")
        first = await db.jobs.enqueue(request(spec_json=json.dumps({"init_image": shared})))
        second = await db.jobs.enqueue(request(spec_json=json.dumps({"init_image": shared})))
        own = await db.blobs.put(b"only the first", "out.png", job_id=first.id, role="output")
        orphan = await db.blobs.put(b"an upload never queued", "u.png")
        with pytest.raises(NotFound):  # a spec naming a blob that is gone is refused
            await db.jobs.enqueue(request(spec_json=json.dumps({"init_image": blob_ref("d" * 64, "x.png")})))
        await _delivered(db, first.id)
        clock.advance(GRACE_S + 1)
        swept = await db.blobs.sweep(retention_s=7 * DAY)
        assert (swept.job_files, swept.blobs) == (0, 1)  # the upload nobody queued
        assert not await db.blobs.exists(orphan)
        clock.advance(7 * DAY)
        swept = await db.blobs.sweep(retention_s=7 * DAY)
        assert (swept.job_files, swept.blobs) == (2, 1)  # first's files; only its own blob goes
        assert not await db.blobs.exists(own) and await db.blobs.get(shared) == b"the result"
        await _delivered(db, second.id)
        clock.advance(7 * DAY + 1)
        swept = await db.blobs.sweep(retention_s=7 * DAY)
        assert (swept.job_files, swept.blobs) == (1, 1)
        assert await db.blobs.count() == (0, 0)
        if store.kind == "postgresql":
            assert store.query("SELECT COUNT(*) FROM blob_chunks")[0][0] == 0
        else:
            assert not any(p.is_file() for p in (store_folder(store) / "blobs").rglob("*"))
    finally:
        await db.close()


@async_test
async def test_a_put_refreshes_a_blob_the_sweep_would_drop(store):
    clock = FakeClock()
    db = await open_db(store, clock)
    try:
        ref = await db.blobs.put(b"upload", "u.png")
        clock.advance(GRACE_S + 1)
        assert await db.blobs.put(b"upload", "u.png") == ref  # uploaded again: young again
        assert (await db.blobs.sweep(retention_s=DAY)).blobs == 0
        assert await db.blobs.get(ref) == b"upload"
    finally:
        await db.close()


class PausedPut:
    """A put of `size` random bytes held between writing its bytes and taking the write lock
    for its row: `await PausedPut.started(...)` returns once the bytes are written; `finish()`
    lets it go on and returns its reference."""

    def __init__(self, blobs, size: int, name: str):
        self.data = os.urandom(size)
        self._written, self._go_on = asyncio.Event(), asyncio.Event()
        original = blobs._write_unlocked

        async def write_then_wait(sha, data):
            await original(sha, data)
            self._written.set()
            await self._go_on.wait()
        blobs._write_unlocked = write_then_wait
        self._put = asyncio.create_task(blobs.put(self.data, name))

    @classmethod
    async def started(cls, blobs, size: int, name: str) -> PausedPut:
        paused = cls(blobs, size, name)
        await asyncio.wait_for(paused._written.wait(), 10)
        return paused

    async def finish(self) -> str:
        self._go_on.set()
        return await self._put


@async_test
async def test_a_put_writes_its_bytes_without_holding_the_write_lock(store):
    async with await open_db(store) as db:
        put = await PausedPut.started(db.blobs, 2 * CHUNK_BYTES + 5, "animation.mp4")
        # Another writer gets through while the bytes sit there without their row.
        job = await asyncio.wait_for(db.jobs.enqueue(request()), 3)
        assert not await db.blobs.exists(blob_ref(hashlib.sha256(put.data).hexdigest(), "animation.mp4"))
        assert await db.blobs.get(await put.finish()) == put.data and await db.jobs.get(job.id)


@async_test
async def test_a_sweep_between_a_puts_bytes_and_its_row_loses_nothing(store):
    async with await open_db(store) as db:
        put = await PausedPut.started(db.blobs, CHUNK_BYTES + 9, "frame.png")
        age_leftover_files(store)
        swept = await db.blobs.sweep(retention_s=DAY)  # takes the bytes no row names yet
        assert (swept.blobs, swept.bytes) == (1, len(put.data))
        assert await db.blobs.get(await put.finish()) == put.data  # found them gone, wrote them again


@async_test
async def test_sweep_deletes_the_bytes_of_a_put_that_died_before_its_row(store):
    db = await open_db(store)
    try:
        kept = await db.blobs.put(b"a whole blob", "kept.png")
        await db.blobs._write_unlocked("e" * 64, b"the bytes of a put killed before its row")
        if db.blobs.root is not None:
            temp = db.blobs.root / "ee" / f".{'e' * 64}.x1.tmp"  # killed while writing the file
            temp.write_bytes(b"half")
            young = db.blobs.root / "ff" / ("f" * 64)  # a put writing now: spared
            young.parent.mkdir()
            young.write_bytes(b"young")
            age_leftover_files(store, but=young)
        swept = await db.blobs.sweep(retention_s=DAY)
        assert swept.blobs == (1 if db.blobs.root is None else 2)
        assert await db.blobs.get(kept) == b"a whole blob"
        if db.blobs.root is None:
            assert store.query("SELECT COUNT(*) FROM blob_chunks")[0][0] == 1
        else:
            left = {path.name for path in db.blobs.root.glob("??/*")}
            assert left == {parse_ref(kept).sha256, "f" * 64}
    finally:
        await db.close()


def age_leftover_files(store, but=None):
    """SQLite: make the blob files old enough for the sweep to count them as leftovers."""
    if store.kind == "sqlite":
        old = time.time() - LEFTOVER_FILE_AGE_S - 60
        for path in (store_folder(store) / "blobs").glob("??/*"):
            if path != but:
                os.utime(path, (old, old))


@async_test
async def test_a_blob_file_that_cannot_be_written_is_a_storage_error_that_says_why(tmp_path):
    import errno
    from storage import DatabaseError, DiskFull
    db = await open_db(tmp_path)
    try:
        def no_space(sha, data):
            raise OSError(errno.ENOSPC, "No space left on device")
        db.blobs._write_file = no_space
        with pytest.raises(DiskFull, match="is full; nothing was lost. Free some space"):
            await db.blobs.put(b"a frame", "frame.png")

        def not_allowed(sha, data):
            raise PermissionError(errno.EACCES, "Permission denied")
        db.blobs._write_file = not_allowed
        with pytest.raises(DatabaseError, match=r"cannot be written in .*blobs \(Permission denied\); check"):
            await db.blobs.put(b"a frame", "frame.png")
        assert await db.blobs.count() == (0, 0)
    finally:
        await db.close()
