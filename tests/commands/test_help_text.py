"""`/disco-help`'s texts: the guide, and every setting explained in one message whose "Set it"
examples the real parsers accept as typed."""
from __future__ import annotations

import random

import pytest

from commands.animate_options import AnimateOptions, build_animation
from commands.help_text import MESSAGE_LIMIT, guide_text, setting_text
from commands.job_options import DiscoOptions, JobLimits, build_job
from engine.spec.animation import AnimationSpec
from engine.spec.render import RenderSpec
from engine.spec.setting_docs import closest_setting, setting_help, setting_names

LIMITS = JobLimits(max_steps=1000, max_pixels=4096 * 4096, max_cuts=10_000, max_frames=10_000, max_images=100)
ATTACHED = {"text_prompts", "init_image", "image_prompts", "gobig_init", "video_init_path", "init_frame"}


def test_every_setting_of_both_specs_has_its_words():
    names = setting_names()
    assert set(names) == set(RenderSpec.model_fields) | set(AnimationSpec.model_fields) - {"render"}
    assert len(names) == len(set(names))
    for name in names:
        for entry in setting_help(name):
            assert entry.meaning and entry.allowed and entry.default, entry
    assert [entry.animation for entry in setting_help("sampling_mode")] == [False, True]  # two meanings
    assert setting_help(" ZOOM ")[0].default == "0: (1), 10: (1.05)"
    assert setting_help("clip_models")[0].default == "ViT-B-32::openai, ViT-B-16::openai, RN50::openai"
    assert setting_help("no_such_thing") == ()
    assert closest_setting("clip_guidence_scale") == "clip_guidance_scale"


def test_the_guide_and_every_setting_fit_one_message():
    assert len(guide_text()) <= MESSAGE_LIMIT and "/disco-help setting:" in guide_text()
    for name in setting_names():
        text = setting_text(name)
        assert len(text) <= MESSAGE_LIMIT and f"**{name}**" in text and "Set it:" in text, name


def test_a_setting_shows_discords_default_and_the_servers():
    text = setting_text("n_batches", server_defaults={"n_batches": 2}, channel_defaults={"steps": 90})
    assert "Default: `1` here (Disco Diffusion's: `50`)" in text
    assert "Default in this server: `2`" in text and "this channel" not in text
    assert "`/disco n:`" in text and "`--n " in text
    steps = setting_text("steps", channel_defaults={"steps": 90})
    assert "Default in this channel: `90`" in steps and "`/disco steps:`" in steps


def test_a_setting_shows_the_members_own_default_after_the_servers():
    text = setting_text("--steps", server_defaults={"steps": 100}, own_defaults={"steps": 150, "eta": 0.5})
    assert text.index("Default in this server: `100`") < text.index("Your default (`/disco-settings`): `150`")
    assert "Your default" not in setting_text("steps", own_defaults={"eta": 0.5})
    assert "Your default" not in setting_text("zoom", own_defaults={"zoom": "0: (1.1)"})  # animation settings


def test_a_default_the_servers_limits_lower_is_said_with_the_limit():
    limits = JobLimits(max_steps=100, max_images=2)
    text = setting_text("steps", own_defaults={"steps": 400}, limits=limits)
    assert text.index("Your default (`/disco-settings`): `400`") < text.index(
        "Here, this server's max_steps lowers it to `100`")
    assert "lowers it to `100`" in setting_text("steps", limits=limits)  # DD's 250 too
    assert "lowers" not in setting_text("steps", own_defaults={"steps": 60}, limits=limits)
    assert "max_images lowers it to `2`" in setting_text("--n", server_defaults={"n_batches": 4}, limits=limits)
    assert "lowers" not in setting_text("eta", limits=limits) and "lowers" not in setting_text("steps")


def test_an_unknown_setting_is_answered_with_the_closest():
    assert "no setting called `stepz`. Did you mean `steps`?" in setting_text("stepz")
    assert "Did you mean" not in setting_text("qqqqqq")
    assert "`@\u200beveryone`" in setting_text("@everyone")  # typed text never mentions anyone


def _typed(text: str, form: str) -> str:
    """The text between `form` and the closing backtick in a "Set it" line."""
    start = text.index(form) + len(form)
    return text[start:text.index("`", start)]


@pytest.mark.parametrize("name", [n for n in RenderSpec.model_fields if n not in ATTACHED])
def test_every_still_settings_examples_are_accepted_as_typed(name):
    text = setting_text(name)
    settings = _typed(text, '`settings:"').removesuffix('"')
    flag = _typed(text, "`--")
    for options in (DiscoOptions(prompt="a lighthouse", settings=settings),
                    DiscoOptions(prompt=f"a lighthouse --{flag}")):
        build_job(options, limits=LIMITS, rng=random.Random(1))


@pytest.mark.parametrize("name", [n for n in AnimationSpec.model_fields
                                  if n not in ATTACHED | {"render"} | set(RenderSpec.model_fields)])
def test_every_animation_settings_example_is_accepted_as_typed(name):
    settings = _typed(setting_text(name), '`/animate settings:"').removesuffix('"')
    still = build_job(DiscoOptions(prompt="a lighthouse"), limits=LIMITS, rng=random.Random(1))
    mode = "3D" if name.startswith(("turbo", "vr", "near", "far", "fov", "midas", "padding", "rotation",
                                    "translation_z")) else None
    build_animation(still, AnimateOptions(settings=settings, mode=mode), limits=LIMITS)


def test_prompt_flags_are_explained_too():
    from commands.help_text import help_topics

    assert setting_text("--cgs").startswith("`--cgs` is the short form of **clip_guidance_scale**.\n")
    assert "`--cgs 5000` after the prompt" in setting_text("cgs")
    assert "`--n 2` after the prompt" in setting_text("n_batches")  # not DD's 50 images
    assert "`--ar 16:9`" in setting_text("ar") and "`small-square` 512×512" in setting_text("size")
    assert "half the positive ones" in setting_text("—no")
    topics = dict(help_topics())
    assert topics["cgs"] == "--cgs → clip_guidance_scale" and topics["ar"] == "--ar"
    assert all(len(label) <= 100 for label in topics.values())  # Discord's cap on a choice's name
    for value in topics:
        assert "There is no setting" not in setting_text(value), value
    ratio = build_job(DiscoOptions(prompt="a lighthouse --ar 16:9"), limits=LIMITS, rng=random.Random(1)).spec
    assert (ratio.width, ratio.height) == (1280, 704)  # the shape the help describes
