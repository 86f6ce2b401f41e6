"""The optional TOML config file shared by every `disco` process, and the data folder.

    [storage]
    data_dir = "data"            # also DISCO_DATA_DIR or --data-dir
    url = ""                     # "" = sqlite:///<data_dir>/disco.db; or postgresql://USER@HOST/DB
                                 # (DISCO_DATABASE_URL overrides it; passwords: PGPASSWORD, ~/.pgpass)
    blob_bytes = 536870912       # the largest job file kept (an upload, a checkpoint, an MP4): 512 MiB
    retention_days = 30.0        # a delivered job's files are deleted this long after it finished
    backup_every_hours = 0.0     # the bot runs `disco db backup` this often (0 = never)
    backup_keep = 7              # … keeping the newest this many
    backup_dir = ""              # … in this folder ("" = <data_dir>/backups)

    [engine]
    model_set = "dd-default"     # dd-default | random-full | test-tiny
    device = "auto"              # auto | cpu | cuda | cuda:N
    precision = "auto"           # auto | fp32 | bf16 | fp16
    allow_download = false
    lease_seconds = 30
    heartbeat_seconds = 3
    checkpoint_every = 10        # steps between checkpoints
    gpu_memory_gb = 0.0          # the engine GPU's memory: jobs that cannot fit are refused at
                                 # enqueue (engine/spec/memory.py); 0 = unknown, no check
    devices = []                 # the bot runs one engine per entry, e.g. ["cuda:0", "cuda:1"]
                                 # ([] = one engine on `device`)

    [discord]                    # the bot process; the token comes only from DISCORD_TOKEN
    api_base = ""                # REST base, e.g. "http://127.0.0.1:8080/api/v10" ("" = Discord)
    gateway_url = ""             # gateway websocket URL ("" = Discord's)
    dev_guild_id = 0             # sync the slash commands to this guild only (0 = globally)

    [bot]
    poll_seconds = 1.5           # how often the poster looks at the queue
    status_edit_seconds = 5.0    # at most one progress-message edit per job per this many s
    preview_seconds = 30.0       # at most one preview image per job per this many s
    spawn_engine = true          # start `disco engine` as a child process and watch it
    engine_restart_max_seconds = 60.0  # longest back-off between engine restarts
    engine_stop_seconds = 10.0   # grace after SIGTERM before the engine is killed
    progress_message_max_age = 3300.0  # a progress message this old (s) is replaced by a new one
    max_study_cells = 36         # most cells one /study may have (1 to 36, engine.spec.study's cap)

    [models.custom.NAME]         # your own diffusion model (DD's `custom`): url or path, sha256,
    url = "https://…/file.pt"    # and the guided-diffusion values that differ from DD's 512
    sha256 = "…"                 # model (engine/models/custom.py); `disco models add` writes one
    image_size = 256

Precedence: command-line flags > environment > the file > these defaults.

Only the entry reads this file: `disco.cli.main` loads it once and hands the sections and the
data folder to the command that asked for them, so no layer imports this package back.
"""
from __future__ import annotations

import difflib
import json
import os
import re
from functools import partial
import tomllib
from pathlib import Path

from engine.cli.worker import has_password
from engine.errors import ModelError, SpecError
from engine.media.files import read_user_file
from engine.models.custom import parse_custom_models, register_custom_models
from engine.models.devices import check_device_name, check_precision
from engine.models.registry import MODEL_SETS

DEFAULTS: dict[str, dict] = {
    "storage": {"data_dir": "data", "url": "", "blob_bytes": 512 * 1024 * 1024, "retention_days": 30.0,
                "backup_every_hours": 0.0, "backup_keep": 7, "backup_dir": ""},
    "engine": {"model_set": "dd-default", "device": "auto", "precision": "auto",
               "allow_download": False, "lease_seconds": 30.0, "heartbeat_seconds": 3.0,
               "checkpoint_every": 10, "gpu_memory_gb": 0.0, "devices": []},
    "discord": {"api_base": "", "gateway_url": "", "dev_guild_id": 0},
    "bot": {"poll_seconds": 1.5, "status_edit_seconds": 5.0, "preview_seconds": 30.0,
            "spawn_engine": True, "engine_restart_max_seconds": 60.0, "engine_stop_seconds": 10.0,
            "progress_message_max_age": 3300.0, "max_study_cells": 36},
}


