"""The optional TOML config file shared by every `disco` process, and the data folder.

    [storage]
    data_dir = "data"            # also DISCO_DATA_DIR or --data-dir

    [engine]
    model_set = "dd-default"     # dd-default | random-full | test-tiny
    device = "auto"              # auto | cpu | cuda | cuda:N
    precision = "auto"           # auto | fp32 | bf16 | fp16
    allow_download = false
    lease_seconds = 30
    heartbeat_seconds = 3
    checkpoint_every = 10        # steps between checkpoints

Precedence: command-line flags > environment > the file > these defaults.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

DEFAULTS: dict[str, dict] = {
    "storage": {"data_dir": "data"},
    "engine": {"model_set": "dd-default", "device": "auto", "precision": "auto",
               "allow_download": False, "lease_seconds": 30.0, "heartbeat_seconds": 3.0,
               "checkpoint_every": 10},
}


class ConfigError(Exception):
    """The config file is unreadable or holds an unknown or mistyped key."""


def load_config(path: str | Path | None) -> dict[str, dict]:
    config = {section: dict(values) for section, values in DEFAULTS.items()}
    if path is None:
        return config
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--config {path}: cannot read it as TOML ({exc})") from None
    for section, values in data.items():
        if section not in config or not isinstance(values, dict):
            continue  # other processes' sections (the bot's [discord], ...) are theirs to check
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise ConfigError(f"--config {path}: unknown key [{section}] {key}; known keys: "
                                  + ", ".join(DEFAULTS[section]))
            expected = type(DEFAULTS[section][key])
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"--config {path}: [{section}] {key} must be a {expected.__name__}")
            config[section][key] = value
    return config


def data_dir(cli_value: str | None, config: dict[str, dict]) -> Path:
    """--data-dir, else DISCO_DATA_DIR, else the config file, else ./data."""
    return Path(cli_value or os.environ.get("DISCO_DATA_DIR") or config["storage"]["data_dir"])


def database_path(data: Path) -> Path:
    return data / "disco.db"
