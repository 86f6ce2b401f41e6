"""Every number in the config file has a range, refused with the range when outside it."""
from __future__ import annotations

import pytest

from disco.config import BOUNDS, DEFAULTS, ConfigError, load_config
from engine.spec.study import MAX_CELLS


def test_every_number_but_the_guild_id_has_a_range_holding_its_default():
    numbers = {(section, key) for section, values in DEFAULTS.items() for key, value in values.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    assert numbers - set(BOUNDS) == {("discord", "dev_guild_id")}
    for (section, key), (least, most) in BOUNDS.items():
        assert least <= DEFAULTS[section][key] <= most, (section, key)
    assert BOUNDS[("bot", "max_study_cells")] == (1, MAX_CELLS)


@pytest.mark.parametrize("section, line, message", [
    ("bot", "max_study_cells = 64", "[bot] max_study_cells = 64 is out of range; use 1 to 36"),
    ("bot", "poll_seconds = 0", "[bot] poll_seconds = 0.0 is out of range; use 0.05 to 60"),
    ("bot", "progress_message_max_age = 7200", "use 60 to 3500"),
    ("engine", "lease_seconds = -1", "[engine] lease_seconds = -1.0 is out of range; use 1 to 3600"),
    ("engine", "checkpoint_every = 0", "[engine] checkpoint_every = 0 is out of range; use 1 to 100000"),
    ("engine", "heartbeat_seconds = 30", "heartbeat_seconds = 30 is not under lease_seconds = 30"),
])
def test_a_number_out_of_range_is_refused_with_the_range(section, line, message, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{line}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)


def test_the_edges_of_each_range_load(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[engine]\nlease_seconds = 3600\nheartbeat_seconds = 0.1\n"
                    "[bot]\nmax_study_cells = 1\nprogress_message_max_age = 3500\n")
    config = load_config(path)
    assert (config["engine"]["lease_seconds"], config["bot"]["max_study_cells"]) == (3600.0, 1)
