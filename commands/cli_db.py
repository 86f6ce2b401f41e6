"""`disco db migrate --from URL --to URL`: move an install to another database (e.g. from the
SQLite file to PostgreSQL when a second GPU host joins). `disco db sweep`: delete now the job
files the bot's hourly sweep would delete (delivered longer ago than `[storage] retention_days`). Copies jobs, quotas and the usage
ledger, presets, guild settings, the audit log and the job files (blobs) into an empty database
and verifies the counts (storage/transfer.py).

Passwords never go on the command line (`ps` shows it): use PGPASSWORD or ~/.pgpass.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit


def add_db_command(commands: argparse._SubParsersAction, options: argparse.ArgumentParser) -> None:
    """`options`: the parent parser of the commands that read the config file (`sweep` does)."""
    p = commands.add_parser("db", help="database tools: copy an install to another database, sweep old job files")
    actions = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate", help="copy jobs, quotas, presets, settings, the audit log and job files into an empty database",
        description="Copy everything into an empty database of either backend and check the counts.")
    migrate.add_argument("--from", dest="source", required=True, metavar="URL",
                         help="e.g. sqlite:///data/disco.db")
    migrate.add_argument("--to", dest="target", metavar="URL",
                         help="e.g. postgresql://disco@db/disco (default: DISCO_DATABASE_URL)")
    p.set_defaults(func=cmd_db)
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
