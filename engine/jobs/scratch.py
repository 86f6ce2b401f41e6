"""This engine process's scratch folder, `<data>/scratch/<host>-<pid>/`: one sub-folder per job
it holds (engine/jobs/files.py fills them), checked at start and swept of the folders of this
host's engine processes that are gone.

Torch-free: an engine checks its data folder and opens its database before it loads any model
(engine/jobs/start.py).
"""
from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path

from engine.errors import EngineError
from engine.media.files import atomic_write_bytes

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _process_name() -> str:
    """`<host>-<pid>`: a data folder shared by several hosts (an NFS home, one volume mounted
    into two containers) holds each engine's folder under a name no other host's takes."""
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', socket.gethostname())[:64]}-{os.getpid()}"


def scratch_dir(data_dir: Path, job_id: str) -> Path:
    """This process's folder for one job; job ids are checked so none can point elsewhere."""
    if not _JOB_ID.match(job_id):
        raise EngineError(f"job id {job_id!r} is not a valid folder name")
    return Path(data_dir) / "scratch" / _process_name() / job_id


def check_scratch(data_dir: Path) -> None:
    """Make this process's scratch folder and write to it once, at start: an engine that
    cannot would fail every job it claims (EngineError naming the fix instead)."""
    folder = Path(data_dir) / "scratch" / _process_name()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / ".writable", b"")
        (folder / ".writable").unlink()
    except OSError as exc:
        raise EngineError(f"cannot write the data folder {data_dir} ({exc.strerror}); point --data-dir at "
                          f"a folder this user can write (it holds this engine's scratch files)") from None


def clear_stale_scratch(data_dir: Path) -> list[Path]:
    """Remove the scratch folders of this host's engine processes that are gone (killed
    mid-job: their work is in blobs), never another host's: its process ids mean nothing here.
    A folder named by a bare pid was made before folders named their host. Returns what was
    removed."""
    host = _process_name().rsplit("-", 1)[0]
    removed = []
    for folder in (Path(data_dir) / "scratch").glob("*"):
        name = folder.name
        pid = name if name.isdigit() else name[len(host) + 1:] if name.startswith(f"{host}-") else ""
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
