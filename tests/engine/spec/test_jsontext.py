"""Settings JSON from users: one reader, every failure a SpecError that says what to fix."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from commands.job_options import DiscoOptions, build_job
from engine.errors import SpecError
from engine.spec.animation import AnimationSpec
from engine.spec.ddsettings import import_dd_settings
from engine.spec.jsontext import MAX_NUMBER_DIGITS, read_json
from engine.spec.render import RenderSpec
from engine.spec.sources import load_settings_file
from engine.spec.study import StudySpec

HUGE = "7" * 5000  # past Python's 4300-digit limit on int(text)


def test_reads_plain_json_and_numbers_up_to_the_bound():
    assert read_json('{"a": [1, 2.5, "x"], "b": %s}' % ("9" * MAX_NUMBER_DIGITS), "it") == {
        "a": [1, 2.5, "x"], "b": int("9" * MAX_NUMBER_DIGITS)}


@pytest.mark.parametrize("text,needle", [
    ('{"steps": %s}' % HUGE, "5,000 digits"),
    ('{"steps": -%s}' % HUGE, "5,000 digits"),
    ("{", "line 1, column 2"),
    ("[" * 100_000 + "]" * 100_000, "nested"),
])
def test_every_failure_is_a_spec_error_naming_the_text_and_the_fix(text, needle):
    with pytest.raises(SpecError) as caught:
        read_json(text, "the settings file")
    message = str(caught.value)
    assert message.startswith("the settings file") and needle in message
    assert "4300" not in message and "set_int_max_str_digits" not in message


def _cli_file(tmp_path: Path, text: str):
    path = tmp_path / "settings.json"
    path.write_text(text)
    return load_settings_file(path)


@pytest.mark.parametrize("read", [
    lambda text, tmp: RenderSpec.from_json(text),
    lambda text, tmp: AnimationSpec.from_json(text),
    lambda text, tmp: StudySpec.from_json(text),
    lambda text, tmp: import_dd_settings(text),
    lambda text, tmp: _cli_file(tmp, text),
    lambda text, tmp: build_job(DiscoOptions(prompt="a", settings_file=text), rng=random.Random(1)),
])
def test_a_5000_digit_number_in_any_settings_json_is_refused_by_its_size(read, tmp_path):
    with pytest.raises(SpecError, match="5,000 digits"):
        read('{"steps": %s, "text_prompts": {"0": ["a"]}}' % HUGE, tmp_path)


def test_a_png_of_ours_as_a_settings_file_gives_the_settings_it_carries(tmp_path):
    from PIL import Image

    from engine.media.files import save_png

    spec = RenderSpec(text_prompts="a lighthouse:2 | yellow:-0.5", steps=40, seed=7, width=128)
    save_png(Image.new("RGB", (128, 64)), tmp_path / "ours.png", {"disco_settings": spec.to_json()})
    data, report = load_settings_file(tmp_path / "ours.png")
    assert RenderSpec.from_dict(data) == spec and report == []


def test_a_png_without_settings_is_refused_as_such(tmp_path):
    from PIL import Image

    Image.new("RGB", (64, 64)).save(tmp_path / "photo.png")
    with pytest.raises(SpecError, match="photo.png is a PNG that carries no settings.*_settings.txt"):
        load_settings_file(tmp_path / "photo.png")
