"""`disco db migrate --from URL --to URL`: move an install to another database (e.g. from the
SQLite file to PostgreSQL when a second GPU host joins). `disco db backup [--to DIR]`: copy the
running install's database into a new SQLite install in a folder of its own (storage/backup.py).
`disco db restore BACKUP`: copy a backup back in as the install's SQLite database
(storage/restore.py). `disco db sweep`: delete now the job files the bot's hourly sweep would
delete (delivered longer ago than `[storage] retention_days`). Migrate and backup copy jobs, quotas and the usage ledger,
presets, guild and member settings, the audit log and the job files (blobs), read in one
snapshot, and verify the counts (storage/transfer.py).

Passwords never go on the command line (`ps` shows it): use PGPASSWORD or ~/.pgpass.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

MAX_KEEP = 1000  # storage.backup.MAX_KEEP (storage loads only when a db command runs)


def add_db_command(commands: argparse._SubParsersAction, options: argparse.ArgumentParser) -> None:
    """`options`: the parent parser of the commands that read the config file (`sweep` does)."""
    p = commands.add_parser("db", help="database tools: back up, copy an install to another database, "
                                       "sweep old job files")
    actions = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate", help="copy jobs, quotas, presets, settings, the audit log and job files into an empty database",
        description="Copy everything into an empty database of either backend and check the counts.")
    migrate.add_argument("--from", dest="source", required=True, metavar="URL",
                         help="e.g. sqlite:///data/disco.db")
    migrate.add_argument("--to", dest="target", metavar="URL",
                         help="e.g. postgresql://disco@db/disco (default: DISCO_DATABASE_URL)")
    p.set_defaults(func=cmd_db)
    backup = actions.add_parser(
        "backup", parents=[options], help="copy the running install's database and job files into "
                                          "a new backup folder (the bot and engines may keep running)",
        description="Copy the install's database (either backend), as one snapshot, into a new SQLite "
                    "database with its job files in DIR/disco-backup-<UTC time>/, verify the counts, "
                    "and say how to restore it.")
    backup.add_argument("--to", metavar="DIR", help="the folder that holds the backups (default: "
                                                    "[storage] backup_dir, else the data folder's backups/)")
    backup.add_argument("--keep", type=int, metavar="N",
                        help=f"then remove all but the newest N backups in DIR (1 to {MAX_KEEP})")
    backup.set_defaults(func=cmd_backup)
    restore = actions.add_parser(
        "restore", parents=[options], help="put a backup back as the install's SQLite database "
                                           "(refuses while a database is still in place)",
        description="Copy a backup's disco.db and blobs/ into the folder of the install's SQLite "
                    "database (the data folder, unless [storage] url names another file). The "
                    "backup is only read. Stop the bot and every engine, and move the old disco.db "
                    "(with its -wal and -shm files) and blobs/ aside first: it refuses otherwise.")
    restore.add_argument("backup", metavar="BACKUP", help="a disco-backup-<UTC time> folder")
    restore.set_defaults(func=cmd_restore)
    sweep = actions.add_parser(
        "sweep", parents=[options], help="delete the files of jobs delivered longer ago than [storage] retention_days",
        description="The bot's retention sweep, now: files of delivered jobs past the retention, "
                    "then every blob no job names (uploads never queued, after a day).")
    sweep.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace, config: dict[str, dict], data_dir) -> int:
    """`disco db sweep` on the install's database (DISCO_DATABASE_URL, [storage] url, or the
    data dir's SQLite file)."""
    from storage import Database, database_url

    async def sweep() -> int:
        url = database_url(data_dir, config["storage"].get("url", ""))
        async with await Database.open(url) as db:
            swept = await db.blobs.sweep(config["storage"]["retention_days"] * 86400.0)
            held, size = await db.blobs.count()
        print(f"deleted {swept.job_files} job file name(s) past retention and {swept.blobs} blob(s) "
              f"({swept.bytes / 2**20:.1f} MiB); {held} blob(s) ({size / 2**20:.1f} MiB) kept")
        return 0
    return asyncio.run(sweep())


def cmd_backup(args: argparse.Namespace, config: dict[str, dict], data_dir) -> int:
    """`disco db backup` of the database the bot and engines use (DISCO_DATABASE_URL, [storage]
    url, or the data dir's SQLite file)."""
    from storage import Database, InvalidValue, database_url
    from storage.backup import back_up, check_keep
    from storage.db import sqlite_file

    check_keep(args.keep)  # before connecting: a bad flag fails at once
    url = database_url(data_dir, config["storage"].get("url", ""))
    source_file = sqlite_file(url)
    if source_file is not None and not source_file.is_file():  # opening would make an empty one
        raise InvalidValue(f"there is no database at {source_file}, so nothing to back up; point "
                           f"--data-dir, [storage] url of --config or DISCO_DATABASE_URL at the install's")
    into = Path(args.to or config["storage"].get("backup_dir") or Path(data_dir) / "backups")

    async def run() -> int:
        async with await Database.open(url) as source:
            made = await back_up(source, into, keep=args.keep)
            _report_backup(source.path, source.kind, made, args.keep)
        return 0
    return asyncio.run(run())


