"""`disco stats`: the operator's usage statistics — per server (or one) and in total: jobs by
kind and outcome, GPU time per member, queue wait, render time, failures and retries.

Torch-free and Discord-free; it reads storage only (storage/stats.py) and formats with
commands/stats_text.py, as `/disco-admin stats` does. `disco` loads the config file and
resolves the data folder.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from commands.cli_jobs import DISCORD_ID
from engine.spec.options import bounded_int

# storage.stats's DEFAULT_DAYS and MAX_DAYS, not imported: `disco --help` loads no storage (the
# CLI test checks they agree).
DEFAULT_DAYS, MAX_DAYS = 7, 90


def add_stats_command(commands: argparse._SubParsersAction, config_options: argparse.ArgumentParser) -> None:
    p = commands.add_parser("stats", parents=[config_options],
                            help="usage statistics: jobs, GPU time per member, queue wait, failures",
                            description="Usage statistics over the last days, for every server and in "
                                        "total (or one server): jobs by kind and outcome, GPU time charged "
                                        "per member, queue wait and render time (median, 90th percentile), "
                                        "failures by error code, retries and the costliest settings.")
    p.add_argument("--guild", type=DISCORD_ID, help="only this Discord server (its id)")
    p.add_argument("--days", type=bounded_int(1, MAX_DAYS), default=DEFAULT_DAYS,
                   help=f"how many days back (1-{MAX_DAYS}; default {DEFAULT_DAYS})")
    p.add_argument("--json", action="store_true", help="one JSON object: each server's figures and the totals")
    p.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace, config: dict[str, dict], data_dir: Path) -> int:
    from storage import StorageError, database_url

    try:
        return asyncio.run(_show(args, database_url(data_dir, config["storage"].get("url"))))
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


async def _show(args: argparse.Namespace, database: str) -> int:
    from commands.stats_text import report_json, report_text
    from storage import Database

    async with await Database.open(database) as db:
        report = await db.stats.report(args.days, args.guild)
    print(json.dumps(report_json(report)) if args.json else report_text(report))
    return 0
