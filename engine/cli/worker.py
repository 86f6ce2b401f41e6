"""`disco worker`: the engine loop on any host, given a database URL and a model cache.

    DISCO_DATABASE_URL='postgresql://disco@db.lan/disco?sslmode=verify-full' \
        disco worker --device cuda:1 --models dd-default
    PGPASSWORD=… disco worker --database 'postgresql://disco@db.lan/disco?sslmode=require'

It is `disco engine` (engine/cli/engine.py, the same flags and `[engine]` settings) plus what a
worker on another machine needs:
- the database from `--database URL` or `--database-file FILE`, else as every command finds it
  (DISCO_DATABASE_URL, DISCO_DATABASE_URL_FILE, `[storage] url`, the SQLite file in the data
  folder). A password never
  goes on the command line, which any user of the machine can read with `ps`: a `--database`
  URL holding one is refused, with where to put it instead. TLS is the URL's `sslmode`.
- what it accepts, registered in the fleet (`disco workers`): its model set, its GPU memory
  (`--memory-gb`, else `[engine] gpu_memory_gb`, else what the CUDA device reports; 0 on a
  CPU: no limit) and the largest image (`--max-pixels`, 0: any). It claims only jobs that fit.
- its own folders: `--data-dir` for job files (default as every command: ./data) and
  `--models-dir` for the model cache (default DISCO_MODELS_DIR, else ~/.cache/disco-discord).
A worker never needs the Discord token.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

from engine.cli.engine import add_engine_flags, engine_settings, pool_and_config
from engine.errors import EngineError, SpecError
from engine.media.files import read_user_file
from engine.models.download import MODELS_DIR_ENV
from engine.spec.options import bounded_float, bounded_int

URL_VARIABLE = "DISCO_DATABASE_URL"  # what storage.database_url reads first
SCHEMES = ("postgresql://", "postgres://", "sqlite:///")
_PASSWORD_PARAMETER = re.compile(r"(^|[?&\s])password\s*=", re.IGNORECASE)
PASSWORD_REFUSAL = ("--database holds a password, which any user of this machine can read with ps; "
                    f"put the URL in {URL_VARIABLE} or in a file given with --database-file, or the "
                    "password in PGPASSWORD or ~/.pgpass")


def add_worker_command(commands: argparse._SubParsersAction, config_options: argparse.ArgumentParser) -> None:
    p = commands.add_parser("worker", parents=[config_options],
                            help="run an engine on this host against a shared database",
                            description="Claim and render the queued jobs that fit this machine, "
                                        "from a database that may live on another host.")
    add_engine_flags(p)
    p.add_argument("--database", metavar="URL",
                   help="postgresql://USER@HOST/DBNAME[?sslmode=require] (no password: ps shows it)")
    p.add_argument("--database-file", metavar="FILE", help="a file holding the database URL")
    p.add_argument("--models-dir", metavar="DIR", help=f"model cache (default: {MODELS_DIR_ENV} "
                                                       f"or ~/.cache/disco-discord/models)")
    p.add_argument("--memory-gb", type=bounded_float(0, 10_000),  # as [engine] gpu_memory_gb: 22.5 is a size
                   help="GPU memory in GB it accepts jobs for (default: [engine] gpu_memory_gb, else the "
                        "device's; 0: any)")
    p.add_argument("--max-pixels", type=bounded_int(0, 100_000_000), default=0,
                   help="largest image (width × height) it accepts (default 0: any)")
    p.set_defaults(func=cmd_worker)


def cmd_worker(args: argparse.Namespace, config: dict[str, dict], data_dir: Path) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        url = chosen_database(args)
        if args.models_dir:
            os.environ[MODELS_DIR_ENV] = str(Path(args.models_dir).expanduser())
        return asyncio.run(_run(args, engine_settings(config["engine"], args), data_dir, url,
                                config["storage"].get("url", ""), config["storage"].get("blob_bytes")))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def chosen_database(args: argparse.Namespace) -> str | None:
    """The database URL given by a flag, checked (EngineError says what to fix); None: found as
    every command finds it (storage.database_url)."""
    if args.database and args.database_file:
        raise SpecError("give --database or --database-file, not both")
    if args.database:
        url = args.database.strip()
        if has_password(url):
            raise SpecError(PASSWORD_REFUSAL)
    elif args.database_file:
        url = read_user_file(args.database_file, what="--database-file", limit=4096).decode(
            "utf-8", errors="replace").strip()
    else:
        return None
    check_url(url)
    return url


def has_password(url: str) -> bool:
    """Whether a database URL carries a password (user:password@ or a password= parameter)."""
    try:
        in_userinfo = bool(urlsplit(url).password)
    except ValueError:
        in_userinfo = False
    return in_userinfo or bool(_PASSWORD_PARAMETER.search(url))


def check_url(url: str) -> None:
    """One line for a URL no backend takes (the password is never repeated back)."""
    if not url.startswith(SCHEMES):
        scheme = url.split("://", 1)[0][:20] if "://" in url else "none"
        raise SpecError(f"database URL scheme {scheme!r} is not supported; use "
                        f"postgresql://USER@HOST:PORT/DBNAME (TLS: ?sslmode=require) or sqlite:///PATH")
    if url.startswith("sqlite:///"):
        return
    try:
        urlsplit(url).port
    except ValueError:
        raise SpecError("the database URL's port is not a number from 1 to 65535; use "
                        "postgresql://USER@HOST:PORT/DBNAME") from None


def device_memory_gb(device: object) -> float:
    """What a CUDA device reports, in GB (the memory model's unit); 0 elsewhere (unknown)."""
    import torch

    if getattr(device, "type", "") != "cuda":
        return 0.0
    return torch.cuda.get_device_properties(device).total_memory / 1e9


async def _run(args: argparse.Namespace, settings: dict, data_dir: Path, url: str | None,
               configured_url: str, blob_bytes: int | None = None) -> int:
    from engine.jobs.start import open_queue

    async with await open_queue(data_dir, database=url, database_url=configured_url, burst=args.burst,
                                blob_bytes=blob_bytes) as db:
        # torch loads here, once the data folder and the database have answered
        pool, worker_config = pool_and_config(settings)
        from engine.jobs.worker import WorkerFit, serve

        memory = args.memory_gb if args.memory_gb is not None else (
            float(settings.get("gpu_memory_gb") or 0.0) or device_memory_gb(pool.device))
        fit = WorkerFit(model_sets=(pool.model_set,), memory_gb=float(memory), max_pixels=args.max_pixels)
        owner = args.owner or f"worker:{socket.gethostname()}:{pool.device}:{os.getpid()}"
        done = await serve(data_dir, pool, owner=owner, config=worker_config, burst=args.burst, fit=fit,
                           db=db)
    logging.getLogger("disco.engine").info("processed %d job(s)", done)
    return 0
