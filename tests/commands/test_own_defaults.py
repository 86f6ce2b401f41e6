"""A member's own defaults in the commands layer: where they sit in `build_job`'s merge (over the
server's and channel's, under a preset and everything typed), the echo's note, their re-check
when a job reads them, the server's limits and allowed models over them, and setting, removing
and showing them (commands/own_defaults.py) with their bounds."""
from __future__ import annotations

import random

import pytest

from commands.defaults import OWN_DEFAULTS_FIX, defaults_here, usable_own_defaults
from commands.echo import format_echo
from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits, build_job
from commands.own_defaults import (
    add_own_defaults,
    own_defaults_here,
    own_defaults_lines,
    remove_own_default,
    reset_choices,
)
from commands.remix import remix_defaults, remix_options
from commands.server_rules import check_allowed_models
from engine.errors import SpecError
from engine.spec.render import RenderSpec
from storage import MAX_USER_DEFAULTS

SERVER, CHANNEL = {"steps": 100, "eta": 0.3, "cutn_batches": 2}, {"steps": 120}


def job(own=None, prompt="a lighthouse", limits=JobLimits(), **options):
    sources = {k: options.pop(k) for k in ("preset", "preset_name") if k in options}
    return build_job(DiscoOptions(prompt=prompt, **options), limits=limits, guild_defaults=SERVER,
                     channel_defaults=CHANNEL, own_defaults=own, rng=random.Random(3), **sources)


# ---- the merge ------------------------------------------------------------------------------

def test_own_defaults_sit_over_the_channels_and_under_everything_the_member_chose() -> None:
    parsed = job({"steps": 150, "eta": 0.5})
    assert (parsed.spec.steps, parsed.spec.eta, parsed.spec.cutn_batches) == (150, 0.5, 2)
    assert parsed.own_defaults == {"steps": 150, "eta": 0.5}
    assert "from your defaults: eta=0.5, steps=150 (your options override them; /disco-settings " \
           "changes them)" in parsed.notes
    assert "from the server defaults: cutn_batches=2 (your options override them)" in parsed.notes
    assert not any("channel's defaults" in note for note in parsed.notes)  # all it set is overridden
    for chosen, steps in (({"preset": {"steps": 90}, "preset_name": "p"}, 90), ({"settings": "steps=80"}, 80),
                          ({"prompt": "a lighthouse --steps 70"}, 70), ({"steps": 60}, 60)):
        parsed = job({"steps": 150, "eta": 0.5}, **chosen)
        assert (parsed.spec.steps, parsed.spec.eta) == (steps, 0.5), chosen
        assert parsed.own_defaults == {"eta": 0.5}


def test_a_rerun_repeats_its_job_and_takes_no_defaults_of_today() -> None:
    """A re-run's preset is the earlier job's whole spec (bot.queueing.job_preset), so it covers
    every setting the member's defaults hold, as it covers the server's."""
    earlier = RenderSpec.from_dict({"text_prompts": "a lighthouse", "steps": 40, "n_batches": 1}).to_dict()
    preset = {k: v for k, v in earlier.items() if k not in ("seed", "schema_version")}
    parsed = job({"steps": 150, "eta": 0.5}, prompt="", preset=preset, preset_name="job 1")
    assert (parsed.spec.steps, parsed.spec.eta, parsed.spec.cutn_batches) == (40, 0.8, 4)
    assert parsed.own_defaults == {} and not any("your defaults" in note for note in parsed.notes)


def test_the_echo_names_the_members_defaults() -> None:
    echo = format_echo(job({"eta": 0.5}), position=1)
    assert "from your defaults: eta=0.5" in echo and "eta = `0.5`" in echo


def test_the_servers_limits_lower_own_defaults_with_the_usual_note() -> None:
    parsed = job({"steps": 400}, limits=JobLimits(max_steps=200))
    assert parsed.spec.steps == 200
    assert any(note.startswith("steps 400 → 200: this server allows at most 200 (max_steps)")
               for note in parsed.notes)


def test_an_own_default_that_clashes_with_a_typed_option_names_where_it_came_from() -> None:
    with pytest.raises(SpecError) as caught:
        job({"skip_steps": 90}, steps=50)
    assert "(set by your defaults; " + OWN_DEFAULTS_FIX + ")" in str(caught.value)


# ---- re-checked when read -------------------------------------------------------------------

