"""`disco db backup`: a consistent copy of a running install, of either backend, as a new SQLite
install in a folder of its own: `DIR/disco-backup-<UTC time>/disco.db` with its job files
(blobs) in `blobs/` beside it, the layout of a SQLite data folder.

- The copy is `disco db migrate`'s (storage/transfer.py): one snapshot of the source, the
  counts verified. Live engines do not refuse it: a snapshot of running jobs is what a restore
  should start from (their leases run out, and the jobs resume from their checkpoints).
- It is written under `disco-backup-<time>.partial` and renamed only once the counts match, so
  a backup killed part-way (or stopped by a full disk) never looks like a good one. The next
  backup into the same folder removes such leftovers, and says so.
- One backup at a time per folder: a lock file (`.disco-backup.lock`, flock: released by the
  kernel when its process dies, however it dies) refuses a second one at once instead of
  letting it remove the first one's partial folder.
- `keep`: then all but the newest `keep` backups of the folder are removed, never the one the
  install runs from (a SQLite `[storage] url` pointed into a backup folder).
"""
from __future__ import annotations

import calendar
import errno
import fcntl
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .db import DATABASE_FILE, Database
from .errors import DiskFull, InvalidState, InvalidValue
from .transfer import Copied, copy_database, verify

PREFIX = "disco-backup-"
PARTIAL = ".partial"
LOCK_FILE = ".disco-backup.lock"
MAX_KEEP = 1000
MAX_SAME_SECOND = 100  # backups started within one second get -2, -3, … after the time
_COMPLETE = re.compile(rf"^{PREFIX}(\d{{8}}T\d{{6}}Z)(?:-(\d+))?$")


@dataclass(frozen=True)
class Backup:
    folder: Path
    copied: list[Copied]
    bytes: int                # on disk: the database and the job files
    seconds: float
    leftovers: list[Path]     # partial folders of stopped backups, removed
    removed: list[Path]       # older backups removed for `keep`

    @property
    def database(self) -> Path:
        return self.folder / DATABASE_FILE

    @property
    def blobs(self) -> int:
        return next(c.target for c in self.copied if c.table == "blob contents")


def check_keep(keep: int | None) -> None:
    if keep is not None and not 1 <= keep <= MAX_KEEP:
        raise InvalidValue(f"--keep {keep}: keep 1 to {MAX_KEEP} of the newest backups (rule: "
                           f"backup_keep); leave it out to remove none")


async def back_up(source: Database, into: Path, *, keep: int | None = None,
                  clock: Callable[[], float] = time.time) -> Backup:
    """Copy `source` into a new folder under `into` (made if missing); see the module docstring."""
    check_keep(keep)
    _make_folder(into)
    with _only_backup(into):
        leftovers = _remove_partials(into)
        await _check_space(source, into)
        final = _new_name(into, clock())
        partial = final.with_name(final.name + PARTIAL)
        started = time.monotonic()
        try:
            copied = await _write(source, partial)
            _publish(partial, final)
        except DiskFull as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise DiskFull(f"the disk holding {into} is full (writing {exc.path} failed); the partial "
                           f"backup was removed. Free space there, keep fewer backups (--keep N), or "
                           f"back up to another disk with --to DIR", str(into)) from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        seconds = time.monotonic() - started
        removed = _remove_old(into, keep, final, _source_folder(source)) if keep else []
    return Backup(final, copied, _size(final), seconds, leftovers, removed)


async def _write(source: Database, partial: Path) -> list[Copied]:
    """The copy, into the new folder `partial`; its counts verified."""
    _mkdir(partial)
    async with await Database.open(partial / DATABASE_FILE) as target:
        # Live engines allowed: a snapshot of running jobs is what a restore should start
        # from; their leases run out and they resume from their checkpoints.
        copied = await copy_database(source, target, live=True)
    problems = verify(copied)
    if problems:
        raise InvalidState(f"the backup's counts differ from the database's ({'; '.join(problems)}); "
                           f"it was removed. Run it again, and report this if it repeats")
    return copied


