"""`disco db backup` on the command line (commands/cli_db.py): the install's database found as
every `disco db` command finds it, what the backup prints (rows, job files, bytes, seconds, the
two ways to restore), `--keep`, a backup of either backend killed with SIGKILL at the worst
moments (nothing left looks good, the next one succeeds and says what it removed), and the
refusals: each names the
rule and the fix, fails at once, and leaves no backup folder behind."""
from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from disco.cli import main
from storage import Database
from storage.backup import LOCK_FILE, MAX_KEEP, backups_in
from storage.snapshot_files import PIN_PREFIX
from tests.storage.test_backup import assert_job_files_whole, backup_store, dump, populate
from tests.support import REPO_ROOT
from tests.support.storage import FakeClock, Store, sqlite_store


@pytest.fixture
def install(tmp_path, monkeypatch) -> Path:
    return made_install(tmp_path, monkeypatch)


def made_install(tmp_path: Path, monkeypatch) -> Path:
    """A SQLite install's data folder, with work in every state; the environment names no other
    database."""
    for name in ("DISCO_DATABASE_URL", "DISCO_DATABASE_URL_FILE", "DISCO_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"

    async def made() -> None:
        async with await Database.open(data / "disco.db", now=FakeClock()) as db:
            await populate(db)
    asyncio.run(made())
    return data


def backup(*args: str) -> int:
    return main(["db", "backup", *args])


def test_the_backup_lands_in_the_data_folder_and_says_how_to_restore(install, capsys):
    assert backup("--data-dir", str(install)) == 0
    out = capsys.readouterr().out
    [made] = backups_in(install / "backups")
    assert f"backed up {install / 'disco.db'}" in out
    assert "jobs: 7 row(s)" in out and "user_settings: 2 row(s)" in out and "job files: 4 blob(s)" in out
    assert f"verified: {made}" in out and " MiB: disco.db and blobs/) in " in out
    assert f"disco db restore {made}" in out and "stop the bot and every engine" in out
    assert "move the install's disco.db (with its -wal and -shm files) and blobs/ aside" in out
    assert f"disco db migrate --from sqlite:///{made / 'disco.db'} --to" in out
    assert dump(backup_store(made)) == dump(sqlite_store(install / "disco.db"))


def test_the_database_is_the_one_the_config_or_the_environment_names(install, tmp_path, capsys, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    config = tmp_path / "disco.toml"
    config.write_text(f'[storage]\nurl = "sqlite:///{install / "disco.db"}"\n')
    assert backup("--config", str(config), "--data-dir", str(elsewhere), "--to", str(tmp_path / "b1")) == 0
    assert "jobs: 7 row(s)" in capsys.readouterr().out
    monkeypatch.setenv("DISCO_DATABASE_URL", f"sqlite:///{install / 'disco.db'}")
    assert backup("--data-dir", str(elsewhere), "--to", str(tmp_path / "b2")) == 0
    assert "jobs: 7 row(s)" in capsys.readouterr().out
    assert not (elsewhere / "disco.db").exists()


def test_keep_removes_all_but_the_newest_and_is_bounded(install, tmp_path, capsys):
    into = tmp_path / "backups"
    for _ in range(3):
        assert backup("--data-dir", str(install), "--to", str(into), "--keep", "2") == 0
    out = capsys.readouterr().out
    kept = backups_in(into)
    assert len(kept) == 2 and "removed 1 older backup(s) (--keep 2)" in out
    assert kept[-1].name in out.rsplit("verified: ", 1)[1]  # the one just made is among them
    for bad in ("0", str(MAX_KEEP + 1)):
        assert backup("--data-dir", str(install), "--to", str(into), "--keep", bad) == 2
        assert f"keep 1 to {MAX_KEEP} of the newest backups (rule: backup_keep)" in capsys.readouterr().err
    assert backups_in(into) == kept


def test_the_limit_in_the_help_is_storage_s():
    from commands import cli_db
    assert cli_db.MAX_KEEP == MAX_KEEP


def test_disco_db_help_lists_backup(capsys):
    with pytest.raises(SystemExit):
        main(["db", "--help"])
    assert "backup" in capsys.readouterr().out


def test_refusals_name_the_rule_and_the_fix(install, tmp_path, capsys, monkeypatch):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (["--to", str(a_file)], "is a file, not a folder; name a folder for the backups"),
        (["--to", str(a_file / "under")], "cannot make the backup folder"),
        (["--to", "/sys/disco-backups"], "cannot make the backup folder /sys/disco-backups"),
    ]
    for args, error in cases:
        assert backup("--data-dir", str(install), *args) == 2
        err = capsys.readouterr().err
        assert error in err and ("--to DIR" in err or "name a folder" in err)
    # No database where the install should be: refused, and none is created there.
    assert backup("--data-dir", str(tmp_path / "empty")) == 2
    assert "there is no database at" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "disco.db").exists()


