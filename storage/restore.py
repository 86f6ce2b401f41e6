"""`disco db restore BACKUP`: put a backup made by `disco db backup` (storage/backup.py) back as
the install's SQLite database: its `disco.db` and `blobs/` copied into the folder the install's
database lives in (the data folder, unless `[storage] url` names another file).

- The backup itself is only read: it stays as it was (one in use as a database, its `-wal`
  beside it, is refused: `disco.db` alone would miss what the log holds), and the scheduled backups beside it
  (`backup_keep`) remove it in their turn without touching the install.
- It refuses a folder that still holds a database (`disco.db`, or its `-wal`/`-shm` files: a
  stale write-ahead log replayed onto another database corrupts it) or job files: a running
  install, or one the operator has not moved aside, is never overwritten.
- The copy is written under `.restoring` names and renamed into place, `disco.db` last: one
  stopped part-way leaves no database that looks restored, and the next restore removes the
  leftovers.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .db import DATABASE_FILE
from .errors import InvalidState, InvalidValue

BLOBS = "blobs"
PARTIAL = ".restoring"
DATABASE_SIDE_FILES = ("-wal", "-shm", "-journal")  # SQLite's, beside the database file


@dataclass(frozen=True)
class Restored:
    database: Path
    blobs: Path
    leftovers: list[Path]  # of a restore stopped part-way, removed


def restore(backup: Path, database: Path) -> Restored:
    """Copy the backup folder `backup` in as the SQLite database file `database` (and the job
    files beside it); see the module docstring."""
    _check_backup(backup)
    folder = database.parent
    in_place = _in_place(database)
    if in_place:
        raise InvalidState(f"{folder} still holds an install ({', '.join(p.name for p in in_place)}); stop "
                           f"the bot and every engine, move those aside (keep them until the restored "
                           f"install runs), then run `disco db restore` again")
    folder.mkdir(parents=True, exist_ok=True)
    leftovers = _remove_leftovers(database)
    blobs, partial_blobs = folder / BLOBS, folder / (BLOBS + PARTIAL)
    partial_db = database.with_name(database.name + PARTIAL)
    if (backup / BLOBS).is_dir():
        shutil.copytree(backup / BLOBS, partial_blobs)
    else:
        partial_blobs.mkdir()
    shutil.copy2(backup / DATABASE_FILE, partial_db)
    partial_blobs.rename(blobs)
    partial_db.rename(database)  # last: the database appears only once its job files are there
    return Restored(database, blobs, leftovers)


def _check_backup(backup: Path) -> None:
    if backup.name.endswith(".partial"):
        raise InvalidValue(f"{backup} is a backup that was stopped part-way (never a good one); name "
                           f"a complete disco-backup-<time> folder")
    if not (backup / DATABASE_FILE).is_file():
        raise InvalidValue(f"{backup} holds no {DATABASE_FILE}; name a folder `disco db backup` made "
                           f"(disco-backup-<time>, with disco.db and blobs/)")
    open_files = [side for side in DATABASE_SIDE_FILES if (backup / (DATABASE_FILE + side)).exists()]
    if open_files:
        # Part of its database is in that log: copying disco.db alone would lose it.
        raise InvalidState(f"{backup} is in use as a database (its {DATABASE_FILE}{open_files[0]} is there): "
                           f"stop what runs from it, or copy that install with `disco db backup` and "
                           f"restore the new backup")


def _in_place(database: Path) -> list[Path]:
    """What a running or not-yet-moved install leaves where the restore would write."""
    found = [database.with_name(database.name + side) for side in ("", *DATABASE_SIDE_FILES)]
    found.append(database.parent / BLOBS)
    return [path for path in found if path.exists()]


def _remove_leftovers(database: Path) -> list[Path]:
    found = [path for path in (database.with_name(database.name + PARTIAL),
                               database.parent / (BLOBS + PARTIAL)) if path.exists()]
    for path in found:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return found