def newest_backup_time(into: Path) -> float | None:
    """When the newest complete backup in `into` was started (its name's UTC time), or None."""
    found = backups_in(into)
    if not found:
        return None
    stamp = _COMPLETE.match(found[-1].name).group(1)
    return float(calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ")))


def backups_in(into: Path) -> list[Path]:
    """The complete backups in `into`, oldest first."""
    found = []
    for path in into.iterdir() if into.is_dir() else ():
        match = _COMPLETE.match(path.name)
        if match and path.is_dir():
            found.append((match.group(1), int(match.group(2) or 1), path))
    return [path for _, _, path in sorted(found)]


# ---- the folder ------------------------------------------------------------------------------

def _make_folder(into: Path) -> None:
    if into.exists() and not into.is_dir():
        raise InvalidValue(f"--to {into} is a file, not a folder; name a folder for the backups "
                           f"(it is made if missing)")
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidValue(f"cannot make the backup folder {into} ({exc.strerror}); name a folder "
                           f"you can write to with --to DIR") from None
    if not os.access(into, os.W_OK | os.X_OK):
        raise InvalidValue(f"the backup folder {into} is not writable by this user; name a folder "
                           f"you can write to with --to DIR, or fix its permissions")


def _mkdir(path: Path) -> None:
    try:
        path.mkdir()
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"no room for {path}", str(path)) from None
        raise InvalidValue(f"cannot write in the backup folder {path.parent} ({exc.strerror}); name "
                           f"a folder you can write to with --to DIR") from None


@contextmanager
def _only_backup(into: Path) -> Iterator[None]:
    try:
        handle = os.open(into / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise InvalidValue(f"cannot write in the backup folder {into} ({exc.strerror}); name a "
                           f"folder you can write to with --to DIR") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidState(f"another `disco db backup` is writing into {into} right now (it holds "
                               f"{into / LOCK_FILE}); wait for it to finish, or back up into another "
                               f"folder with --to DIR") from None
        yield
    finally:
        os.close(handle)  # releases the lock


def _remove_partials(into: Path) -> list[Path]:
    """Under the lock, every partial folder is one a stopped backup left."""
    leftovers = sorted(p for p in into.glob(f"{PREFIX}*{PARTIAL}") if p.is_dir())
    for path in leftovers:
        shutil.rmtree(path)
    return leftovers


async def _check_space(source: Database, into: Path) -> None:
    """Fail at once, not after copying gigabytes, when the job files alone cannot fit."""
    _, needed = await source.blobs.count()
    free = shutil.disk_usage(into).free
    if needed > free:
        raise DiskFull(f"the backup needs at least {needed / 2**20:.1f} MiB for the job files and the "
                       f"disk holding {into} has {free / 2**20:.1f} MiB free; free space there, keep "
                       f"fewer backups (--keep N), or back up to another disk with --to DIR", str(into))


def _new_name(into: Path, now: float) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    for n in range(1, MAX_SAME_SECOND + 1):
        path = into / f"{PREFIX}{stamp}{'' if n == 1 else f'-{n}'}"
        if not path.exists() and not path.with_name(path.name + PARTIAL).exists():
            return path
    raise InvalidState(f"{MAX_SAME_SECOND} backups already carry the time {stamp} in {into}; wait a "
                       f"second and run it again")


def _source_folder(source: Database) -> Path | None:
    """The folder of a SQLite source's file (None for PostgreSQL)."""
    return Path(source.path).resolve().parent if source.kind == "sqlite" else None


def _remove_old(into: Path, keep: int, made: Path, in_use: Path | None) -> list[Path]:
    """All but the newest `keep` (the one just made counts as the newest, whatever the clock).
    Never `in_use`, the folder of the database being backed up: an install run from a backup
    folder (`[storage] url` pointed at it) would lose its live database."""
    older = [path for path in backups_in(into) if path != made and path.resolve() != in_use]
    doomed = older[:max(0, len(older) - (keep - 1))]
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def _publish(partial: Path, final: Path) -> None:
    """The verified backup takes its good name; the rename survives a power cut once the folder
    holding it is on disk."""
    os.rename(partial, final)
    handle = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
