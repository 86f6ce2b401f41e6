"""The job files (blob bytes) of one read snapshot, for `disco db migrate` and `disco db backup`
(storage/transfer.py), while the bot and the engines may keep writing.

A snapshot's rows must come with the bytes of the blobs they name as they were when it began:
- PostgreSQL keeps the bytes in `blob_chunks`: read in the snapshot's own transaction
  (REPEATABLE READ: one view across every table, storage/postgres.py), they are there even
  when a job replaced, and so deleted, a preview or a checkpoint since.
- SQLite keeps them as files, and the write transaction that drops a blob deletes its file at
  once: the snapshot would still list the blob, its file gone. So the snapshot begins while
  this module holds SQLite's write lock on a connection of its own, and every file the
  snapshot lists is hard-linked into a pin folder (`blobs/.pin-<pid>-<token>`) before the lock
  is released. Links copy no bytes, and all but the files added in the last moments are made
  before the lock is taken: writers wait milliseconds. The copy reads the pinned
  files; the folder goes when it ends. A pin folder whose process is gone (a killed copy) is
  removed by the next copy. Where links fail (the blobs folder spans file systems), files are
  read in place, and one deleted meanwhile stops the copy with a message to run it again.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from .blobs import Blobs, BlobRef
from .connection import translate
from .errors import InvalidState

PIN_PREFIX = ".pin-"
_SHA = re.compile(r"^[0-9a-f]{64}$")
IDLE_LIMIT = "10min"  # PostgreSQL: the longest one job file may take to write into the target


class SnapshotFiles:
    """`await files.read(sha)`: the bytes of a blob the snapshot lists."""

    def __init__(self, conn: Any, root: Path | None, pin: Path | None, unpinned: str):
        self._conn, self._root, self._pin, self._unpinned = conn, root, pin, unpinned

    async def read(self, sha: str) -> bytes:
        if self._root is None:
            return await Blobs.read_chunks(self._conn, BlobRef(sha, sha))
        places = [self._root / sha[:2] / sha]
        if self._pin is not None:
            places.insert(0, self._pin / sha)
        for path in places:
            try:
                return await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                continue
        why = f" ({self._unpinned})" if self._unpinned else ""
        raise InvalidState(f"the file of blob {sha[:12]} is missing from {self._root}: deleted while "
                           f"it was being copied{why}, or lost before; run the command again, and "
                           f"if it stops at the same blob run `disco db sweep` first")


@asynccontextmanager
async def snapshot_files(db: Any, read: Any) -> AsyncIterator[SnapshotFiles]:
    """Enter first thing inside `db.snapshot()` (as `read`), before any statement runs in it:
    the snapshot begins here, with its blob files held (SQLite) until the block ends."""
    root = db.blobs.root
    if root is None:
        # Between two reads the copy writes a job file into the target: a large one on a slow
        # disk may leave this transaction idle past the pool's 60 s idle_in_transaction timeout.
        await read.execute(f"SET LOCAL idle_in_transaction_session_timeout = '{IDLE_LIMIT}'")
        yield SnapshotFiles(read, None, None, "")
        return
    await asyncio.to_thread(_remove_dead_pins, root)
    pin = root / f"{PIN_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Every file on disk is linked first, without the lock (a blob's bytes never change, so a
    # link stays right whatever happens to the blob after): under the lock only the blobs
    # added since are, and writers wait for a few links rather than one per job file.
    on_disk = await asyncio.to_thread(_files_in, root)
    linked: set[str] = set()
    unpinned = await asyncio.to_thread(_link, root, pin, on_disk, linked) if on_disk else ""
    lock = await asyncio.to_thread(_hold_write_lock, Path(db.path), db.backend.busy_timeout_s)
    try:
        # No writer can commit while the lock is held: what this first read sees is also what
        # is on disk, and its files are linked before any of them can be deleted.
        shas = [row[0] for row in await read.execute_fetchall("SELECT sha256 FROM blobs")]
        added = [sha for sha in shas if sha not in linked]
        if added and not unpinned:
            unpinned = await asyncio.to_thread(_link, root, pin, added, linked)
    finally:
        await asyncio.to_thread(_release, lock)
    try:
        yield SnapshotFiles(read, root, pin, unpinned)
    finally:
        await asyncio.to_thread(shutil.rmtree, pin, True)


def _hold_write_lock(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        conn.close()
        raise translate(exc, path, busy_timeout_s) from exc
    return conn


def _release(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")  # it wrote nothing
    finally:
        conn.close()


def _files_in(root: Path) -> list[str]:
    """The blob files in the blobs folder (not the temp files of puts under way)."""
    return [path.name for path in root.glob("??/*") if _SHA.match(path.name)] if root.is_dir() else []


def _link(root: Path, pin: Path, shas: list[str], linked: set[str]) -> str:
    """Hard-link each blob's file into `pin`, adding the linked ones to `linked`; '' when every
    present file was linked, else why not (the copy then reads the rest in place)."""
    try:
        pin.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a source on a read-only disk: nothing can delete its files either
        return f"no folder for the hard links could be made in {root}: {exc.strerror}"
    for sha in shas:
        try:
            os.link(root / sha[:2] / sha, pin / sha)
        except FileNotFoundError:
            continue  # deleted meanwhile, or lost before the snapshot: reading it says so
        except FileExistsError:
            pass
        except OSError as exc:
            return f"job files could not be held with hard links in {root}: {exc.strerror}"
        linked.add(sha)
    return ""


def _remove_dead_pins(root: Path) -> None:
    """Pin folders of copies whose process is gone (killed part-way)."""
    if not root.is_dir():
        return
    for folder in root.glob(f"{PIN_PREFIX}*"):
        pid = folder.name[len(PIN_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
