"""The echo of a queued job, refusals, and the /disco recipe that gives the same spec back."""
from __future__ import annotations

import random
import re

from hypothesis import HealthCheck, assume, given, settings, strategies as st

from commands.defaults import defaults_here
from commands.echo import DISCORD_LIMIT, NO_ENGINE, format_echo, format_refusal, recipe, recipe_options
from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits, build_job
from engine.errors import SpecError
from engine.models.registry import DIFFUSION_MODEL_NAMES
from engine.spec.render import RenderSpec

BIG = JobLimits(max_steps=1000, max_pixels=4096 * 4096, max_cuts=10**6, max_images=100)
RECIPE = re.compile(r"\s*/disco(?:\s+prompt:(?P<prompt>.*?))?(?:\s+settings:(?P<settings>.*))?\s*",
                    re.DOTALL)


def parse_recipe(text: str) -> DiscoOptions:
    """The options Discord hands the bot when a `recipe` is pasted back (the prompt never
    contains 'settings:')."""
    match = RECIPE.fullmatch(text)
    assert match, f"not a /disco recipe: {text!r}"
    return DiscoOptions(prompt=(match.group("prompt") or "").strip(), settings=match.group("settings"))


def queued(prompt="a lighthouse::2 storm --no fog --steps 900", **kwargs):
    return build_job(DiscoOptions(prompt=prompt, **kwargs), rng=random.Random(1))


def test_echo_shows_queue_prompts_settings_and_notes():
    text = format_echo(queued(n=9), position=3, starts_at=1700000000.5, finishes_at=1700000600,
                       job_id="j42")
    assert text.startswith("**Queued** `j42` · #3 in line · starts <t:1700000000:R> · "
                           "done <t:1700000600:R>")
    # --no fog weighs -0.5 × (2 + 1); DD divides every weight by the sum, 1.5
    assert "`a lighthouse` 2 → 1.333" in text and "`fog` −1.5 → −1" in text
    assert "1280×768 · steps 500 · seed " in text and "(random)" in text
    assert "n\\_batches = `4`" in text
    assert "steps 900 → 500" in text and "max\\_images" in text
    assert len(text) <= DISCORD_LIMIT


def test_echo_with_no_engine_up_says_what_the_job_waits_for_instead_of_an_eta():
    text = format_echo(queued(), position=2, starts_at=1700000000, finishes_at=1700000600, workers=0,
                       job_id="j42")
    assert text.startswith(f"**Queued** `j42` · #2 in line · {NO_ENGINE}\n") and "<t:" not in text
    assert "/disco-admin workers" in NO_ENGINE


def test_a_description_is_echoed_in_two_lines_without_its_placeholder_prompt_or_settings():
    job = build_job(DiscoOptions(prompt="an image to describe", settings="describe=true; clip_models=ViT-B-32::openai",
                                 init_image="image_pic.png"), rng=random.Random(1))
    text = format_echo(job, position=1, starts_at=1700000000, finishes_at=1700000600, job_id="j42")
    assert text == ("**Queued** `j42` · next in line · starts <t:1700000000:R> · done <t:1700000600:R>\n"
                    "Describing the image with ViT-B-32::openai; the prompt it reads is posted here, with ▶ to "
                    "paint it."), text


def test_echo_defuses_mentions_and_markdown():
    text = format_echo(queued("@everyone `tick` **bold**"))
    assert "@everyone" not in text
    assert "`@\u200beveryone ˋtickˋ **bold**`" in text  # in a code span: no markdown


def test_echo_fits_one_message_however_much_there_is():
    long_prompts = [{"text": f"{'long words ' * 80}{i}", "weight": 1} for i in range(16)]
    job = build_job(DiscoOptions(), preset={"text_prompts": long_prompts}, preset_name="long")
    job.notes.extend(f"note {i}: " + "x" * 250 for i in range(40))
    text = format_echo(job, position=99, starts_at=1, finishes_at=2, job_id="x" * 100)
    assert len(text) <= DISCORD_LIMIT
    assert "more" in text and "**Notes**" in text and "**Settings**" in text


def test_refusal_names_the_rule_and_escapes_markdown():
    text = format_refusal(SpecError("cut_overview: [12]*400 is short; fix: e.g. [12]*1000"))
    assert text == "**Not queued:** cut\\_overview: \\[12]\\*400 is short; fix: e.g. \\[12]\\*1000"
    assert "max\\_cuts" in format_refusal(CommandError("over max_cuts", rule="max_cuts"))
    assert "went wrong" in format_refusal(RuntimeError("secret path /srv/x"))
    # A channel named in a refusal stays a link; only a line-starting ">" would quote.
    assert format_refusal(CommandError("use <#400> > 2\n> quoted")) == "**Not queued:** use <#400> > 2\n\\> quoted"