def _report_backup(source, source_kind: str, made, keep: int | None) -> None:
    print(f"backed up {source}")
    for path in made.leftovers:
        print(f"removed {path.name}: a backup stopped part-way left it (never a good backup)")
    print("copied in one snapshot:")
    for entry in made.copied:
        unit = "blob(s)" if entry.table == "blob contents" else "row(s)"
        print(f"  {'job files' if entry.table == 'blob contents' else entry.table}: {entry.target} {unit}")
    database = made.database.resolve()
    print(f"verified: {made.folder.resolve()} ({made.bytes / 2**20:.1f} MiB: disco.db and blobs/) "
          f"in {made.seconds:.1f} s")
    if made.removed:
        print(f"removed {len(made.removed)} older backup(s) (--keep {keep}): "
              f"{', '.join(p.name for p in made.removed)}")
    print(restore_steps(made.folder.resolve(), database, sqlite=source_kind == "sqlite"))


def restore_steps(folder: Path, database: Path, *, sqlite: bool) -> str:
    """How to restore the backup `folder`: a SQLite install gets `disco db restore`, either
    can move into an empty database with `disco db migrate`."""
    migrate = f"disco db migrate --from sqlite:///{database} --to <an empty database's URL>"
    if not sqlite:
        return (f"To restore it, stop the bot and every engine, then copy it into an empty database\n"
                f"(a new one, or this one dropped and made again): {migrate}")
    return (f"To restore it, stop the bot and every engine, then either:\n"
            f"  - SQLite: move the install's disco.db (with its -wal and -shm files) and blobs/ aside,\n"
            f"    then: disco db restore {folder}\n"
            f"    (it copies the backup into the install's data folder; the backup stays as it is)\n"
            f"  - PostgreSQL or a new place: {migrate}")


def cmd_restore(args: argparse.Namespace, config: dict[str, dict], data_dir) -> int:
    """`disco db restore BACKUP` into the install's SQLite database (storage/restore.py)."""
    from storage import InvalidValue, database_url
    from storage.db import sqlite_file
    from storage.restore import restore

    url = database_url(data_dir, config["storage"].get("url", ""))
    target = sqlite_file(url)
    backup = Path(args.backup).resolve()
    if target is None:
        raise InvalidValue(f"the install's database is PostgreSQL ({url.split('@')[-1]}): restore into an "
                           f"empty database with `disco db migrate --from sqlite:///{backup}/disco.db --to URL`")
    made = restore(backup, target.resolve())
    for path in made.leftovers:
        print(f"removed {path.name}: a restore stopped part-way left it")
    print(f"restored {backup} into {made.database} (job files in {made.blobs}); the backup is unchanged")
    print(RESTORED_NOTE)
    return 0


RESTORED_NOTE = (
    "Start the bot and the engines: queued jobs run; jobs that were rendering resume from their last\n"
    "checkpoint once their leases run out. Results posted before the backup was taken are not posted\n"
    "again; a result posted after it is posted again (twice in all), unless the restore comes within\n"
    "Discord's nonce window (minutes). The backup holds no engines: `disco workers` lists those that\n"
    "start on the restored install.")


def cmd_db(args: argparse.Namespace) -> int:
    from storage import URL_VARIABLE, StorageError

    target = args.target or os.environ.get(URL_VARIABLE, "")
    try:
        for name, url in (("--from", args.source), ("--to", target)):
            _check_url(name, url)
        return asyncio.run(_migrate(args.source, target))
    except (StorageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _check_url(name: str, url: str) -> None:
    if not url:
        raise ValueError(f"{name} is missing: give a database URL (sqlite:///… or postgresql://…)")
    if "://" in url and urlsplit(url).password:
        raise ValueError(f"{name} holds a password, which `ps` would show to every user: remove it "
                         f"and set PGPASSWORD or a ~/.pgpass entry instead")


async def _migrate(source_url: str, target_url: str) -> int:
    from storage import Database
    from storage.db import sqlite_file
    from storage.transfer import copy_database, verify

    source_file = sqlite_file(source_url)
    if source_file is not None and not source_file.is_file():
        absolute = Path("/", source_file)
        hint = (f" (sqlite:/// is followed by a path from the current folder; {absolute} is "
                f"sqlite:///{absolute})") if not source_file.is_absolute() and absolute.is_file() else ""
        raise ValueError(f"--from: {source_file} does not exist; give the install's disco.db{hint}")
    async with await Database.open(source_url) as source, await Database.open(target_url) as target:
        copied = await copy_database(source, target)
    target_file = sqlite_file(target_url)
    if target_file is not None:  # a relative path lands under the current folder: say where
        print(f"into {target_file.resolve()}")
    for entry in copied:
        print(f"{entry.table}: {entry.source} → {entry.target}")
    problems = verify(copied)
    for problem in problems:
        print(f"error: counts differ: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("verified: every table has the same number of rows, and every job file (blob) was copied.")
    return 0
