"""BotConfig types what the entry hands it: the loaded sections and the resolved data folder."""
from __future__ import annotations

from pathlib import Path

import storage
import pytest

from bot.config import BotConfig, EngineSettings
from disco.config import DEFAULTS, ConfigError, load_config


def test_from_sections_reads_the_discord_bot_and_engine_sections(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[discord]\napi_base = "http://127.0.0.1:9/api/v10"\ndev_guild_id = 7\n'
                    '[bot]\npoll_seconds = 2\nspawn_engine = false\n'
                    '[engine]\nmodel_set = "test-tiny"\nallow_download = true\n')
    config = BotConfig.from_sections(load_config(path), tmp_path / "data", config_path=str(path))
    assert config.api_base == "http://127.0.0.1:9/api/v10" and config.dev_guild_id == 7
    assert config.poll_seconds == 2.0 and config.spawn_engine is False
    assert config.engine == EngineSettings(model_set="test-tiny", allow_download=True)
    assert config.config_path == path  # handed on to the engine child: `disco engine --config`
    assert config.database_path == storage.database_path(tmp_path / "data") == tmp_path / "data" / "disco.db"


def test_from_sections_of_the_defaults_matches_the_dataclass_defaults():
    assert BotConfig.from_sections(load_config(None), Path("data")) == BotConfig(data_dir=Path("data"))
    assert set(EngineSettings.__dataclass_fields__) <= set(DEFAULTS["engine"])


def test_storage_blob_cap_and_retention_are_read_and_bounded(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[storage]\nblob_bytes = 2097152\nretention_days = 7\n")
    config = BotConfig.from_sections(load_config(path), tmp_path)
    assert (config.blob_bytes, config.retention_days) == (2 * 2**20, 7.0)
    assert DEFAULTS["storage"]["blob_bytes"] == storage.DEFAULT_MAX_BYTES
    assert DEFAULTS["storage"]["retention_days"] == storage.DEFAULT_RETENTION_DAYS
    for line, rule in (("blob_bytes = 10", "blob_bytes = 10 is out of range; use 1.04858e+06"),
                       ("retention_days = 0.0", "retention_days = 0.0 is out of range; use 0.01 to 3650")):
        path.write_text(f"[storage]\n{line}\n")
        with pytest.raises(ConfigError, match=rule.replace("+", r"\+").replace("(", r"\(")):
            load_config(path)


@pytest.mark.parametrize("section, meant", [("storgae", "storage"), ("Storage", "storage"),
                                            ("engnie", "engine"), ("bots", "bot")])
def test_a_misspelt_section_is_refused_naming_the_one_meant(tmp_path, section, meant):
    """`[storgae] url = "postgresql://…"` was skipped as another tool's section: the install
    quietly stayed on SQLite. A section one typo away from ours is refused with the right name;
    other tools' sections are still left alone."""
    path = tmp_path / "config.toml"
    path.write_text(f'[{section}]\nurl = "postgresql://disco@db/disco"\n')
    with pytest.raises(ConfigError, match=rf"unknown section \[{section}\]; did you mean \[{meant}\]"):
        load_config(path)
    path.write_text('[tool.black]\nline-length = 100\n[logging]\nlevel = "info"\n')
    assert load_config(path)["storage"]["url"] == ""


def test_disco_bot_no_engine_overrides_the_config_file(tmp_path, monkeypatch):
    """compose.yaml's bot has no GPU: were it to start its own engine (spawn_engine left at
    its default in the operator's config.toml), that CPU engine would take jobs from the GPU
    workers and render them for hours. `disco bot --no-engine` says so on the command line."""
    import bot.cli
    from disco.cli import main

    seen = []

    async def run(config, token):
        seen.append(config)
    monkeypatch.setattr(bot.cli, "_run", run)
    monkeypatch.setenv("DISCORD_TOKEN", "a-token")
    path = tmp_path / "config.toml"
    path.write_text("[bot]\nspawn_engine = true\n")
    assert main(["bot", "--config", str(path), "--data-dir", str(tmp_path), "--no-engine"]) == 0
    assert main(["bot", "--config", str(path), "--data-dir", str(tmp_path)]) == 0
    assert [config.spawn_engine for config in seen] == [False, True]


def test_a_data_folder_the_bot_cannot_create_is_one_line_naming_the_fix(tmp_path):
    """A volume owned by root under a non-root container, a path below a file: the bot's start
    names the folder and the fix, the config file's key among its sources (it said 'unexpected
    NotADirectoryError … a bug')."""
    import asyncio
    from bot.client import DiscoBot
    from storage import StorageError

    (tmp_path / "a-file").write_text("")
    bot = DiscoBot(BotConfig(data_dir=tmp_path / "a-file" / "data", spawn_engine=False))
    with pytest.raises(StorageError, match=r"cannot create the data folder .*a-file/data .*; point "
                                           r"--data-dir, DISCO_DATA_DIR or \[storage\] data_dir in the "
                                           r"config file at a writable folder"):
        asyncio.run(bot.setup_hook())