def test_stored_defaults_that_are_no_longer_valid_are_dropped_with_a_note() -> None:
    stored = {"eta": 0.5, "seed": 4, "init_image": "/etc/passwd", "old_setting": 1, "steps": 5000,
              "clip_guidance_scale": "loud", "text_prompts": "oil painting"}
    notes: list[str] = []
    assert usable_own_defaults(stored, notes) == {"eta": 0.5}
    assert len(notes) == 6 and all(OWN_DEFAULTS_FIX in note for note in notes)
    joined = "\n".join(notes)
    assert "seed from your defaults ignored: every job would paint the same noise" in joined
    assert "init_image from your defaults ignored: images come from attachments only" in joined
    assert "old_setting from your defaults ignored: not a setting of this version" in joined
    assert "text_prompts from your defaults ignored: the prompt you type replaces it" in joined
    assert "steps from your defaults ignored: steps: 5000" in joined
    parsed = job(stored)
    assert parsed.spec.eta == 0.5 and parsed.spec.steps == 120 and parsed.spec.init_image is None
    assert all(note in parsed.notes for note in notes)


def test_stored_defaults_that_do_not_fit_together_lose_the_one_named() -> None:
    notes: list[str] = []
    assert usable_own_defaults({"steps": 40, "skip_steps": 60, "eta": 0.5}, notes) == {"steps": 40, "eta": 0.5}
    assert len(notes) == 1 and notes[0].startswith("skip_steps from your defaults ignored: skip_steps: 60")
    assert usable_own_defaults(None, notes) == {} and len(notes) == 1


def test_defaults_here_fall_back_to_the_servers_when_the_members_do_not_fit_them() -> None:
    assert defaults_here({"steps": 100}, {"eta": 0.5}) == {"steps": 100, "eta": 0.5}
    assert defaults_here({"steps": 100}, {"skip_steps": 150}) == {"steps": 100}
    assert defaults_here({"steps": 100}, {"seed": 3, "eta": 0.5}) == {"steps": 100, "eta": 0.5}


# ---- the server's allowed models ------------------------------------------------------------

def test_a_refused_model_from_own_defaults_says_so_and_how_to_change_it() -> None:
    parsed = job({"diffusion_model": "256x256_diffusion_uncond", "clip_models": ["RN50::openai"]})
    allowed = ("512x512_diffusion_uncond_finetune_008100",)
    with pytest.raises(CommandError) as caught:
        check_allowed_models(parsed.spec, allowed, None, parsed.own_defaults)
    text = str(caught.value)
    assert "256x256_diffusion_uncond (from your own defaults) is not allowed" in text
    assert "rule: allowed_models" in text and "reset:diffusion_model" in text
    assert 'defaults:"diffusion_model=512x512_diffusion_uncond_finetune_008100"' in text
    with pytest.raises(CommandError) as clip:
        check_allowed_models(parsed.spec, None, ("ViT-B-32::openai",), parsed.own_defaults)
    assert "RN50::openai (from your own defaults)" in str(clip.value) and "reset:clip_models" in str(clip.value)
    typed = job({"diffusion_model": "256x256_diffusion_uncond"}, model="portrait_generator_v001")
    with pytest.raises(CommandError) as elsewhere:  # the model came from the option: no word of defaults
        check_allowed_models(typed.spec, allowed, None, typed.own_defaults)
    assert "your own defaults" not in str(elsewhere.value) and "/disco-settings" not in str(elsewhere.value)
    # Describing an image runs CLIP only: the member's default diffusion model does not refuse it.
    description = parsed.spec.replace(describe=True, init_image="image_pic.png")
    check_allowed_models(description, allowed, None, parsed.own_defaults)
    with pytest.raises(CommandError, match="allowed_clip_models"):
        check_allowed_models(description, allowed, ("ViT-B-32::openai",), parsed.own_defaults)


# ---- setting, removing, showing -------------------------------------------------------------

def test_setting_adds_or_replaces_keys_with_the_servers_checks() -> None:
    mine = add_own_defaults({}, "steps=150; eta=0.5")
    assert mine == {"steps": 150, "eta": 0.5}
    assert add_own_defaults(mine, "steps=200; diffusion_model=256x256_diff") == {
        "steps": 200, "eta": 0.5, "diffusion_model": "256x256_diffusion_uncond"}


