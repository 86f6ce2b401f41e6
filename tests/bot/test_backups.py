"""Scheduled backups (bot/backups.py): the schedule reads the backups already made, each backup
is a real `disco db backup` child of the bot's database that keeps the newest `backup_keep`, a
failure is logged with its reason and fix and the schedule goes on, a stopping bot stops the
backup under way (the next one removes what it left), and the config keys are read and bounded."""
from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import pytest

from bot.backups import back_up_once, backup_command, due_in, run_backups
from bot.config import BotConfig
from disco.config import ConfigError, load_config
from storage.backup import PARTIAL, backups_in, newest_backup_time
from tests.commands.test_cli_db_backup import made_install
from tests.storage.test_backup import backup_store, dump
from tests.support.storage import sqlite_store


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    return made_install(tmp_path, monkeypatch)


def test_the_next_backup_is_due_an_interval_after_the_newest_one(tmp_path):
    folder = tmp_path / "backups"
    assert due_in(folder, 3600.0, 1_000_000.0) == 0.0  # no folder yet: at once
    folder.mkdir()
    (folder / "disco-backup-20261208T010000Z.partial").mkdir()  # never a good one
    (folder / "notes.txt").write_text("mine")
    assert due_in(folder, 3600.0, 1_000_000.0) == 0.0
    (folder / "disco-backup-20261208T010000Z").mkdir()
    (folder / "disco-backup-20261207T010000Z").mkdir()
    newest = newest_backup_time(folder)
    assert newest == 1_796_691_600.0  # 2026-12-08 01:00:00 UTC
    assert due_in(folder, 3600.0, newest + 600.0) == 3000.0
    assert due_in(folder, 3600.0, newest + 7200.0) == 0.0  # overdue (the bot was down): at once


def test_the_backup_child_gets_the_bots_data_folder_config_and_keep(tmp_path):
    config = BotConfig(data_dir=tmp_path / "data", backup_keep=3, config_path=tmp_path / "config.toml")
    args = backup_command(config)
    assert args[1:5] == ["-m", "disco", "db", "backup"]
    assert args[args.index("--to") + 1] == str(tmp_path / "data" / "backups")
    assert args[args.index("--keep") + 1] == "3" and args[-2:] == ["--config", str(tmp_path / "config.toml")]


def test_scheduled_backups_copy_the_database_and_keep_the_newest(data, caplog):
    caplog.set_level(logging.INFO, "disco.bot.backups")
    config = BotConfig(data_dir=data, backup_every_hours=0.1 / 3600.0, backup_keep=2)
    made = lambda: [r for r in caplog.records if r.getMessage().startswith("scheduled backup verified: ")]  # noqa: E731

    async def three_backups() -> None:
        task = asyncio.create_task(run_backups(config))
        try:
            for _ in range(600):
                if len(made()) >= 3:
                    break
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    asyncio.run(three_backups())
    assert len(made()) >= 3, [r.getMessage() for r in caplog.records]
    kept = backups_in(data / "backups")
    assert len(kept) == 2 and not list((data / "backups").glob(f"*{PARTIAL}"))
    assert any("removed 1 older backup(s)" in r.getMessage() for r in caplog.records)
    assert dump(backup_store(kept[-1])) == dump(sqlite_store(data / "disco.db"))


def test_a_failed_backup_is_logged_with_its_reason_and_the_schedule_goes_on(data, caplog):
    (data / "in-the-way").write_text("a file where the backups should go")
    config = BotConfig(data_dir=data, backup_every_hours=24.0, backup_dir=str(data / "in-the-way"))
    assert asyncio.run(back_up_once(config)) is False
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "scheduled backup into" in warning and "is a file, not a folder" in warning, warning
    assert "next try in 1.0 h" in warning and "`disco db backup` runs one now" in warning


def test_a_stopping_bot_stops_the_backup_and_the_next_one_cleans_up(data, monkeypatch):
    # The child waits once its copy is written, before the counts are checked: a backup under way.
    (data.parent / "slow_backup.py").write_text(
        "import time, storage.backup\n"
        "real = storage.backup.verify\n"
        "storage.backup.verify = lambda copied: (time.sleep(60), real(copied))[1]\n")
    monkeypatch.setenv("PYTHONPATH", str(data.parent))
    config = BotConfig(data_dir=data, backup_every_hours=24.0)
    disco_args = backup_command(config)[3:]
    monkeypatch.setattr("bot.backups.backup_command", lambda c: [
        sys.executable, "-c", "import runpy, sys, slow_backup; sys.argv = ['disco'] + "
        f"{disco_args!r}; runpy.run_module('disco', run_name='__main__')"])

    async def stopped() -> None:
        task = asyncio.create_task(back_up_once(config))
        for _ in range(300):
            if list((data / "backups").glob(f"*{PARTIAL}/disco.db")):
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(stopped())
    assert list((data / "backups").glob(f"*{PARTIAL}")) and not backups_in(data / "backups")
    monkeypatch.setattr("bot.backups.backup_command", backup_command)
    assert asyncio.run(back_up_once(BotConfig(data_dir=data, backup_every_hours=24.0))) is True
    assert len(backups_in(data / "backups")) == 1 and not list((data / "backups").glob(f"*{PARTIAL}"))


@pytest.mark.parametrize("line, error", [
    ("backup_every_hours = -1.0", "backup_every_hours = -1.0 is out of range; use 0 to 8760"),
    ("backup_keep = 0", "backup_keep = 0 is out of range; use 1 to 1000"),
    ('backup_keep = "7"', "backup_keep must be a whole number"),
])
def test_the_backup_keys_are_bounded(tmp_path, line, error):
    path = tmp_path / "config.toml"
    path.write_text(f"[storage]\n{line}\n")
    with pytest.raises(ConfigError, match=error):
        load_config(path)


def test_the_backup_keys_reach_the_bot(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[storage]\nbackup_every_hours = 12\nbackup_keep = 3\nbackup_dir = "/mnt/other-disk/disco"\n')
    config = BotConfig.from_sections(load_config(path), tmp_path / "data")
    assert (config.backup_every_hours, config.backup_keep) == (12.0, 3)
    assert config.backup_folder == Path("/mnt/other-disk/disco")
    assert BotConfig(data_dir=tmp_path).backup_folder == tmp_path / "backups"
