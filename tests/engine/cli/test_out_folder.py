"""The engine's commands check their --out folder before loading any model: a file in its way
is the command's one error line at once, not after the models (minutes for real weights) load."""
from __future__ import annotations

import pytest
from PIL import Image

import engine.models.pool
from disco.cli import main


def no_models(*args, **kwargs):
    raise AssertionError("the models were loaded before the --out folder was checked")


@pytest.mark.parametrize("command, error", [
    (["render", "a lighthouse"], "cannot write the results to"),
    (["animate", "a lighthouse", "--frames", "2"], "cannot write the animation to"),
    (["study", "a lighthouse", "--x", "steps=10,20"], "cannot write the study to"),
    (["gobig", "{image}"], "cannot write to"),
])
def test_an_out_folder_that_is_a_file_stops_the_command_before_the_models_load(
        command, error, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(engine.models.pool, "ModelPool", no_models)
    image = tmp_path / "photo.png"
    Image.new("RGB", (64, 64), (90, 120, 200)).save(image)
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    argv = [part.format(image=image) for part in command]
    assert main([*argv, "--models", "test-tiny", "--width", "64", "--height", "64", "--steps", "4",
                 "--no-progress", "--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert f"error: {error} {taken}: File exists; choose another --out folder" in err
