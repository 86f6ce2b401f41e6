"""Building a /disco job: source precedence, sizes, server limits, seeds and attachments."""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits, build_job, check_attachment
from engine.errors import SpecError
from engine.media.still_formats import FORMAT_LIST
from engine.spec.prompts import WeightedPrompt as P

BIG = JobLimits(max_steps=1000, max_pixels=4096 * 4096, max_cuts=10**6, max_images=100)


def job(prompt="a lighthouse", limits=BIG, **kwargs):
    sources = {k: kwargs.pop(k) for k in ("guild_defaults", "preset", "preset_name")
               if k in kwargs}
    return build_job(DiscoOptions(prompt=prompt, **kwargs), limits=limits,
                     rng=random.Random(7), **sources)


# ---- precedence -----------------------------------------------------------------------------

LAYERS = ("guild_defaults", "preset", "settings_file", "settings", "flag", "option")


@pytest.mark.parametrize("top", range(len(LAYERS)))
def test_each_source_beats_the_ones_before_it(top):
    used = LAYERS[:top + 1]
    kwargs, prompt = {}, "a lighthouse"
    steps = {name: 100 + index for index, name in enumerate(LAYERS)}
    if "guild_defaults" in used:
        kwargs["guild_defaults"] = {"steps": steps["guild_defaults"]}
    if "preset" in used:
        kwargs["preset"] = {"steps": steps["preset"]}
    if "settings_file" in used:
        kwargs["settings_file"] = json.dumps({"steps": steps["settings_file"]})
    if "settings" in used:
        kwargs["settings"] = f"steps={steps['settings']}"
    if "flag" in used:
        prompt += f" --steps {steps['flag']}"
    if "option" in used:
        kwargs["steps"] = steps["option"]
    assert job(prompt, **kwargs).spec.steps == steps[LAYERS[top]]


def test_slash_option_beats_prompt_flag_and_says_so():
    parsed = job("a cat --steps 100 --seed 1", steps=200, seed=2)
    assert (parsed.spec.steps, parsed.spec.seed) == (200, 2)
    assert ("steps: 200 from the steps option replaces 100 from --steps in the prompt"
            in parsed.notes)


def test_settings_file_sets_only_its_own_keys():
    parsed = job(preset={"clip_guidance_scale": 9000, "schema_version": 1}, preset_name="p",
                 settings_file=json.dumps({"steps": 120, "animation_mode": "None"}))
    assert (parsed.spec.steps, parsed.spec.clip_guidance_scale) == (120, 9000)
    assert any(n.startswith("settings file: ignored for still images") for n in parsed.notes)


def test_prompt_text_replaces_prompts_from_settings_with_a_note():
    parsed = job("a cat", settings="text_prompts=a dog:2")
    assert parsed.prompts == [P("a cat", 1)]
    assert any(n.startswith("text_prompts:") and "from the prompt" in n for n in parsed.notes)


def test_no_applies_to_prompts_from_other_sources():
    parsed = job("--no fog", preset={"text_prompts": "a cat:2"}, preset_name="p")
    assert parsed.prompts == [P("a cat", 2), P("fog", -1)]


def test_a_prompt_is_required():
    with pytest.raises(CommandError, match="nothing to paint"):
        job("--seed 3")
    assert job("", image_prompts=("/tmp/x.png",)).prompts == []


def test_errors_name_the_source():
    with pytest.raises(SpecError, match=r"set by the settings option"):
        job(settings="steps=abc")
    with pytest.raises(SpecError, match=r"set by preset 'fancy'"):
        job(preset={"eta": 7}, preset_name="fancy")
    with pytest.raises(SpecError, match=r"settings option: .*did you mean 'steps'"):
        job(settings="stepz=4")
    with pytest.raises(CommandError, match="save it again"):
        job(preset="{not json", preset_name="p")


def test_image_paths_only_from_attachments():
    with pytest.raises(CommandError, match="attachments only"):
        job(settings="init_image=/etc/passwd")
    parsed = job(guild_defaults={"init_image": "/srv/secret.png"},
                 settings_file=json.dumps({"init_image": "/content/init.png"}))
    assert parsed.spec.init_image is None
    assert any("init_image from the server defaults ignored" in n for n in parsed.notes)
    assert any(n.startswith("settings file: init_image ignored") for n in parsed.notes)
    with_image = job(init_image="/tmp/dl/init.png", image_prompts=("/tmp/dl/a.png",))
    assert with_image.spec.init_image == "/tmp/dl/init.png"
    assert with_image.image_prompts == [P("/tmp/dl/a.png", 1)]
    assert any("skip about half the steps" in n for n in with_image.notes)


