"""Job files as blobs, so no process needs to share a disk with another: uploads, previews,
checkpoints, finished frames and cells, results.

    ref = await db.blobs.put(data, "init_image.png")                  # the bot, at an upload
    ref = await db.blobs.put(data, "checkpoint.pt", job_id=job.id, role="checkpoint",
                             fence=(job.attempt, owner))              # the engine, fenced
    data = await db.blobs.get(ref)                                    # anyone, any host

A blob is content-addressed (sha256) and immutable. Where its bytes live depends on the
backend: files under `<folder of disco.db>/blobs/ab/<sha256>` on SQLite (every process of a
SQLite install shares that disk already), 1 MiB `bytea` rows of `blob_chunks` on PostgreSQL.
`blobs` lists every blob on both; `job_files` names a job's files (job, name, role, blob).

References: a spec or an artifact names a blob as `blob:<sha256>/<name>` (`blob_ref`,
`parse_ref`: the one place that knows the format). Rows written before blobs hold absolute
paths; `parse_ref` returns None for those, and `get` reads them as files.

Lifetime: a blob lives while a `job_files` row names it (its reference count). `sweep` drops
the rows of jobs delivered more than the retention ago, then the blobs no row names (an upload
not yet enqueued is spared for `GRACE_S`). `enqueue` records the blobs a spec names as the new
job's inputs, so a result reused by a later job (🌗 vary) survives while either job needs it.

Writing: a put stores the bytes first, outside the write lock (a large MP4 would otherwise hold
up every claim), then, under the lock, checks they are all there and writes the `blobs` row.
Bytes no row names (a put that died in between) are leftovers, deleted by `sweep`.
"""
from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator

from .errors import CapExceeded, DatabaseError, DiskFull, InvalidValue, NotFound

BLOB_SCHEME = "blob:"
CHUNK_BYTES = 1 << 20  # PostgreSQL rows of 1 MiB: no single giant value
# The largest blob: an MP4 of a long animation before the bot fits it to Discord's limit (at
# most 100 MiB posted) and a checkpoint of the largest allowed image both fit well below it.
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_RETENTION_DAYS = 30.0
GRACE_S = 24 * 3600.0  # an unreferenced blob younger than this may be an upload about to be queued
# A blob file with no row, or a temp file, older than this was left by a put that never finished.
LEFTOVER_FILE_AGE_S = 3600.0
TEMP_SUFFIX = ".tmp"
ROLES = ("input", "preview", "checkpoint", "output", "frame", "cell", "state")
# What an attempt needs to resume another's work (materialised into its scratch folder).
RESUME_ROLES = ("checkpoint", "output", "frame", "cell", "state")
_SHA = re.compile(r"^[0-9a-f]{64}$")
_NAME_PART = re.compile(r"^[^/\\\x00-\x1f]{1,120}$")
FENCE = "WHERE id = ? AND attempt = ? AND lease_owner = ? AND state = 'running'"


@dataclass(frozen=True)
class BlobRef:
    sha256: str
    name: str

    def __str__(self) -> str:
        return f"{BLOB_SCHEME}{self.sha256}/{self.name}"


def check_name(name: str) -> str:
    """A job file's name is a relative path of plain parts (no `..`, no absolute path), so
    materialising it can never write outside the job's folder."""
    parts = name.split("/")
    if len(name) > 240 or not all(_NAME_PART.match(p) and p not in (".", "..") for p in parts):
        raise InvalidValue(f"blob name {name[:80]!r} is not a relative path of plain names")
    return name


def blob_ref(sha256: str, name: str) -> str:
    """The text a spec or an artifact holds for a blob."""
    return str(BlobRef(sha256, check_name(name)))


def parse_ref(text: Any) -> BlobRef | None:
    """The blob a text names, or None for anything else (a plain path of an older row)."""
    if not isinstance(text, str) or not text.startswith(BLOB_SCHEME):
        return None
    sha, _, name = text[len(BLOB_SCHEME):].partition("/")
    if not _SHA.match(sha):
        raise InvalidValue(f"{text[:90]!r} is not a blob reference (blob:<sha256>/<name>)")
    return BlobRef(sha, check_name(name or sha))