MAX_CONFIG_BYTES = 1024 * 1024  # config.example.toml is a few KiB
# Numbers with a range: (section, key) → (least, most).
BOUNDS: dict[tuple[str, str], tuple[float, float]] = {
    ("storage", "blob_bytes"): (2**20, 2**36),        # 1 MiB .. 64 GiB
    ("storage", "retention_days"): (0.01, 3650.0),    # 15 minutes .. 10 years
    ("storage", "backup_every_hours"): (0.0, 8760.0), # 0 = off .. once a year
    ("storage", "backup_keep"): (1, 1000),            # storage.backup.MAX_KEEP
    ("engine", "lease_seconds"): (1.0, 3600.0),
    ("engine", "heartbeat_seconds"): (0.1, 600.0),    # and under lease_seconds (_check_engine)
    ("engine", "checkpoint_every"): (1, 100_000),     # as --checkpoint-every
    ("engine", "gpu_memory_gb"): (0.0, 10_000.0),     # as disco worker --memory-gb
    ("bot", "poll_seconds"): (0.05, 60.0),
    ("bot", "status_edit_seconds"): (0.5, 3600.0),
    ("bot", "preview_seconds"): (0.5, 86400.0),
    ("bot", "engine_restart_max_seconds"): (1.0, 86400.0),
    ("bot", "engine_stop_seconds"): (0.5, 3600.0),
    # Discord refuses edits to a message older than an hour: replace it before that.
    ("bot", "progress_message_max_age"): (60.0, 3500.0),
    ("bot", "max_study_cells"): (1, 36),              # engine.spec.study.MAX_CELLS
}
MAX_DEVICES = 16  # [engine] devices: one engine process each
# Each key's type as a refusal names it: how a value of that type is written in TOML.
TYPE_WORDS = {bool: "true or false (no quotes)", int: "a whole number (no quotes), e.g. 10",
              float: "a number (no quotes), e.g. 1.5", str: 'text in quotes, e.g. "cuda:0"',
              list: 'a list, e.g. ["cuda:0", "cuda:1"]'}
_SECRET_KEY = re.compile(r"token|password|secret", re.IGNORECASE)


class ConfigError(Exception):
    """The config file is unreadable or holds an unknown or mistyped key."""


def load_config(path: str | Path | None) -> dict[str, dict]:
    config = {section: dict(values) for section, values in DEFAULTS.items()}
    config["models"] = {"custom": ()}
    if path is None:
        return config
    try:
        data = tomllib.loads(read_user_file(path, what="--config", limit=MAX_CONFIG_BYTES).decode("utf-8"))
    except SpecError as exc:
        raise ConfigError(str(exc)) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(f"--config {path}: cannot read it as TOML ({exc})") from None
    config["models"] = {"custom": _custom_models(path, data.get("models", {}))}
    for section, values in data.items():
        _check_section_name(section, path)
        if section not in DEFAULTS:
            continue  # sections of other tools are theirs to check
        if not isinstance(values, dict):  # `engine = "test-tiny"`: its keys would be silently unset
            raise ConfigError(f"--config {path}: {section} = {_as_written(values)} is not a section; write "
                              f"[{section}] on a line of its own with its keys under it (see config.example.toml)")
        for key, value in values.items():
            if key not in DEFAULTS[section] and _SECRET_KEY.search(key):
                raise ConfigError(f"--config {path}: [{section}] {key}: secrets never go in the config "
                                  f"file — the bot token is read from DISCORD_TOKEN, a database password "
                                  f"from PGPASSWORD or ~/.pgpass; remove the key")
            if key not in DEFAULTS[section]:
                raise ConfigError(f"--config {path}: unknown key [{section}] {key}; known keys: "
                                  + ", ".join(DEFAULTS[section]))
            expected = type(DEFAULTS[section][key])
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"--config {path}: [{section}] {key} must be {TYPE_WORDS[expected]}, "
                                  f"not {_as_written(value)}")
            if (section, key) == ("storage", "url") and has_password(value):
                raise ConfigError(f"--config {path}: [storage] url holds a password: secrets never go in the "
                                  f"config file; keep the URL without it and put the password in PGPASSWORD "
                                  f"or ~/.pgpass (or the whole URL in DISCO_DATABASE_URL or the file named by "
                                  f"DISCO_DATABASE_URL_FILE)")
            least, most = BOUNDS.get((section, key), (value, value))
            if not least <= value <= most:
                raise ConfigError(f"--config {path}: [{section}] {key} = {value} is out of range; "
                                  f"use {least:g} to {most:g}")
            config[section][key] = value
    _check_engine(config["engine"], path)
    return config


