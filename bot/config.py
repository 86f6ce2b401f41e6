"""The bot process's settings: the `[discord]`, `[bot]` and `[engine]` sections of the shared
config file plus the data folder, as one typed object. `disco` (the entry) reads the file and
resolves the data folder; this module only types what it is handed, so the bot never imports
the entry back.

The token is never read from the file: only from the `DISCORD_TOKEN` environment variable, so a
config file can be shared or committed without leaking the bot's credentials.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import storage

TOKEN_VARIABLE = "DISCORD_TOKEN"


class MissingToken(Exception):
    """DISCORD_TOKEN is not set."""


@dataclass(frozen=True)
class EngineSettings:
    """What the supervisor passes to `disco engine` (the [engine] section)."""

    model_set: str = "dd-default"
    device: str = "auto"
    precision: str = "auto"
    allow_download: bool = False
    lease_seconds: float = 30.0
    checkpoint_every: int = 10
    gpu_memory_gb: float = 0.0  # read by the bot (refusals at enqueue), not passed to the engine
    devices: tuple[str, ...] = ()  # one engine per entry; () = one engine on `device`

    def arguments(self, device: str | None = None) -> list[str]:
        """The flags of one engine; `device`: one of `devices` (default: `device`)."""
        args = ["--models", self.model_set, "--device", device or self.device, "--precision", self.precision,
                "--lease-seconds", str(self.lease_seconds), "--checkpoint-every", str(self.checkpoint_every)]
        return args + (["--allow-download"] if self.allow_download else [])


@dataclass(frozen=True)
class BotConfig:
    data_dir: Path
    api_base: str = ""
    gateway_url: str = ""
    dev_guild_id: int = 0
    poll_seconds: float = 1.5
    status_edit_seconds: float = 5.0
    preview_seconds: float = 30.0
    # A progress message older than this is replaced, before Discord's 1-hour edit cap (30046).
    progress_message_max_age: float = 3300.0
    spawn_engine: bool = True
    max_study_cells: int = 36  # /study's cap on cells (x values × y values) per study
    engine_restart_max_seconds: float = 60.0
    engine_stop_seconds: float = 10.0
    engine: EngineSettings = field(default_factory=EngineSettings)
    config_path: Path | None = None
    database_url: str = ""  # "" = the SQLite file in data_dir
    blob_bytes: int = storage.DEFAULT_MAX_BYTES  # [storage] blob_bytes: the largest job file kept
    retention_days: float = storage.DEFAULT_RETENTION_DAYS  # a delivered job's files live this long
    backup_every_hours: float = 0.0  # [storage] backup_every_hours: 0 = no scheduled backups
    backup_keep: int = 7             # the newest backups kept
    backup_dir: str = ""             # "" = <data_dir>/backups

    @property
    def database_path(self) -> Path:
        return storage.database_path(self.data_dir)

    @property
    def backup_folder(self) -> Path:
        return Path(self.backup_dir) if self.backup_dir else self.data_dir / "backups"

    @property
    def database(self) -> str:
        """What the bot opens: DISCO_DATABASE_URL, [storage] url, else the data dir's file."""
        return storage.database_url(self.data_dir, self.database_url)

    @classmethod
    def from_sections(cls, config: Mapping[str, Mapping], data_dir: Path,
                      config_path: str | Path | None = None) -> BotConfig:
        """The loaded, checked config file's sections (defaults filled in) and the resolved data
        folder; `config_path` is handed on to the engine child so it reads the same file."""
        discord, bot, engine = config["discord"], config["bot"], config["engine"]
        return cls(
            data_dir=Path(data_dir),
            api_base=discord["api_base"], gateway_url=discord["gateway_url"],
            dev_guild_id=discord["dev_guild_id"], poll_seconds=bot["poll_seconds"],
            status_edit_seconds=bot["status_edit_seconds"], preview_seconds=bot["preview_seconds"],
            progress_message_max_age=bot.get("progress_message_max_age", 3300.0),
            spawn_engine=bot["spawn_engine"], max_study_cells=bot.get("max_study_cells", 36),
            engine_restart_max_seconds=bot["engine_restart_max_seconds"],
            engine_stop_seconds=bot["engine_stop_seconds"],
            engine=EngineSettings(**{k: tuple(engine[k]) if k == "devices" else engine[k]
                                     for k in EngineSettings.__dataclass_fields__ if k in engine}),
            config_path=Path(config_path) if config_path else None,
            database_url=config.get("storage", {}).get("url", ""),
            blob_bytes=config.get("storage", {}).get("blob_bytes", storage.DEFAULT_MAX_BYTES),
            retention_days=config.get("storage", {}).get("retention_days", storage.DEFAULT_RETENTION_DAYS),
            **{key: config["storage"][key] for key in ("backup_every_hours", "backup_keep", "backup_dir")
               if key in config.get("storage", {})})


def token_from_environment() -> str:
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise MissingToken(f"no bot token: set the {TOKEN_VARIABLE} environment variable to the token from "
                           f"the Discord developer portal (the config file never holds it)")
    return token