@pytest.mark.parametrize("current, text, message", [
    ({}, "seed=5", "seed cannot be a default"),
    ({}, "init_image=/etc/passwd", "images come from attachments only"),
    ({}, "text_prompts=oil painting", "text_prompts cannot be one of your defaults (the prompt you type "
                                      "replaces it in every job; write the style into your prompt instead"),
    ({}, "steps=1", "steps"),
    ({}, "stepz=3", "stepz"),
    ({}, "", "no setting given"),
    ({}, "steps=" + "1" * 40_000, "at most 20000 characters"),
    ({"steps": 50}, "skip_steps=60", "together with your other defaults"),
    ({f"cut_ic_pow_{n}": n for n in range(MAX_USER_DEFAULTS)}, "eta=0.5", "user_defaults_count"),
])
def test_bad_own_defaults_are_refused_with_the_rule(current, text, message) -> None:
    with pytest.raises(SpecError) as caught:
        add_own_defaults(current, text)
    assert str(caught.value).startswith("defaults: ") and message in str(caught.value)


def test_the_count_bound_holds_at_its_edge() -> None:
    data = RenderSpec.from_dict({}).to_dict()
    names = [key for key in data if key not in ("seed", "init_image", "image_prompts", "gobig_init",
                                                 "text_prompts", "schema_version")]
    full = {key: data[key] for key in names[:MAX_USER_DEFAULTS]}
    assert add_own_defaults(full, f"{names[0]}={data[names[0]]}") == full  # replacing keeps the count
    with pytest.raises(CommandError, match="user_defaults_count"):
        add_own_defaults(full, f"{names[MAX_USER_DEFAULTS]}={data[names[MAX_USER_DEFAULTS]]}")


def test_removing_one_all_or_an_unknown_one() -> None:
    mine = {"steps": 150, "eta": 0.5}
    assert remove_own_default(mine, " ETA ") == ({"steps": 150}, "`eta`")
    assert remove_own_default(mine, "all") == ({}, "all your defaults")
    assert remove_own_default(mine, "sat_scale") == (mine, None)
    assert reset_choices(mine, "") == ["eta", "steps", "all"]
    assert reset_choices(mine, "st") == ["steps", "all"] and reset_choices({}, "") == []


def test_showing_them_names_what_a_job_would_now_ignore() -> None:
    assert "**none**" in own_defaults_lines({})[0]
    lines = own_defaults_lines({"steps": 150, "seed": 3})
    assert "`steps=150`" in lines[0] and OWN_DEFAULTS_FIX in lines[0]
    assert lines[1].startswith("• seed from your defaults ignored")


def test_where_they_are_set_the_server_says_what_it_changes_or_refuses() -> None:
    assert own_defaults_here({}, {}, JobLimits(), None, None) == []
    assert own_defaults_here({"steps": 50}, {"eta": 0.5}, JobLimits(), None, None) == []
    lines = own_defaults_here({}, {"steps": 400, "diffusion_model": "256x256_diffusion_uncond"},
                              JobLimits(max_steps=200), ("512x512_diffusion_uncond_finetune_008100",), None)
    assert lines[0].startswith("Here, this server's limits change them: steps 400 → 200")
    assert lines[1].startswith("Here, jobs that keep them are refused: the diffusion model 256x256_diffusion_uncond "
                               "(from your own defaults)")
    clash = own_defaults_here({"steps": 50}, {"skip_steps": 60}, JobLimits(), None, None)
    assert clash[0].startswith("Here, with this server's defaults, jobs that keep them are refused: skip_steps")


def test_a_remix_form_left_as_shown_repeats_the_job_whatever_the_defaults_are_now() -> None:
    """The ✏️ form is pre-filled from the job's spec, and a field left as shown is no option:
    the job's own spec (the re-run's preset) gives it back, not the member's defaults of today."""
    parsed = job({"steps": 150, "eta": 0.5})
    shown = remix_defaults(parsed.spec, defaults_here(SERVER, {"steps": 60}))
    assert shown["steps"] == "150" and shown["prompt"] == "a lighthouse"
    assert remix_options(dict(shown), shown) == {"seed": parsed.spec.seed}  # the seed field is kept
    preset = {k: v for k, v in parsed.spec.to_dict().items() if k not in ("seed", "schema_version")}
    again = job({"steps": 60, "eta": 0.1}, prompt="", preset=preset, preset_name="job 1")
    assert (again.spec.steps, again.spec.eta) == (150, 0.5)
