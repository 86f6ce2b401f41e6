"""What a render leaves on disk: whole files only, with the mode any new file of the user gets."""
from __future__ import annotations

import os
import stat

import pytest
from PIL import Image

from engine.media import files
from engine.media.files import atomic_write_bytes, save_png


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_outputs_get_the_umask_mode_not_the_temp_files_owner_only_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(files, "_UMASK", 0o022)
    atomic_write_bytes(tmp_path / "settings.txt", b"{}")
    save_png(Image.new("RGB", (4, 4)), tmp_path / "a.png", {"disco_settings": "{}"})
    assert mode(tmp_path / "settings.txt") == mode(tmp_path / "a.png") == 0o644
    monkeypatch.setattr(files, "_UMASK", 0o077)
    atomic_write_bytes(tmp_path / "private.txt", b"{}")
    assert mode(tmp_path / "private.txt") == 0o600


def test_a_failed_write_leaves_neither_the_file_nor_its_temp(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "a.png", b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_renders_started_at_once_in_one_folder_take_different_run_numbers(tmp_path):
    import json
    from concurrent.futures import ThreadPoolExecutor

    from engine.media.files import save_new_run_settings, settings_name
    (tmp_path / settings_name("TimeToDisco", 0)).write_text("{}")  # an earlier run
    with ThreadPoolExecutor(8) as pool:
        runs = list(pool.map(lambda k: save_new_run_settings(tmp_path, "TimeToDisco", {"k": k}), range(24)))
    assert sorted(runs) == list(range(1, 25))  # each its own number, none overwritten
    for k, run in enumerate(runs):
        assert json.loads((tmp_path / settings_name("TimeToDisco", run)).read_text()) == {"k": k}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left
