"""GoBig in the Discord-free job building: `gobig` as a /disco option, `gobig_init` never from
typed text, presets or defaults (only the bot's copy of a result), the job's size counting the
tiles, and the progress line naming the tile."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bot.jobtext import progress_words
from commands.errors import CommandError
from commands.job_options import DiscoOptions, build_job
from commands.job_size import job_size

SMALL = dict(prompt="a lighthouse", width=64, height=64, steps=10, seed=1)


def test_the_gobig_option_turns_it_on_and_counts_the_tiles():
    plain = build_job(DiscoOptions(**SMALL)).spec
    big = build_job(DiscoOptions(**SMALL, gobig=True)).spec
    assert big.gobig and not plain.gobig
    assert job_size(plain).frames == 1
    # 9 tiles of 4 steps each (6 of 10 skipped) = 36 steps = 4 whole renders, after the render.
    assert job_size(big).frames == 1 + 4
    enlarge_only = build_job(DiscoOptions(**SMALL, gobig=True, gobig_init="/data/uploads/1/gobig_init.png")).spec
    assert enlarge_only.gobig_init == "/data/uploads/1/gobig_init.png" and job_size(enlarge_only).frames == 4


@pytest.mark.parametrize("where", [{"settings": "gobig=true; gobig_init=/etc/passwd"},
                                   {"prompt": "a --gobig_init /etc/passwd --gobig true"}])
def test_a_typed_gobig_init_is_refused(where):
    with pytest.raises(CommandError, match="attachments only — use the ⬆ button"):
        build_job(DiscoOptions(**{**SMALL, **where}))


def test_gobig_init_from_defaults_or_a_settings_file_is_dropped_with_a_note():
    parsed = build_job(DiscoOptions(**SMALL, settings_file=json.dumps({"steps": 10, "gobig_init": "/x.png"})),
                       guild_defaults={"gobig_init": "/srv/y.png"})
    assert parsed.spec.gobig_init is None
    assert any("gobig_init from the server defaults ignored" in n for n in parsed.notes)
    # our own settings JSON is read as ours (not as DD's, where gobig_init is an unknown key)
    assert any(n.startswith("settings file: gobig_init ignored: use the ⬆ button") for n in parsed.notes)


def test_the_progress_line_names_the_tile():
    job = SimpleNamespace(kind="still", spec_json=json.dumps({"gobig": True}), progress_step=2,
                          progress_total=4, steps=10, progress_frame=2, progress_frames=9, frames=4)
    assert progress_words(job) == "GoBig tile 3 of 9 · step 2/4"
    rendering = SimpleNamespace(**{**vars(job), "progress_frames": 0, "progress_frame": 0})
    assert progress_words(rendering) == "step 2/4"


def test_the_echo_shows_the_enlarged_size_and_the_recipe_leaves_the_image_out():
    from commands.echo import format_echo, recipe
    parsed = build_job(DiscoOptions(**SMALL, gobig=True, gobig_init="/data/uploads/1/gobig_init.png"))
    assert "GoBig 2× → 128×128" in format_echo(parsed, job_id="01ABC")
    command = recipe(parsed.spec)
    assert "gobig=true" in command and "gobig_init" not in command
