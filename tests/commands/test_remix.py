"""The ✏️ remix form (commands/remix.py): pre-filled from a spec, and every field's bound and
refusal; values then go through build_job like a typed /rerun (the spec's own bounds)."""
from __future__ import annotations

import pytest

from commands.errors import CommandError
from commands.job_options import DiscoOptions, build_job
from commands.remix import FIELD_KEYS, PROMPT_FIELD_MAX, REMIX_FIELDS, remix_defaults, remix_options
from engine.errors import SpecError
from engine.spec.render import RenderSpec

SPEC = RenderSpec.from_dict({"text_prompts": "a lighthouse:2 | yellow:-0.5", "steps": 50, "width": 128,
                             "height": 64, "seed": 3, "clip_guidance_scale": 7500})


def test_the_form_has_at_most_five_fields_within_discords_limits():
    assert len(REMIX_FIELDS) <= 5 and FIELD_KEYS[0] == "prompt"
    for field in REMIX_FIELDS:
        assert len(field.label) <= 45 and len(field.placeholder) <= 100 and 1 <= field.max_length <= 4000


def test_defaults_show_the_prompt_and_most_used_settings_and_read_back_unchanged():
    shown = remix_defaults(SPEC)
    assert shown == {"prompt": "a lighthouse:2 | yellow:-0.5", "steps": "50", "size": "128x64", "seed": "3",
                     "clip_guidance_scale": "7500"}
    options = remix_options(shown, shown)
    assert options == {"seed": 3}  # the rest, unchanged, is the job's own: its prompts exactly
    spec = build_job(DiscoOptions(**options), preset=SPEC.to_dict()).spec
    kept = ("text_prompts", "steps", "width", "height", "seed", "clip_guidance_scale")
    assert [getattr(spec, key) for key in kept] == [getattr(SPEC, key) for key in kept]


def test_a_flag_typed_into_the_prompt_wins_over_the_fields_left_as_shown():
    """`--steps 12 --ar 16:9` added to the prompt: the untouched steps and size fields are the
    job's values, not options that override the flags (and no note says they replaced them)."""
    shown = remix_defaults(SPEC)
    options = remix_options({**shown, "prompt": "a red lighthouse --steps 12 --ar 2:1 --cgs 900"}, shown)
    parsed = build_job(DiscoOptions(**options), preset=SPEC.to_dict())
    spec = parsed.spec
    assert (spec.steps, spec.clip_guidance_scale, spec.width / spec.height, spec.seed) == (12, 900, 2.0, 3)
    assert not [note for note in parsed.notes if "replaces" in note]
    edited = remix_options({**shown, "prompt": "a red lighthouse --steps 12", "steps": "30"}, shown)
    assert build_job(DiscoOptions(**edited), preset=SPEC.to_dict()).spec.steps == 30  # a changed field wins


def test_changed_fields_become_options():
    shown = remix_defaults(SPEC)
    values = {**shown, "prompt": "a red lighthouse", "size": "square", "seed": " ", "steps": "1_000"}
    options = remix_options(values, shown)
    assert options["prompt"] == "a red lighthouse" and options["size"] == "square"
    assert options["seed"] is None and options["steps"] == 1000


@pytest.mark.parametrize("field, text, rule", [
    ("steps", "many", "remix_field_number"),
    ("steps", "12.5", "remix_field_number"),
    ("seed", "0x10", "remix_field_number"),
    ("clip_guidance_scale", "nan", "remix_field_number"),
    ("clip_guidance_scale", "inf", "remix_field_number"),
    ("size", "64x", "remix_field_size"),
    ("size", "enormous", "remix_field_size"),
    ("prompt", "   ", "remix_field_required"),
    ("steps", "", "remix_field_required"),
    ("prompt", "x" * (PROMPT_FIELD_MAX + 1), "remix_field_length"),
    ("steps", "1" * 6, "remix_field_length"),
])
def test_each_bad_field_is_refused_naming_the_field_and_the_rule(field, text, rule):
    shown = remix_defaults(SPEC)
    with pytest.raises(CommandError) as caught:
        remix_options({**shown, field: text}, shown)
    assert caught.value.rule == rule and field in str(caught.value)


@pytest.mark.parametrize("field, text, param", [("steps", "5000", "steps"), ("size", "99999x64", "width"),
                                                ("clip_guidance_scale", "-3", "clip_guidance_scale")])
def test_out_of_bounds_values_get_the_spec_refusal_a_typed_option_gets(field, text, param):
    shown = remix_defaults(SPEC)
    options = remix_options({**shown, field: text}, shown)
    with pytest.raises(SpecError) as caught:
        build_job(DiscoOptions(**options), preset=SPEC.to_dict())
    assert param in str(caught.value)