def test_model_prefix_and_sampler_options():
    parsed = job(model="portrait_generator_v0", sampling_mode="plms", n=2)
    assert parsed.spec.diffusion_model == "portrait_generator_v001"
    assert parsed.non_defaults == {"diffusion_model": "portrait_generator_v001",
                                   "sampling_mode": "plms", "n_batches": 2}


# ---- sizes ----------------------------------------------------------------------------------

def test_size_choice_and_aspect_ratio():
    assert (job(size="portrait").spec.width, job(size="portrait").spec.height) == (768, 1280)
    wide = job("a cat --ar 16:9")
    assert (wide.spec.width, wide.spec.height) == (1280, 704)
    small = job("a cat --ar 16:9", preset={"width": 512, "height": 512}, preset_name="small")
    assert small.spec.width * small.spec.height <= 512 * 512
    assert small.spec.width > small.spec.height
    one_side = job("a cat --ar 16:9 --w 1024")
    assert (one_side.spec.width, one_side.spec.height) == (1024, 576)
    assert (job("a cat --ar 1:1", size="small-square").spec.width) == 512


def test_size_conflicts_are_refused():
    with pytest.raises(CommandError, match="keep one"):
        job(size="square", width=512)
    with pytest.raises(CommandError, match="drop --ar or one of them"):
        job("a cat --ar 16:9", width=512, height=512)


# ---- limits ---------------------------------------------------------------------------------

def test_steps_are_clamped_with_skip_steps_kept_in_proportion():
    parsed = job("a cat --steps 900", skip_steps=90, limits=JobLimits())
    assert (parsed.spec.steps, parsed.spec.skip_steps) == (500, 50)
    assert any(n.startswith("steps 900 → 500: this server allows at most 500 (max_steps)")
               for n in parsed.notes)


def test_a_skip_share_follows_the_steps_left_after_the_limits_unless_skip_steps_is_chosen():
    # Paint from this image skips half of the final steps: the server's cap lowers steps first,
    # so the share is not scaled down a second time (300 → 100 skips 50, not 17).
    for typed in (None, "steps=300"):
        job = build_job(DiscoOptions(prompt="a barn", settings=typed, skip_share=0.5),
                        limits=JobLimits(max_steps=100))
        assert (job.spec.steps, job.spec.skip_steps) == (100, 50), typed
        assert not any("skip_steps 50 →" in note for note in job.notes), job.notes
    chosen = build_job(DiscoOptions(prompt="a barn --skip 10", settings="steps=40", skip_share=0.5))
    assert (chosen.spec.steps, chosen.spec.skip_steps) == (40, 10)
    assert build_job(DiscoOptions(prompt="a barn", steps=2, skip_share=0.5)).spec.skip_steps == 1
    # A member's default skip_steps gives way to the share, and no note says it was used.
    own = build_job(DiscoOptions(prompt="a barn", skip_share=0.5), own_defaults={"skip_steps": 10})
    assert own.spec.skip_steps == 125 and not any("skip_steps=10" in note for note in own.notes), own.notes
    assert own.own_defaults == {}


def test_an_init_images_shape_sizes_the_render_unless_a_size_is_chosen():
    shaped = build_job(DiscoOptions(prompt="a barn", image_shape=(768, 1024)))
    assert (shaped.spec.width, shaped.spec.height) == (832, 1088)
    assert "the image's shape (768×1024) → 832×1088 (about the pixel count of 1280×768)" in shaped.notes
    for chosen in ({"prompt": "a barn --ar 16:9"}, {"prompt": "a barn", "size": "square"},
                   {"prompt": "a barn", "settings": "width=512"}):
        job = build_job(DiscoOptions(**chosen, image_shape=(768, 1024)))
        assert (job.spec.width, job.spec.height) in ((1280, 704), (960, 960), (512, 768)), chosen
        assert not any("image's shape" in note for note in job.notes)
    odd = build_job(DiscoOptions(prompt="a barn", image_shape=(1921, 1081)), limits=JobLimits())
    assert (odd.spec.width, odd.spec.height) == (1280, 704) and any("(1921×1081) → 1280×704" in n for n in odd.notes)
    strip = build_job(DiscoOptions(prompt="a barn", image_shape=(3200, 100)))
    assert abs(strip.spec.width / strip.spec.height / 16 - 1) <= 0.03  # within aspect_size's tolerance
    assert (f"the image's shape (3200×100) is squeezed to {strip.spec.width}×{strip.spec.height}: 16:1 is the "
            f"longest strip DD paints well — crop the image for another shape") in strip.notes
    tall = build_job(DiscoOptions(prompt="a barn", image_shape=(10, 4000)))
    assert abs(tall.spec.height / tall.spec.width / 16 - 1) <= 0.03