def _as_written(value: object) -> str:
    """A TOML value about as it was typed ("soon", true, 3), cut short."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def _custom_models(path: str | Path, models: object) -> tuple:
    """The checked `[models.custom.NAME]` tables as registry entries (engine.models.custom)."""
    if not isinstance(models, dict) or any(key != "custom" for key in models):
        raise ConfigError(f"--config {path}: [models] holds only [models.custom.NAME] tables")
    try:
        return parse_custom_models(models.get("custom", {}))
    except ModelError as exc:
        raise ConfigError(f"--config {path}: {exc}") from None


def register_config_models(config: dict[str, dict]) -> None:
    """Register the config's custom models in this process (the bot's names and choices, the
    engine's loader): every command that reads the config calls it once."""
    register_custom_models(config.get("models", {}).get("custom", ()))


def _check_section_name(section: str, path: str | Path) -> None:
    """A section one typo away from ours (`[storgae]`, `[Engine]`) would be skipped as another
    tool's, and its settings silently not applied: refuse it, naming ours."""
    if section in DEFAULTS or section == "models":
        return
    meant = difflib.get_close_matches(section.lower(), [*DEFAULTS, "models"], n=1, cutoff=0.75)
    if meant:
        raise ConfigError(f"--config {path}: unknown section [{section}]; did you mean [{meant[0]}]? "
                          f"Rename it (its settings would not be applied)")


def _check_engine(engine: dict, path: str | Path) -> None:
    """The engine's names and timings, checked here so that a typo stops `disco` at once, not
    the engine process after the bot is up."""
    if engine["heartbeat_seconds"] >= engine["lease_seconds"]:
        raise ConfigError(f"--config {path}: [engine] heartbeat_seconds = {engine['heartbeat_seconds']:g} is not "
                          f"under lease_seconds = {engine['lease_seconds']:g}: every lease would lapse between "
                          f"two heartbeats and the job go back to the queue; make it a tenth of lease_seconds")
    devices = engine["devices"]
    if len(devices) > MAX_DEVICES or not all(isinstance(d, str) and 0 < len(d) <= 32 for d in devices):
        raise ConfigError(f"--config {path}: [engine] devices is a list of at most {MAX_DEVICES} device "
                          f'names such as "cuda:0" (one engine each)')
    if engine["model_set"] not in MODEL_SETS:
        raise ConfigError(f"--config {path}: [engine] model_set = {engine['model_set'][:40]!r} is not a "
                          f"model set; use one of {', '.join(MODEL_SETS)}")
    checks = [("precision", check_precision, engine["precision"]), ("device", check_device_name, engine["device"])]
    checks += [("devices", partial(check_device_name, allow_auto=False), name) for name in devices]
    for key, check, value in checks:
        try:
            check(value)
        except ModelError as exc:
            raise ConfigError(f"--config {path}: [engine] {key}: {exc}") from None
    gpus = [f"cuda:{int(d.removeprefix('cuda').lstrip(':') or 0)}" for d in devices if d.startswith("cuda")]
    if twice := next((gpu for gpu in gpus if gpus.count(gpu) > 1), None):
        # Each engine plans its jobs for the whole GPU's memory (CPU engines share no such budget).
        raise ConfigError(f"--config {path}: [engine] devices names {twice} twice (\"cuda\" is cuda:0); each "
                          f"engine counts on its GPU's whole memory, so list each GPU once")


def resolve_data_dir(cli_value: str | None, config: dict[str, dict]) -> Path:
    """--data-dir, else DISCO_DATA_DIR, else the config file, else ./data."""
    return Path(cli_value or os.environ.get("DISCO_DATA_DIR") or config["storage"]["data_dir"])
