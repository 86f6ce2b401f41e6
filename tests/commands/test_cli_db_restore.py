"""`disco db restore BACKUP` (storage/restore.py, commands/cli_db.py): a backup put back as the
install's SQLite database, row for row and job file for job file, the backup itself unchanged;
the refusals (a database or job files still in place, a folder that is no backup, a PostgreSQL
install) name the rule and the fix and write nothing. And `--keep` never removes the backup
folder an install runs from."""
from __future__ import annotations

import asyncio
import shutil

import pytest

from disco.cli import main
from storage import Database
from storage.backup import back_up, backups_in
from tests.commands import test_cli_db_backup
from tests.storage.test_backup import assert_job_files_whole, backup_store, dump
from tests.support.storage import sqlite_store

install = test_cli_db_backup.install  # the fixture: a SQLite install with work in every state


def made_backup(install, tmp_path):
    assert main(["db", "backup", "--data-dir", str(install), "--to", str(tmp_path / "backups")]) == 0
    return backups_in(tmp_path / "backups")[-1]


def moved_aside(install, tmp_path):
    aside = tmp_path / "aside"
    aside.mkdir()
    for name in ("disco.db", "disco.db-wal", "disco.db-shm", "blobs"):
        if (install / name).exists():
            shutil.move(install / name, aside / name)
    return aside


def test_a_backup_is_restored_into_the_data_folder_and_left_as_it_was(install, tmp_path, capsys):
    backup = made_backup(install, tmp_path)
    before = dump(backup_store(backup))
    capsys.readouterr()
    moved_aside(install, tmp_path)
    assert main(["db", "restore", "--data-dir", str(install), str(backup)]) == 0
    out = capsys.readouterr().out
    assert f"restored {backup} into {install / 'disco.db'}" in out and "posted again (twice in all)" in out
    assert dump(sqlite_store(install / "disco.db")) == before == dump(backup_store(backup))
    assert_job_files_whole(install)
    assert not list(install.glob("*.restoring"))


def test_restore_refuses_an_install_still_in_place_and_writes_nothing(install, tmp_path, capsys):
    backup = made_backup(install, tmp_path)
    capsys.readouterr()
    before = dump(sqlite_store(install / "disco.db"))
    assert main(["db", "restore", "--data-dir", str(install), str(backup)]) == 2
    err = capsys.readouterr().err
    assert "still holds an install (disco.db" in err and "stop the bot and every engine, move those aside" in err
    assert dump(sqlite_store(install / "disco.db")) == before
    # The write-ahead log alone is enough to refuse: replayed onto another database it corrupts it.
    aside = moved_aside(install, tmp_path)
    (install / "disco.db-wal").write_bytes(b"x")
    assert main(["db", "restore", "--data-dir", str(install), str(backup)]) == 2
    assert "(disco.db-wal)" in capsys.readouterr().err
    assert not (install / "disco.db").exists() and (aside / "disco.db").exists()


def test_restore_refuses_what_is_no_backup_and_a_postgresql_install(install, tmp_path, capsys, monkeypatch):
    backup = made_backup(install, tmp_path)
    moved_aside(install, tmp_path)
    capsys.readouterr()
    partial = backup.with_name(backup.name + ".partial")
    shutil.copytree(backup, partial)
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, error in ((partial, "stopped part-way (never a good one)"), (empty, "holds no disco.db")):
        assert main(["db", "restore", "--data-dir", str(install), str(folder)]) == 2
        assert error in capsys.readouterr().err
    (backup / "disco.db-wal").write_bytes(b"")  # an install runs from it: disco.db alone is not all
    assert main(["db", "restore", "--data-dir", str(install), str(backup)]) == 2
    assert "is in use as a database (its disco.db-wal is there)" in capsys.readouterr().err
    (backup / "disco.db-wal").unlink()
    monkeypatch.setenv("DISCO_DATABASE_URL", "postgresql://disco@db.example.org/disco")
    assert main(["db", "restore", "--data-dir", str(install), str(backup)]) == 2
    assert f"disco db migrate --from sqlite:///{backup}/disco.db --to URL" in capsys.readouterr().err
    assert not (install / "disco.db").exists()


@pytest.mark.parametrize("keep", [1, 2])
def test_keep_never_removes_the_backup_an_install_runs_from(install, tmp_path, keep):
    """The README once said to point [storage] url at a backup: a scheduled backup with
    backup_keep into the same folder must not delete that live database."""
    into = tmp_path / "backups"
    live = made_backup(install, tmp_path)

    async def back_up_the_restored_install():
        async with await Database.open(live / "disco.db") as db:
            return [await back_up(db, into, keep=keep) for _ in range(3)]
    made = asyncio.run(back_up_the_restored_install())
    assert live.is_dir() and (live / "disco.db").is_file()
    assert live not in [path for backup in made for path in backup.removed]
    assert backups_in(into) == sorted([live, *[b.folder for b in made][-keep:]])
