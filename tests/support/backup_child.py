"""A `disco db backup` that stops at a chosen moment, for the kill tests (tests/commands/
test_cli_db_backup.py):

    python -m tests.support.backup_child MOMENT DATA_DIR DIR

MOMENT is `files` (the first job file is in the backup, the rest not yet: the source's pin
folder and the partial folder both exist) or `rename` (every count verified, the partial folder
about to take its good name). The child prints "at MOMENT" and waits there to be killed.
"""
from __future__ import annotations

import sys
import time

import storage.backup
from disco.cli import main
from storage.snapshot_files import SnapshotFiles


def stop_here(moment: str) -> None:
    print(f"at {moment}", flush=True)
    time.sleep(600)  # the test kills the process long before this ends


def stop_at(moment: str) -> None:
    if moment == "files":
        real_read, reads = SnapshotFiles.read, []

        async def read(self: SnapshotFiles, sha: str) -> bytes:
            reads.append(sha)
            if len(reads) == 2:
                stop_here(moment)
            return await real_read(self, sha)
        SnapshotFiles.read = read  # type: ignore[method-assign]
    elif moment == "rename":
        storage.backup._publish = lambda partial, final: stop_here(moment)
    else:
        raise SystemExit(f"unknown moment {moment!r}: files or rename")


if __name__ == "__main__":
    moment, data_dir, into = sys.argv[1:4]
    stop_at(moment)
    raise SystemExit(main(["db", "backup", "--data-dir", data_dir, "--to", into]))
