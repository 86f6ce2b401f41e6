"""The entry owns the config file: `disco.cli.main` loads it once, resolves the data folder once
and hands both down. That no layer imports `disco` back is the layers contract in pyproject.toml
(tests/test_layers.py)."""
from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

import pytest

from disco.cli import build_parser, main, run
from disco.config import DEFAULTS, load_config


@pytest.mark.parametrize("argv", [
    ["engine", "--config", "x.toml"],
    ["engine", "--data-dir", "d", "--owner", "o", "--models", "test-tiny", "--config", "x.toml"],
    ["bot", "--config", "x.toml", "--data-dir", "d"],
    ["jobs", "list", "--data-dir", "d", "--config", "x.toml"],
    ["jobs", "show", "J", "--data-dir", "d"],
    ["jobs", "submit", "x", "--guild", "1", "--channel", "2", "--user", "3", "--data-dir", "d"],
])
def test_config_commands_keep_their_spellings(argv):
    args = build_parser().parse_args(argv)
    assert args.reads_config is True
    assert args.config == ("x.toml" if "--config" in argv else None)
    assert args.data_dir == ("d" if "--data-dir" in argv else None)


def test_other_commands_do_not_read_the_config():
    args = build_parser().parse_args(["render", "x"])
    assert not getattr(args, "reads_config", False)
    assert run(argparse.Namespace(func=lambda a: 7)) == 7  # called as func(args), as before


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text('[storage]\ndata_dir = "from-file"\n[engine]\nmodel_set = "test-tiny"\n')
    return path


def handed(**options) -> tuple[dict, Path]:
    """What run() hands a config-reading command."""
    got = []
    args = argparse.Namespace(func=lambda args, config, data_dir: got.append((config, data_dir)),
                              reads_config=True, **{"config": None, "data_dir": None, **options})
    assert run(args) == 0
    return got[0]


def test_run_hands_down_the_loaded_sections_and_the_data_dir(config_file, monkeypatch):
    monkeypatch.delenv("DISCO_DATA_DIR", raising=False)
    config, data_dir = handed(config=str(config_file))
    assert config["engine"]["model_set"] == "test-tiny" and config["engine"]["lease_seconds"] == 30.0
    assert data_dir == Path("from-file")
    assert handed()[1] == Path("data")


def test_data_dir_precedence_flag_then_environment_then_file(config_file, monkeypatch):
    monkeypatch.setenv("DISCO_DATA_DIR", "from-env")
    assert handed(config=str(config_file))[1] == Path("from-env")
    assert handed(config=str(config_file), data_dir="from-flag")[1] == Path("from-flag")


@pytest.mark.parametrize("argv", [["engine", "--burst"], ["bot"], ["jobs", "list"]])
def test_a_bad_config_is_one_error_line_before_the_command_runs(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine]\nlease_seconds = 'soon'\n")
    assert main([*argv, "--config", str(bad), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert err == f'error: --config {bad}: [engine] lease_seconds must be a number (no quotes), e.g. 1.5, not "soon"\n'
    assert not (tmp_path / "data").exists()  # nothing opened, nothing created


@pytest.mark.parametrize("text, message", [
    ('[discord]\ndev_guild_id = "123"', '[discord] dev_guild_id must be a whole number (no quotes), e.g. 10, not "123"'),
    ('[bot]\nspawn_engine = "no"', '[bot] spawn_engine must be true or false (no quotes), not "no"'),
    ('[engine]\ndevices = "cuda:0"', '[engine] devices must be a list, e.g. ["cuda:0", "cuda:1"], not "cuda:0"'),
    ('[storage]\nurl = 5', '[storage] url must be text in quotes, e.g. "cuda:0", not 5'),
    ('engine = "test-tiny"', 'engine = "test-tiny" is not a section; write [engine] on a line of its own'),
    ('bot = 3', 'bot = 3 is not a section; write [bot] on a line of its own'),
])
def test_a_mistyped_value_is_refused_saying_how_to_write_it(text, message, tmp_path, capsys):
    """A type mistake names the key, what was typed and how the value is written in TOML; a
    section written as a key (its settings silently not applied otherwise) is refused too."""
    config = tmp_path / "config.toml"
    config.write_text(text + "\n")
    assert main(["jobs", "list", "--config", str(config), "--data-dir", str(tmp_path / "data")]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("table", ["[discord]\ntoken = 'abc'", "[storage]\npassword = 'x'",
                                   "[bot]\nDISCORD_TOKEN = 'abc'",
                                   "[storage]\nurl = 'postgresql://disco:hunter2@db/disco'",
                                   "[storage]\nurl = 'postgresql://disco@db/disco?password=hunter2'"])
def test_a_secret_in_the_config_file_is_refused_with_where_it_goes(table, tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text(table + "\n")
    assert main(["jobs", "list", "--config", str(config), "--data-dir", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "secrets never go in the config file" in err and "PGPASSWORD" in err and "hunter2" not in err
    assert ("DISCORD_TOKEN" in err) == ("url" not in table)


def test_the_example_config_loads_and_names_every_key():
    """config.example.toml is what people copy: it must load as it is and list every key."""
    example = Path(__file__).resolve().parents[1] / "config.example.toml"
    loaded = load_config(example)
    written = tomllib.loads(example.read_text())
    for section, defaults in DEFAULTS.items():
        missing = set(defaults) - set(written.get(section, {}))
        assert not missing, f"config.example.toml lacks [{section}] {sorted(missing)}"
        assert set(loaded[section]) == set(defaults)


@pytest.mark.parametrize("engine, message", [
    ('device = "gpu"', "[engine] device: 'gpu' is not a device this engine runs on; use auto, cpu, cuda or cuda:N"),
    ('devices = ["cuda:0", "auto"]', "[engine] devices: 'auto' is not a device this engine runs on; use cpu, cuda or cuda:N"),
    ('devices = ["cuda:0", "cuda:1", "cuda"]', "[engine] devices names cuda:0 twice (\"cuda\" is cuda:0); each engine "
                                              "counts on its GPU's whole memory, so list each GPU once"),
    ('precision = "half"', "[engine] precision: unknown precision 'half': choose one of auto, fp32, bf16, fp16"),
    ('model_set = "dd-defaults"', "[engine] model_set = 'dd-defaults' is not a model set; use one of dd-default, "),
])
def test_an_engine_name_is_checked_when_the_config_loads(engine, message, tmp_path, monkeypatch, capsys):
    """Before the bot logs in and starts an engine that would stop on the typo."""
    monkeypatch.setenv("DISCORD_TOKEN", "a-token")
    config = tmp_path / "config.toml"
    config.write_text(f"[engine]\n{engine}\n")
    assert main(["bot", "--config", str(config), "--data-dir", str(tmp_path / "data")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_every_device_name_the_engine_runs_on_loads(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[engine]\ndevice = "cuda:1"\ndevices = ["cuda:0", "cuda:1", "cpu"]\nprecision = "bf16"\n')
    assert load_config(config)["engine"]["devices"] == ["cuda:0", "cuda:1", "cpu"]
