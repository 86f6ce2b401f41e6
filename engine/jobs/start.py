"""What an engine process does before it loads a model: check its data folder, open the queue.

Torch-free and first, so that a folder it cannot write, a wrong database URL or password, or a
damaged database file is one line within a second of `disco engine` or `disco worker`, not after
torch and the models have loaded. engine/jobs/worker.py then serves the open queue.
"""
from __future__ import annotations

import logging
from pathlib import Path

from engine.errors import EngineError
from engine.jobs.scratch import check_scratch, clear_stale_scratch
from storage import Database, StorageError, database_url as resolve_database_url

log = logging.getLogger("disco.engine")


async def open_queue(data_dir: Path, *, database: str | None = None, database_url: str = "",
                     burst: bool = False, blob_bytes: int | None = None) -> Database:
    """The engine's database (`database` as given, else DISCO_DATABASE_URL, else `database_url`,
    else the SQLite file in `data_dir`), opened after this process's scratch folder is checked.
    A PostgreSQL server that is down is waited for, except with `burst`. `blob_bytes`:
    `[storage] blob_bytes`, the largest job file kept. Refusals are EngineErrors."""
    check_scratch(data_dir)  # before the database: a worker that cannot write claims nothing
    try:
        db = await Database.open(database or resolve_database_url(data_dir, database_url),
                                 wait_s=0.0 if burst else float("inf"))
    except StorageError as exc:  # a locked, damaged or foreign file: the CLI prints one line
        raise EngineError(str(exc)) from None
    if blob_bytes is not None:
        db.blobs.max_bytes = blob_bytes
    for folder in clear_stale_scratch(data_dir):
        log.info("removed %s, the scratch folder of an engine that is gone", folder)
    return db
