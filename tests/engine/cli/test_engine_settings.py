"""`disco engine` lays its flags over the [engine] section it is handed, without changing it."""
from __future__ import annotations

from disco.cli import build_parser
from disco.config import load_config
from engine.cli.engine import engine_settings


def test_flags_win_over_the_section_and_the_section_is_left_alone():
    section = load_config(None)["engine"]
    before = dict(section)
    args = build_parser().parse_args(["engine", "--models", "test-tiny", "--lease-seconds", "2",
                                      "--allow-download"])
    settings = engine_settings(section, args)
    # The config's 3 s heartbeat would let a 2 s lease lapse between beats: it follows the flag.
    assert settings == {**before, "model_set": "test-tiny", "lease_seconds": 2.0, "allow_download": True,
                        "heartbeat_seconds": 2.0 / 3}
    assert section == before
    long_lease = engine_settings(section, build_parser().parse_args(["engine", "--lease-seconds", "600"]))
    assert long_lease["heartbeat_seconds"] == section["heartbeat_seconds"]


def test_the_lease_flag_is_bounded(capsys):
    import pytest

    for text in ("0.5", "nan", "inf", "4000", "ten"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["engine", "--lease-seconds", text])
        assert "give a number from 1 to 3600, not " + repr(text) in capsys.readouterr().err


def test_without_flags_the_section_is_used():
    section = load_config(None)["engine"]
    assert engine_settings(section, build_parser().parse_args(["engine"])) == section


def test_an_engine_warns_at_start_of_the_model_files_it_lacks(tmp_path, monkeypatch, caplog):
    from engine.cli.engine import warn_missing_models
    from engine.models.registry import model_set_members

    monkeypatch.setenv("DISCO_MODELS_DIR", str(tmp_path))
    with caplog.at_level("WARNING", logger="disco.engine"):
        assert warn_missing_models("test-tiny") == []
        assert not caplog.records
        assert warn_missing_models("dd-default") == list(model_set_members("dd-default"))
    [line] = [r.getMessage() for r in caplog.records]
    assert f"not in {tmp_path}" in line and "disco models download --set dd-default" in line
