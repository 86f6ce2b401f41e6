"""Scheduled backups: with `[storage] backup_every_hours` set, the bot runs `disco db backup`
(storage/backup.py) that often, keeping the newest `backup_keep` in `backup_dir`.

Each backup is a child process, like the engine: its snapshot holds a database connection for
as long as the copy takes (minutes for many job files), which the bot's own pool should not
lend, and a backup that fails or is killed leaves the bot as it was (a partial folder, which
the next backup removes). The schedule reads the backups already in the folder, so a restart
neither skips one nor makes one early: the next is due `backup_every_hours` after the newest.
A failed backup is logged with its reason and tried again after `RETRY_S` (or the interval,
if shorter).
"""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable

from bot.config import BotConfig
from storage.backup import newest_backup_time

log = logging.getLogger("disco.bot.backups")

RETRY_S = 3600.0
STOP_GRACE_S = 10.0  # a backup told to stop (the bot is stopping) is killed after this


def backup_command(config: BotConfig) -> list[str]:
    """`disco db backup` of the bot's own database, into its backup folder."""
    args = [sys.executable, "-m", "disco", "db", "backup", "--data-dir", str(config.data_dir),
            "--to", str(config.backup_folder), "--keep", str(config.backup_keep)]
    return args + (["--config", str(config.config_path)] if config.config_path else [])


def due_in(folder: Path, every_s: float, now: float) -> float:
    """Seconds until the next backup: `every_s` after the newest in `folder`, 0 when none is."""
    newest = newest_backup_time(folder)
    return 0.0 if newest is None else max(0.0, newest + every_s - now)


async def run_backups(config: BotConfig, *, clock: Callable[[], float] = time.time) -> None:
    """Back up every `config.backup_every_hours`, until cancelled."""
    every_s = config.backup_every_hours * 3600.0
    while True:
        await asyncio.sleep(due_in(config.backup_folder, every_s, clock()))
        if not await back_up_once(config):
            await asyncio.sleep(min(RETRY_S, every_s))


async def back_up_once(config: BotConfig) -> bool:
    """One backup in a child process; its outcome logged. True when it succeeded."""
    process = await asyncio.create_subprocess_exec(
        *backup_command(config), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=dict(os.environ))
    try:
        out, err = await process.communicate()
    except asyncio.CancelledError:  # the bot is stopping: so does the backup
        await _stop(process)
        raise
    lines = out.decode(errors="replace").splitlines()
    if process.returncode == 0:
        done = next((line for line in lines if line.startswith("verified: ")), "done")
        log.info("scheduled backup %s", done)
        for line in lines:
            if line.startswith("removed "):
                log.info("scheduled backup: %s", line)
        return True
    why = (err.decode(errors="replace").strip().splitlines() or [f"exit status {process.returncode}"])[-1]
    log.warning("scheduled backup into %s failed: %s; next try in %.1f h (`disco db backup` runs one now)",
                config.backup_folder, why, min(RETRY_S, config.backup_every_hours * 3600.0) / 3600.0)
    return False


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), STOP_GRACE_S)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
