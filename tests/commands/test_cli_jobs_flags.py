"""`disco jobs submit`'s flags say only what a queued job keeps, each checked at once: its model
set and the Discord ids the bot will post the result to.

The engine that claims the job renders it on its own device, precision and downloads, so those
flags are not offered (they were accepted and silently dropped), and a model set no engine has
is refused before the job could wait forever for a worker that will never come.
"""
from __future__ import annotations

import sqlite3

import pytest

from disco.cli import build_parser, main

SUBMIT = ["jobs", "submit", "a cat", "--guild", "1", "--channel", "2", "--user", "3"]


def model_sets(data) -> list[str]:
    with sqlite3.connect(data / "disco.db") as conn:
        return [row[0] for row in conn.execute("SELECT model_set FROM jobs ORDER BY rowid")]


@pytest.mark.parametrize("flag", [["--device", "cuda:1"], ["--precision", "fp16"], ["--allow-download"]])
def test_the_engines_own_flags_are_not_offered(flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(SUBMIT + flag)
    assert exit_.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_an_unknown_model_set_is_refused_naming_the_sets(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(SUBMIT + ["--models", "dd-defualt"])
    err = capsys.readouterr().err
    assert "invalid choice: 'dd-defualt'" in err and "dd-default" in err and "test-tiny" in err


def test_the_model_set_is_the_flag_else_the_config_file(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text('[engine]\nmodel_set = "test-tiny"\n')
    data = ["--data-dir", str(tmp_path / "data")]
    assert main(SUBMIT + data + ["--config", str(config)]) == 0
    assert main(SUBMIT + data + ["--config", str(config), "--models", "dd-default"]) == 0
    assert main(SUBMIT + data) == 0
    assert model_sets(tmp_path / "data") == ["test-tiny", "dd-default", "dd-default"]


@pytest.mark.parametrize("flag, value", [("--guild", "abc"), ("--channel", "-5"), ("--user", "1" * 21)])
def test_a_discord_id_is_a_whole_number(flag, value, capsys):
    argv = SUBMIT.copy()
    argv[argv.index(flag) + 1] = value
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
    assert f"{flag}: give a whole number from 0 to {2**64 - 1}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["jobs", "list", "--guild", "abc"])