def test_recipe_round_trips_a_simple_job():
    job = queued("a lighthouse:2 | storm:-0.5 --ar 16:9 --set eta=0.5")
    text = recipe(job.spec)
    assert text.startswith("/disco prompt:a lighthouse:2 | storm:-0.5 settings:height=704;")
    assert build_job(parse_recipe(text), limits=BIG).spec == job.spec


def test_recipe_moves_unreadable_prompts_into_settings():
    tricky = 'a::b settings: "x;y" --no z'
    spec = RenderSpec.from_dict({"text_prompts": [{"text": tricky, "weight": 2},
                                                  {"text": "fog", "weight": -0.5}], "seed": 5})
    options = recipe_options(spec)
    assert "prompt" not in options and options["settings"].startswith("text_prompts=[")
    assert build_job(parse_recipe(recipe(spec)), limits=BIG).spec == spec


def test_recipe_pins_what_the_server_defaults_would_change():
    defaults = {"steps": 150, "clip_guidance_scale": 9000}
    spec = RenderSpec.from_dict({"text_prompts": "a cat", "seed": 9, "n_batches": 1})
    rebuilt = build_job(parse_recipe(recipe(spec, defaults=defaults)), limits=BIG,
                        guild_defaults=defaults).spec
    assert rebuilt == spec and "steps=250" in recipe(spec, defaults=defaults)


def test_recipe_pins_what_the_members_own_defaults_would_change():
    """📋 writes the recipe against every default the clicker's job starts from here
    (`defaults_here`: server, channel, their own), so pasting it gives the spec back to them."""
    server, own = {"steps": 150}, {"eta": 0.5, "clip_guidance_scale": 9000}
    spec = RenderSpec.from_dict({"text_prompts": "a cat", "seed": 9, "n_batches": 1, "eta": 0.5})
    here = defaults_here(server, own)
    written = recipe(spec, defaults=here)
    assert "eta" not in written and "clip_guidance_scale=5000" in written and "steps=250" in written
    rebuilt = build_job(parse_recipe(written), limits=BIG, guild_defaults=server, own_defaults=own).spec
    assert rebuilt == spec
    older = build_job(parse_recipe(recipe(spec, defaults=server)), limits=BIG, guild_defaults=server,
                      own_defaults=own).spec
    assert older.clip_guidance_scale == 9000  # what a recipe against the server's alone would give
    # 📋 also holds against the server's alone: shared, it gives the spec to a member without defaults.
    shared = recipe(spec, defaults=here, shared=server)
    assert "eta=0.5" in shared and "clip_guidance_scale=5000" in shared and "steps=250" in shared
    for theirs in (own, {}, {"eta": 0.2}):
        assert build_job(parse_recipe(shared), limits=BIG, guild_defaults=server, own_defaults=theirs).spec == spec


text_piece = st.one_of(
    st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="|"),
            min_size=1, max_size=20),
    st.lists(st.sampled_from(["a", "cat", ":", "::", "2", "--no", "\u2014x", "settings:", '"', ";",
                              "[", "=", "@", "`", "prompt:", " ", "\\", "'", "-0.5"]),
             min_size=1, max_size=8).map("".join),
).filter(lambda text: text.strip())


@st.composite
def specs(draw):
    steps = draw(st.integers(2, 1000))
    data = {
        "text_prompts": [{"text": t, "weight": w} for t, w in draw(st.lists(
            st.tuples(text_piece, st.floats(-10, 10, allow_nan=False)), min_size=1, max_size=4))],
        "seed": draw(st.integers(0, 2**32 - 1)),
        "steps": steps, "skip_steps": draw(st.integers(0, steps - 1)),
        "width": draw(st.integers(1, 32)) * 64, "height": draw(st.integers(1, 32)) * 64,
        "clip_guidance_scale": draw(st.floats(0, 1e5)),
        "eta": draw(st.floats(0, 1)),
        "cutn_batches": draw(st.integers(1, 8)),
        "n_batches": draw(st.integers(1, 10)),
        "diffusion_model": draw(st.sampled_from(DIFFUSION_MODEL_NAMES)),
        "sampling_mode": draw(st.sampled_from(["ddim", "plms"])),
        "skip_augs": draw(st.booleans()),
        "clip_models": draw(st.lists(st.sampled_from(["ViT-B-32::openai", "RN50::openai",
                                                      "ViT-B-32::laion2b_e16"]),
                                     min_size=1, max_size=3, unique=True)),
        "cut_overview": draw(st.sampled_from(["[12]*400+[4]*600", "[8]*1000", "[14]*200+[2]*800"])),
        "transformation_percent": draw(st.lists(st.floats(0.01, 0.99), max_size=3)),
        "intermediate_saves": draw(st.integers(0, 3)),
        "batch_name": draw(st.sampled_from(["TimeToDisco", "my run", "a  b", "x.y-z"])),
    }
    try:
        return RenderSpec.from_dict(data)
    except SpecError:
        assume(False)


@given(specs())
@settings(max_examples=60, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
def test_recipe_round_trips_random_specs(spec):
    assert build_job(parse_recipe(recipe(spec)), limits=BIG).spec == spec