def refs_in(spec_json: str) -> list[BlobRef]:
    """Every blob a job's spec names, in order, once each."""
    found: dict[BlobRef, None] = {}

    def walk(value: Any) -> Iterator[BlobRef]:
        if isinstance(value, dict):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)
        elif (ref := parse_ref(value)) is not None:
            yield ref

    try:
        for ref in walk(json.loads(spec_json)):
            found[ref] = None
    except ValueError:
        return []
    return list(found)


def name_of(text: str) -> str:
    """The file name a reference or a plain path ends with."""
    ref = parse_ref(text)
    return (ref.name if ref else text).rsplit("/", 1)[-1]


@dataclass(frozen=True)
class JobFile:
    job_id: str
    name: str
    role: str
    sha256: str
    size: int
    created_at: float

    @property
    def ref(self) -> str:
        return blob_ref(self.sha256, self.name)


@dataclass(frozen=True)
class Swept:
    job_files: int  # rows of delivered jobs past the retention
    blobs: int      # blobs no row needed any more, and the bytes of puts that never finished
    bytes: int


class BlobTooLarge(CapExceeded):
    """A blob over `[storage] blob_bytes`."""


class Blobs:
    """The blob store of one `Database` (`db.blobs`); `max_bytes` is `[storage] blob_bytes`."""

    def __init__(self, db: Any, max_bytes: int = DEFAULT_MAX_BYTES):
        self._db = db
        self.max_bytes = max_bytes

    @property
    def root(self) -> Path | None:
        """The folder of blob files (SQLite), None when blobs live in the database."""
        return Path(self._db.path).parent / "blobs" if self._db.kind == "sqlite" else None

    # ---- writing --------------------------------------------------------------------------------

    async def put(self, data: bytes, name: str, *, job_id: str | None = None, role: str = "input",
                  fence: tuple[int, str] | None = None) -> str:
        """Store `data` (once per content) and return its reference. With `job_id`, also name it
        the job's file `name` with `role`, replacing an earlier file of that name; with `fence`
        (attempt, owner), only while that attempt holds the job (StaleAttempt otherwise)."""
        check_name(name)
        if role not in ROLES:
            raise InvalidValue(f"blob role {role!r} is unknown; use one of {', '.join(ROLES)}")
        if len(data) > self.max_bytes:
            raise BlobTooLarge("blob_bytes", self.max_bytes, len(data),
                               f"{name[:80]} is {len(data) / 2**20:.1f} MiB, over the largest file "
                               f"storage keeps", "use smaller settings (size, frames), or raise "
                               "[storage] blob_bytes in the config file")
        sha = await asyncio.to_thread(_sha256, data)  # 0.2 s for 100 MiB: not on the event loop
        # The bytes go first, outside the write lock: writing a 100 MiB MP4 under it would hold
        # up every claim and enqueue for a second. Under the lock, the row that makes them a
        # blob is written only after checking they are still there (a sweep may have taken them).
        if not await self._known(sha):
            await self._write_unlocked(sha, data)
        async with self._db.transaction() as conn:
            if fence is not None and job_id is not None:
                await self._check_fence(conn, job_id, *fence)
            now = await self._db.clock(conn)
            if not await self._bytes_kept(conn, sha, len(data)):  # swept meanwhile, or removed by hand
                await self._write(conn, sha, data)
            await conn.execute("INSERT INTO blobs (sha256, size, touched_at) VALUES (?, ?, ?) ON "
                               "CONFLICT (sha256) DO UPDATE SET touched_at = excluded.touched_at",
                               (sha, len(data), now))
            if job_id is not None:
                await self._name(conn, job_id, name, role, sha, len(data), now)
        return blob_ref(sha, name)

    async def attach_inputs(self, conn: Any, job_id: str, spec_json: str, now: float) -> None:
        """Inside enqueue's transaction: every blob the spec names becomes an input of the job
        (it is kept while the job needs it). A blob that is gone refuses the job."""
        for ref in refs_in(spec_json):
            rows = await conn.execute_fetchall("SELECT size FROM blobs WHERE sha256 = ?", (ref.sha256,))
            if not rows:
                raise NotFound(f"the file {ref.name} is no longer kept on the server (blob "
                               f"{ref.sha256[:12]}); attach it again")
            await self._name(conn, job_id, f"inputs/{ref.sha256[:16]}/{ref.name}", "input",
                             ref.sha256, int(rows[0][0]), now)

    async def _name(self, conn: Any, job_id: str, name: str, role: str, sha: str, size: int,
                    now: float) -> None:
        """Name `sha` the job's file `name`. The blob it replaces (an older preview or
        checkpoint) is deleted at once when no job names it any more: a long render would
        otherwise pile up hundreds of them until the sweep."""
        before = await conn.execute_fetchall(
            "SELECT sha256 FROM job_files WHERE job_id = ? AND name = ?", (job_id, name))
        await conn.execute(
            "INSERT INTO job_files (job_id, name, role, sha256, size, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, name) DO UPDATE SET "
            "role = excluded.role, sha256 = excluded.sha256, size = excluded.size, "
            "created_at = excluded.created_at", (job_id, name, role, sha, size, now))
        if before and before[0][0] != sha:
            await self._drop_unnamed(conn, [before[0][0]])

    async def _drop_unnamed(self, conn: Any, shas: list[str]) -> list[Any]:
        """Delete those of `shas` that no job names; returns their (sha256, size) rows."""
        gone = []
        for start in range(0, len(shas), 500):
            part = shas[start:start + 500]
            marks = ", ".join("?" for _ in part)
            gone += await conn.execute_fetchall(
                f"DELETE FROM blobs WHERE sha256 IN ({marks}) AND NOT EXISTS (SELECT 1 FROM job_files f "
                f"WHERE f.sha256 = blobs.sha256) RETURNING sha256, size", part)
        deleted = [row[0] for row in gone]
        if self.root is None:
            for start in range(0, len(deleted), 500):
                part = deleted[start:start + 500]
                await conn.execute(f"DELETE FROM blob_chunks WHERE sha256 IN "
                                   f"({', '.join('?' for _ in part)})", part)
        else:
            await asyncio.to_thread(self._unlink, deleted)
        return gone

    async def _check_fence(self, conn: Any, job_id: str, attempt: int, owner: str) -> None:
        from .errors import StaleAttempt
        if not await conn.execute_fetchall(f"SELECT 1 FROM jobs {FENCE}", (job_id, attempt, owner)):
            rows = await conn.execute_fetchall("SELECT state, attempt FROM jobs WHERE id = ?", (job_id,))
            state, current = (rows[0][0], rows[0][1]) if rows else (None, None)
            raise StaleAttempt(job_id, attempt, owner, state, current)

    async def _known(self, sha: str) -> bool:
        rows = await self._db.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (sha,))
        return bool(rows) and (self.root is None or self._file(sha).exists())

    async def _write_unlocked(self, sha: str, data: bytes) -> None:
        """The bytes of a blob that has no row yet. Bytes no row names are leftovers to `sweep`."""
        if self.root is not None:
            await self._store_file(sha, data)
            return
        async with self._db.unlocked_transaction() as conn:
            await self._insert_chunks(conn, sha, data)

    async def _bytes_kept(self, conn: Any, sha: str, size: int) -> bool:
        """Under the lock: are all of the blob's bytes stored?"""
        if self.root is not None:
            return await asyncio.to_thread(_file_size, self._file(sha)) == size
        rows = await conn.execute_fetchall(
            "SELECT COUNT(*), COALESCE(SUM(octet_length(data)), 0) FROM blob_chunks WHERE sha256 = ?",
            (sha,))
        return (int(rows[0][0]), int(rows[0][1])) == (len(_chunk_starts(size)), size)

    async def _write(self, conn: Any, sha: str, data: bytes) -> None:
        """The bytes, inside a locked transaction (a put whose bytes were swept, a copy)."""
        if self.root is not None:
            await self._store_file(sha, data)
            return
        await conn.execute("DELETE FROM blob_chunks WHERE sha256 = ?", (sha,))
        await self._insert_chunks(conn, sha, data)

    @staticmethod
    async def _insert_chunks(conn: Any, sha: str, data: bytes) -> None:
        # Two puts of the same bytes may race here; the chunks are equal, so the second adds none.
        view = memoryview(data)
        await conn.executemany(
            "INSERT INTO blob_chunks (sha256, seq, data) VALUES (?, ?, ?) "
            "ON CONFLICT (sha256, seq) DO NOTHING",
            [(sha, n, bytes(view[start:start + CHUNK_BYTES]))
             for n, start in enumerate(_chunk_starts(len(data)))])

    def _file(self, sha: str) -> Path:
        assert self.root is not None
        return self.root / sha[:2] / sha

    async def _store_file(self, sha: str, data: bytes) -> None:
        """`_write_file` off the event loop; a full disk is DiskFull, as for the database."""
        try:
            await asyncio.to_thread(self._write_file, sha, data)
        except OSError as exc:
            where = self.root
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFull(f"the disk holding {where} is full; nothing was lost. Free some space "
                               f"(`disco db sweep` deletes old job files), then try again",
                               str(where)) from None
            raise DatabaseError(f"a job file cannot be written in {where} ({exc.strerror}); check "
                                f"the folder's permissions and the disk", str(where)) from None

    def _write_file(self, sha: str, data: bytes) -> None:
        """Atomic: a temp file of its own in the same folder (two puts of the same bytes may
        run at once), fsynced, then renamed over."""
        path = self._file(sha)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{sha}.", suffix=TEMP_SUFFIX)
        try:
            with open(handle, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    # ---- reading --------------------------------------------------------------------------------

    async def get(self, ref: str) -> bytes:
        """The bytes of a reference; a plain path (a row made before blobs) is read as a file.
        NotFound when the blob (or the file) is gone."""
        parsed = parse_ref(ref)
        if parsed is None:
            try:
                return await asyncio.to_thread(Path(ref).read_bytes)
            except OSError as exc:
                raise NotFound(f"{name_of(ref)} is no longer kept on the server ({exc.strerror})") from None
        return await self._read(parsed)

    async def _read(self, ref: BlobRef) -> bytes:
        if self.root is not None:
            try:
                return await asyncio.to_thread(self._file(ref.sha256).read_bytes)
            except OSError:
                raise NotFound(f"{ref.name} is no longer kept on the server (blob "
                               f"{ref.sha256[:12]})") from None
        async with self._db.snapshot() as conn:
            return await self.read_chunks(conn, ref)

    @staticmethod
    async def read_chunks(conn: Any, ref: BlobRef) -> bytes:
        """PostgreSQL: a blob's bytes as the transaction `conn` sees them (a snapshot keeps
        seeing the chunks of a blob deleted after it began)."""
        size = await conn.execute_fetchall("SELECT size FROM blobs WHERE sha256 = ?", (ref.sha256,))
        rows = await conn.execute_fetchall(
            "SELECT data FROM blob_chunks WHERE sha256 = ? ORDER BY seq", (ref.sha256,))
        data = b"".join(bytes(row[0]) for row in rows)
        if not size or len(data) != int(size[0][0]):
            raise NotFound(f"{ref.name} is no longer kept on the server (blob {ref.sha256[:12]})")
        return data

    async def exists(self, ref: str) -> bool:
        try:
            parsed = parse_ref(ref)
        except InvalidValue:
            return False
        if parsed is None:
            return await asyncio.to_thread(Path(ref).is_file)
        rows = await self._db.execute("SELECT 1 FROM blobs WHERE sha256 = ?", (parsed.sha256,))
        return bool(rows) and (self.root is None or self._file(parsed.sha256).exists())

    async def save_to(self, ref: str, path: Path) -> Path:
        """The blob as a local file at `path` (atomic), for code that reads files."""
        from_blob = await self.get(ref)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        await asyncio.to_thread(temp.write_bytes, from_blob)
        os.replace(temp, path)
        return path

    async def job_files(self, job_id: str, roles: tuple[str, ...] = ROLES) -> list[JobFile]:
        marks = ", ".join("?" for _ in roles)
        rows = await self._db.execute(
            f"SELECT job_id, name, role, sha256, size, created_at FROM job_files "
            f"WHERE job_id = ? AND role IN ({marks}) ORDER BY name", (job_id, *roles))
        return [JobFile(r[0], r[1], r[2], r[3], int(r[4]), float(r[5])) for r in rows]

    # ---- retention ------------------------------------------------------------------------------

    async def sweep(self, retention_s: float, *, grace_s: float = GRACE_S) -> Swept:
        """Forget the files of jobs delivered (or given up on) more than `retention_s` ago and of
        jobs that no longer exist, then delete every blob no job names that is older than
        `grace_s`. One transaction: a put waits, so nothing it keeps is removed."""
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            dropped = await conn.execute_fetchall(
                "DELETE FROM job_files WHERE job_id IN (SELECT id FROM jobs WHERE delivery_state "
                "IN ('posted','abandoned') AND finished_at IS NOT NULL AND finished_at < ?) "
                "OR job_id NOT IN (SELECT id FROM jobs) RETURNING job_id", (now - retention_s,))
            old = await conn.execute_fetchall(
                "SELECT sha256 FROM blobs WHERE touched_at < ? AND NOT EXISTS (SELECT 1 FROM job_files f "
                "WHERE f.sha256 = blobs.sha256)", (now - grace_s,))
            unused = await self._drop_unnamed(conn, [row[0] for row in old])
            leftovers = await self._drop_leftovers(conn)
        return Swept(len(dropped), len(unused) + len(leftovers),
                     sum(int(row[1]) for row in unused) + sum(leftovers.values()))

    async def _drop_leftovers(self, conn: Any) -> dict[str, int]:
        """Under the lock: delete bytes no `blobs` row names, left by a put that died between
        writing them and the row; returns {sha256: bytes}. On PostgreSQL this may take the
        chunks of a put still running: its locked step finds them gone and writes them again."""
        if self.root is None:
            rows = await conn.execute_fetchall(
                "DELETE FROM blob_chunks c WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE "
                "b.sha256 = c.sha256) RETURNING c.sha256, octet_length(c.data)")
            gone: dict[str, int] = {}
            for sha, size in rows:
                gone[sha] = gone.get(sha, 0) + int(size)
            return gone
        kept = {row[0] for row in await conn.execute_fetchall("SELECT sha256 FROM blobs")}
        return await asyncio.to_thread(self._unlink_leftover_files, kept)

    def _unlink_leftover_files(self, kept: set[str]) -> dict[str, int]:
        assert self.root is not None
        gone: dict[str, int] = {}
        old = time.time() - LEFTOVER_FILE_AGE_S  # file times are this host's clock
        for path in self.root.glob("??/*"):
            name = path.name
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue  # a temp file renamed meanwhile
            leftover = name.endswith(TEMP_SUFFIX) or (_SHA.match(name) and name not in kept)
            if leftover and stat.st_mtime < old:
                path.unlink(missing_ok=True)
                gone[name] = stat.st_size
        return gone

    def _unlink(self, shas: list[str]) -> None:
        for sha in shas:
            self._file(sha).unlink(missing_ok=True)

    async def count(self) -> tuple[int, int]:
        """(blobs, bytes) held."""
        rows = await self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM blobs")
        return int(rows[0][0]), int(rows[0][1])

    @staticmethod
    async def copy_into(target: Blobs, conn: Any, shas: list[str],
                        read: Callable[[str], Awaitable[bytes]]) -> None:
        """The bytes of the blobs `shas`, from `read(sha)`, into `target` inside its transaction
        `conn` (`disco db migrate` and `backup`, after the tables and their `blobs` rows were
        copied in that transaction), one blob at a time."""
        for sha in shas:
            await target._write(conn, sha, await read(sha))

    async def complete(self) -> int:
        """How many blobs have all their bytes stored (a migrated install's check)."""
        async with self._db.snapshot() as conn:
            rows = await conn.execute_fetchall("SELECT sha256, size FROM blobs")
            return sum([await self._bytes_kept(conn, sha, int(size)) for sha, size in rows])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunk_starts(size: int) -> range:
    return range(0, max(1, size), CHUNK_BYTES)  # an empty blob is one empty chunk


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None
