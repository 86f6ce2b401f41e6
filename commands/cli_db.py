"""`disco db migrate --from URL --to URL`: move an install to another database (e.g. from the
SQLite file to PostgreSQL when a second GPU host joins). Copies jobs, quotas and the usage
ledger, presets, guild settings, the audit log and the job files (blobs) into an empty database
and verifies the counts (storage/transfer.py).

Passwords never go on the command line (`ps` shows it): use PGPASSWORD or ~/.pgpass.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from urllib.parse import urlsplit


def add_db_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("db", help="database tools: copy an install to another database")
    actions = p.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    migrate = actions.add_parser(
        "migrate", help="copy jobs, quotas, presets, settings, the audit log and job files into an empty database",
        description="Copy everything into an empty database of either backend and check the counts.")
    migrate.add_argument("--from", dest="source", required=True, metavar="URL",
                         help="e.g. sqlite:///data/disco.db")
    migrate.add_argument("--to", dest="target", metavar="URL",
                         help="e.g. postgresql://disco@db/disco (default: DISCO_DATABASE_URL)")
    p.set_defaults(func=cmd_db)


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
        raise ValueError(f"--from: {source_file} does not exist; give the install's disco.db")
    async with await Database.open(source_url) as source, await Database.open(target_url) as target:
        copied = await copy_database(source, target)
    for entry in copied:
        print(f"{entry.table}: {entry.source} → {entry.target}")
    problems = verify(copied)
    for problem in problems:
        print(f"error: counts differ: {problem}", file=sys.stderr)
    if problems:
        return 1
    print("verified: every table has the same number of rows, and every job file (blob) was copied.")
    return 0
