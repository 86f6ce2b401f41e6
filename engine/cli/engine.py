"""`disco engine`: the engine process — claim jobs from the database and render them.

`disco` loads the config file and resolves the data folder once; this command is handed both and
lays its own flags over the `[engine]` section (flags > file > defaults), so the engine never
reads the file itself.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from pathlib import Path

from engine.errors import EngineError
from engine.models.devices import PRECISIONS
from engine.models.registry import check_model_set
from engine.spec.options import bounded_float, bounded_int

# The [engine] keys a flag may override, by the flag's argparse dest.
FLAG_KEYS = {"models": "model_set", "device": "device", "precision": "precision",
             "allow_download": "allow_download", "lease_seconds": "lease_seconds",
             "checkpoint_every": "checkpoint_every"}


def add_engine_command(commands: argparse._SubParsersAction, config_options: argparse.ArgumentParser) -> None:
    """`config_options`: the entry's `--config` / `--data-dir` parent parser. The bot's supervisor
    spawns `disco engine --data-dir D --owner O --parent-pid P --models ... [--config F]`: keep
    these spellings."""
    p = commands.add_parser("engine", parents=[config_options],
                            help="run the engine process (claims and renders queued jobs)",
                            description="Render queued jobs, keeping the models resident.")
    add_engine_flags(p)
    p.add_argument("--parent-pid", type=bounded_int(1, 2**22),
                   help="stop (handing back the running job) once this process is no longer the parent")
    p.set_defaults(func=cmd_engine)


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    """The flags `disco engine` and `disco worker` share (their dests are FLAG_KEYS' keys)."""
    p.add_argument("--burst", action="store_true", help="drain the queue, then exit")
    p.add_argument("--models", help="model set (default from the config: dd-default)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=PRECISIONS, help="default from the config: auto (fp16 on CUDA, fp32 on CPU)")
    p.add_argument("--allow-download", action="store_true", default=None,
                   help="download missing model files (otherwise a missing file fails the job)")
    p.add_argument("--lease-seconds", type=bounded_float(1, 3600),
                   help="how long a claimed job stays this engine's without a heartbeat (1-3600; default "
                        "from the config: 30); the heartbeat comes at least three times a lease")
    p.add_argument("--checkpoint-every", type=bounded_int(1, 100_000),
                   help="steps between checkpoints (default from the config: 10)")
    p.add_argument("--owner", help="lease owner name (default engine:HOST:PID)")


def cmd_engine(args: argparse.Namespace, config: dict[str, dict], data_dir: Path) -> int:
    """`config`: the config file's sections as `disco` loaded them; `data_dir`: the folder it resolved."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return asyncio.run(_run(args, engine_settings(config["engine"], args), data_dir,
                                config["storage"].get("url", ""), config["storage"].get("blob_bytes")))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        # torch's modules make the interpreter's last garbage collection take seconds, which a
        # stopping engine spends after it left the fleet (the supervisor waits for it): the
        # objects alive now are left to the exit instead.
        gc.freeze()


def engine_settings(section: dict, args: argparse.Namespace) -> dict:
    """The `[engine]` section with the flags that were given laid over it (a copy), its model
    set checked (ModelError), before the database is opened and torch loads."""
    flags = {key: getattr(args, dest) for dest, key in FLAG_KEYS.items() if getattr(args, dest) is not None}
    settings = {**section, **flags}
    if "lease_seconds" in flags:  # a short lease on the command line: the config's heartbeat follows
        settings["heartbeat_seconds"] = min(settings["heartbeat_seconds"], flags["lease_seconds"] / 3)
    check_model_set(settings["model_set"])
    return settings


def pool_and_config(settings: dict):
    """The model pool and the worker's timings an engine process runs with (imports torch).
    A host with none of its model set's default files in the cache (and downloads off) is one
    not set up yet: ModelError, since it would fail every job it claimed (for good: a missing
    file is no retry). Some missing (an install that fetched only the CLIP models its servers
    allow) is a warning."""
    from engine.errors import ModelError
    from engine.jobs.worker import WorkerConfig
    from engine.models.download import models_dir
    from engine.models.pool import ModelPool, resolve_device
    from engine.models.registry import model_set_members

    pool = ModelPool(settings["model_set"], resolve_device(settings["device"]),
                     allow_download=settings["allow_download"], precision=settings["precision"])
    missing = [] if pool.allow_download else missing_models(pool.model_set)
    if missing and len(missing) == len(model_set_members(pool.model_set)):
        raise ModelError(f"model set {pool.model_set}: none of its default files are in {models_dir()} "
                         f"({', '.join(missing)}), so every job would fail here; run `disco models "
                         f"download --set {pool.model_set}` on this host first (or start with "
                         f"--allow-download)")
    if missing:
        warn_missing_models(pool.model_set, missing)
    return pool, WorkerConfig(lease_seconds=settings["lease_seconds"],
                              heartbeat_seconds=settings["heartbeat_seconds"],
                              checkpoint_every=settings["checkpoint_every"])


def missing_models(model_set: str) -> list[str]:
    """The model set's default files that are not in the cache."""
    from engine.models.download import model_path
    from engine.models.registry import get_model, model_set_members

    return [name for name in model_set_members(model_set) if not model_path(get_model(name)).is_file()]


def warn_missing_models(model_set: str, missing: list[str] | None = None) -> list[str]:
    """Log which of the model set's default files are not in the cache (a job that needs one
    fails), with the command that fetches them; the names missing."""
    from engine.models.download import models_dir

    missing = missing_models(model_set) if missing is None else missing
    if missing:
        logging.getLogger("disco.engine").warning(
            "model set %s: %d of its default files are not in %s (%s); the jobs that need them will "
            "fail — run `disco models download --set %s` first", model_set, len(missing),
            models_dir(), ", ".join(missing), model_set)
    return missing


async def _run(args: argparse.Namespace, settings: dict, data_dir: Path, database_url: str = "",
               blob_bytes: int | None = None) -> int:
    from engine.jobs.start import open_queue

    async with await open_queue(data_dir, database_url=database_url, burst=args.burst,
                                blob_bytes=blob_bytes) as db:
        # torch loads here, once the data folder and the database have answered
        pool, worker_config = pool_and_config(settings)
        from engine.jobs.worker import serve

        done = await serve(data_dir, pool, owner=args.owner, config=worker_config, burst=args.burst,
                           parent_pid=args.parent_pid, db=db)
    logging.getLogger("disco.engine").info("processed %d job(s)", done)
    return 0