def test_size_over_the_limit_keeps_its_shape():
    parsed = job(width=2048, height=1024, limits=JobLimits(max_pixels=512 * 512))
    assert parsed.spec.width == 2 * parsed.spec.height
    assert parsed.spec.width * parsed.spec.height <= 512 * 512
    assert any("max_pixels" in n for n in parsed.notes)


def test_cuts_clamped_or_refused():
    parsed = job(cutn_batches=16, limits=JobLimits(max_cuts=64))
    assert parsed.spec.cutn_batches == 4 and parsed.cuts == 64
    assert any("max_cuts" in n for n in parsed.notes)
    with pytest.raises(CommandError, match="at most 10 cuts per step"):
        job(limits=JobLimits(max_cuts=10))


def test_images_clamped():
    parsed = job(n=10, limits=JobLimits(max_images=3))
    assert parsed.spec.n_batches == 3 and any("max_images" in n for n in parsed.notes)
    assert job().spec.n_batches == 1  # the bot's default, not DD's 50


def test_limits_from_storage_guild_limits():
    from storage.guilds import GuildLimits

    limits = JobLimits.from_guild(GuildLimits(max_steps=300), max_images=2)
    assert (limits.max_steps, limits.max_pixels, limits.max_images) == (300, 1280 * 768, 2)


# ---- seed -----------------------------------------------------------------------------------

def test_seed_is_settled():
    drawn = job()
    assert drawn.seed_was_random and drawn.spec.seed == random.Random(7).randint(0, 2**32 - 1)
    fixed = job(seed=42)
    assert not fixed.seed_was_random and fixed.spec.seed == 42


# ---- attachments ----------------------------------------------------------------------------

def test_attachment_checks():
    check_attachment("a.png", "image/png", 1000, 512, 512)
    check_attachment("a.JPG", None, 1000, 512, 512)
    # Discord measures only what it can show: a HEIC or TIFF comes without width and height,
    # and the download's decode holds it to the pixel cap (tests/bot/test_attachments.py).
    check_attachment("IMG_0001.HEIC", "image/heic", 1000, None, None)
    check_attachment("scan.tif", "application/octet-stream", 1000, None, None)
    cases = [
        (("a.pdf", "application/pdf", 10, 1, 1), f"attach a {FORMAT_LIST}"),
        (("a.zip", "application/octet-stream", 10, 1, 1), "is a '.zip' file"),
        (("a.heic", "image/heic", 30 * 2**20, None, None), "at most 10 MiB"),
        (("a.png", "image/png", 30 * 2**20, 512, 512), "at most 10 MiB"),
        (("a.png", "image/png", 100, 20000, 20000), "scale it down"),
    ]
    for args, needle in cases:
        with pytest.raises(CommandError, match=needle) as caught:
            check_attachment(*args, option="image_prompt")
        assert caught.value.param == "image_prompt" and caught.value.rule


# ---- robustness -----------------------------------------------------------------------------

soup = st.lists(st.sampled_from(
    ["a", "cat", " ", ":", "::", "|", "2", "-0.5", "--no", "--ar", "16:9", "--steps", "900",
     "--size", "square", "--w", "512", "--set", "skip_steps=5", "steps=3", ";", '"', "--n",
     "--seed", "x"]), max_size=24).map("".join)


@given(soup, st.one_of(st.none(), soup), st.sampled_from([None, "portrait"]),
       st.sampled_from([None, 64, 1000]))
@settings(max_examples=150, deadline=1000)
def test_any_request_builds_or_raises_spec_error(prompt, typed, size, steps):
    try:
        parsed = build_job(DiscoOptions(prompt=prompt, settings=typed, size=size, steps=steps),
                           limits=JobLimits(), rng=random.Random(0))
    except SpecError as err:  # CommandError included
        assert str(err)
    else:
        spec = parsed.spec
        assert spec.steps <= 500 and spec.width * spec.height <= 1280 * 768
        assert spec.seed is not None and spec.n_batches <= 4


@pytest.mark.parametrize("where", ["settings", "flag"])
def test_image_prompts_none_typed_anywhere_means_none(where):
    built = (job(settings="image_prompts=none") if where == "settings"
             else job(prompt="a lighthouse --image_prompts none"))
    assert built.spec.image_prompts == [] and built.image_prompts == []
