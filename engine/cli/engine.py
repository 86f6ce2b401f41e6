"""`disco engine`: the engine process — claim jobs from the database and render them."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from disco.config import ConfigError, data_dir, database_path, load_config
from engine.errors import EngineError


def add_engine_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("engine", help="run the engine process (claims and renders queued jobs)",
                            description="Render queued jobs, keeping the models resident.")
    p.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    p.add_argument("--data-dir", help="database and job files (default: DISCO_DATA_DIR or ./data)")
    p.add_argument("--config", help="TOML config file")
    p.add_argument("--models", help="model set (default from the config: dd-default)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--allow-download", action="store_true", default=None)
    p.add_argument("--lease-seconds", type=float)
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    p.add_argument("--owner", help="lease owner name (default engine:HOST:PID)")
    p.set_defaults(func=cmd_engine)


def cmd_engine(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
        settings = config["engine"]
        for key in ("models", "device", "precision", "allow_download", "lease_seconds", "checkpoint_every"):
            value = getattr(args, key)
            if value is not None:
                settings["model_set" if key == "models" else key] = value
        return asyncio.run(_run(args, config))
    except (ConfigError, EngineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, config: dict) -> int:
    from engine.jobs.worker import EngineWorker, WorkerConfig
    from engine.models.pool import ModelPool, resolve_device
    from storage import Database, StorageError

    settings = config["engine"]
    folder = data_dir(args.data_dir, config)
    pool = ModelPool(settings["model_set"], resolve_device(settings["device"]),
                     allow_download=settings["allow_download"], precision=settings["precision"])
    worker_config = WorkerConfig(lease_seconds=settings["lease_seconds"],
                                 heartbeat_seconds=settings["heartbeat_seconds"],
                                 checkpoint_every=settings["checkpoint_every"])
    try:
        db = await Database.open(database_path(folder))
    except StorageError as exc:
        raise EngineError(str(exc)) from None
    try:
        worker = EngineWorker(db, pool, folder, owner=args.owner, config=worker_config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        done = await worker.run(burst=args.burst)
        logging.getLogger("disco.engine").info("processed %d job(s)", done)
    finally:
        await db.close()
    return 0