def test_an_unreachable_database_fails_at_once(install, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DISCO_DATABASE_URL", "postgresql://disco@127.0.0.1:1/disco")
    started = time.monotonic()
    assert backup("--data-dir", str(install), "--to", str(tmp_path / "b")) == 2
    assert time.monotonic() - started < 15
    assert "not reachable" in capsys.readouterr().err
    assert backups_in(tmp_path / "b") == []


def test_a_full_disk_is_refused_before_and_during_the_copy(install, tmp_path, capsys, monkeypatch):
    import shutil

    import storage.backup
    from storage.blobs import Blobs
    into = tmp_path / "b"
    real_usage = shutil.disk_usage
    monkeypatch.setattr(storage.backup.shutil, "disk_usage",
                        lambda path: real_usage(path)._replace(free=1024 * 1024))
    assert backup("--data-dir", str(install), "--to", str(into)) == 2
    assert "needs at least 2.0 MiB for the job files" in capsys.readouterr().err
    monkeypatch.setattr(storage.backup.shutil, "disk_usage", real_usage)

    def full(self, sha, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(Blobs, "_write_file", full)
    assert backup("--data-dir", str(install), "--to", str(into)) == 2
    err = capsys.readouterr().err
    assert f"the disk holding {into} is full" in err and "partial backup was removed" in err
    assert "--keep N" in err and "another disk with --to DIR" in err
    assert [p.name for p in into.iterdir()] == [LOCK_FILE]


def test_a_second_backup_into_the_same_folder_is_refused_while_one_runs(install, tmp_path, capsys):
    into = tmp_path / "b"
    into.mkdir()
    with open(into / LOCK_FILE, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert backup("--data-dir", str(install), "--to", str(into)) == 2
        assert "another `disco db backup` is writing into" in capsys.readouterr().err
    assert backup("--data-dir", str(install), "--to", str(into)) == 0


@pytest.mark.parametrize("moment", ["files", "rename"])
def test_a_backup_killed_part_way_never_looks_good_and_the_next_one_succeeds(store: Store, tmp_path, capsys,
                                                                            monkeypatch, moment):
    """SIGKILL while the job files are being copied (on SQLite the source's pin folder exists)
    and when everything is verified but not yet renamed: no folder has a backup's good name,
    and the next backup removes the leftovers, says so, and succeeds."""
    for name in ("DISCO_DATABASE_URL", "DISCO_DATABASE_URL_FILE", "DISCO_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    data = Path(store.url).parent if store.kind == "sqlite" else tmp_path / "data"
    if store.kind == "postgresql":
        monkeypatch.setenv("DISCO_DATABASE_URL", store.url)  # the child inherits it

    async def made() -> None:
        async with await store.open() as db:
            await populate(db)
    asyncio.run(made())
    into = tmp_path / "b"
    child = subprocess.Popen([sys.executable, "-m", "tests.support.backup_child", moment, str(data), str(into)],
                             cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line == f"at {moment}\n", child.stderr.read()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    [partial] = into.glob("disco-backup-*")
    assert partial.name.endswith(".partial") and backups_in(into) == []
    if moment == "files" and store.kind == "sqlite":
        assert list((data / "blobs").glob(f"{PIN_PREFIX}*"))  # what the killed copy held
    assert backup("--data-dir", str(data), "--to", str(into)) == 0
    out = capsys.readouterr().out
    assert f"removed {partial.name}: a backup stopped part-way left it (never a good backup)" in out
    [made_now] = backups_in(into)
    # The way back fits the install: `disco db restore` only for a SQLite one.
    assert f"disco db migrate --from sqlite:///{made_now / 'disco.db'} --to" in out
    assert (f"disco db restore {made_now}" in out) == (store.kind == "sqlite")
    assert [p.name for p in into.glob("disco-backup-*")] == [made_now.name]
    if store.kind == "sqlite":
        assert not list((data / "blobs").glob(f"{PIN_PREFIX}*"))
    assert dump(backup_store(made_now)) == dump(store)
    assert_job_files_whole(made_now)
