"""`disco workers`: the fleet — every engine registered in the database, live or not.

Torch-free; it reads storage only. `disco` loads the config file and resolves the data folder.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from commands.fleet import fleet_table, stranded_lines


def add_workers_command(commands: argparse._SubParsersAction, config_options: argparse.ArgumentParser) -> None:
    p = commands.add_parser("workers", parents=[config_options],
                            help="list the engines working on the queue (host, device, job, heartbeat)",
                            description="The engines registered in the database (live or not) and the "
                                        "queued jobs no live engine can run, with the worker to start.")
    p.add_argument("--json", action="store_true", help="one JSON object per worker")
    p.set_defaults(func=cmd_workers)


def cmd_workers(args: argparse.Namespace, config: dict[str, dict], data_dir: Path) -> int:
    from storage import StorageError, database_url

    try:
        return asyncio.run(_show(args, database_url(data_dir, config["storage"].get("url"))))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _show(args: argparse.Namespace, database: str) -> int:
    from storage import Database

    async with await Database.open(database) as db:
        workers = await db.workers.list()
        now = await db.clock()
        stranded = await db.workers.stranded()
    if args.json:
        for worker in workers:
            print(json.dumps(dataclasses.asdict(worker)))
    else:
        print(fleet_table(workers, now, limit=1_000_000))
        for line in stranded_lines(stranded):
            print(line)
    return 0
