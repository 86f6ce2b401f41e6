"""RenderSpec: DD defaults, every bound, teaching errors, notes, canonical JSON, overrides."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from engine.errors import SpecError
from engine.spec.fields import CLIP_MODELS, safe_batch_name
from engine.spec.prompts import WeightedPrompt, normalized_weights
from engine.spec.render import (
    SCHEMA_VERSION,
    SPEC_FIELDS,
    CutStep,
    RenderSpec,
)
from engine.spec.overrides import apply_overrides, parse_set_options


def error_of(**settings_) -> SpecError:
    with pytest.raises(SpecError) as info:
        RenderSpec.from_dict(settings_)
    return info.value


# ---- defaults ------------------------------------------------------------------------------

def test_defaults_are_dd_57():
    spec = RenderSpec()
    assert spec.text_prompts[0].text.startswith("A beautiful painting of a singular lighthouse")
    assert spec.text_prompts[0].text.endswith("Trending on artstation.")
    assert spec.text_prompts[1] == WeightedPrompt("yellow color scheme", 1.0)
    assert (spec.width, spec.height, spec.steps, spec.skip_steps) == (1280, 768, 250, 10)
    assert (spec.clip_guidance_scale, spec.tv_scale, spec.range_scale, spec.sat_scale) == (
        5000, 0, 150, 0)
    assert (spec.cutn_batches, spec.init_scale, spec.eta, spec.clamp_max) == (4, 1000, 0.8, 0.05)
    assert spec.clip_models == ["ViT-B-32::openai", "ViT-B-16::openai", "RN50::openai"]
    assert spec.cut_overview == "[12]*400+[4]*600" and spec.cut_icgray_p == "[0.2]*400+[0]*600"
    assert spec.diffusion_model == "512x512_diffusion_uncond_finetune_008100"
    assert spec.sampling_mode == "ddim" and spec.perlin_mode == "mixed" and spec.seed is None
    assert spec.n_batches == 50 and spec.batch_name == "TimeToDisco" and spec.notes == ()
    assert spec.transformation_percent == [0.09] and spec.intermediate_saves == 0


def test_spec_fields_document_every_field():
    assert set(SPEC_FIELDS) == set(RenderSpec.model_fields)
    assert all("(" in line and line.endswith(")") for line in SPEC_FIELDS.values())
    assert SCHEMA_VERSION == 1


def test_spec_is_immutable_and_replace_revalidates():
    spec = RenderSpec()
    with pytest.raises(Exception):
        spec.steps = 10  # type: ignore[misc]
    assert spec.replace(steps=100).steps == 100 and spec.steps == 250
    with pytest.raises(SpecError, match="steps: 0 is below the minimum"):
        spec.replace(steps=0)


# ---- every bound -----------------------------------------------------------------------------

@pytest.mark.parametrize("field,bad,words", [
    ("width", 63, "below the minimum; allowed: 64..4096"),
    ("width", 4097, "above the maximum"),
    ("height", "tall", "not a whole number"),
    ("steps", 1, "below the minimum; allowed: 2..1000"),
    ("steps", 1001, "above the maximum"),
    ("steps", 2.5, "not a whole number"),
    ("steps", True, "not a whole number"),
    ("skip_steps", -1, "below the minimum"),
    ("clip_guidance_scale", -1, "below the minimum; allowed: 0..10000000"),
    ("clip_guidance_scale", 1e8, "above the maximum"),
    ("clip_guidance_scale", float("nan"), "not a finite number"),
    ("tv_scale", float("inf"), "not a finite number"),
    ("range_scale", -0.1, "below the minimum"),
    ("sat_scale", "lots", "not a number"),
    ("init_scale", 10**400, "not a finite number"),
    ("init_scale", "1e400", "'1e400' is not a finite number (too large, or nan)"),  # as typed, not inf
    ("cutn_batches", 0, "allowed: 1..64"),
    ("cutn_batches", 65, "above the maximum"),
    ("skip_augs", "maybe", "not true or false"),
    ("init_image", 5, "not a path or URL"),
    ("init_image", "x" * 1001, "1001 characters"),
    ("init_image", "a\x00b", "U+0000"),
    ("diffusion_model", "512x512_diffusion", "did you mean '512x512_diffusion_uncond"),
    ("use_secondary_model", 2, "not true or false"),
    ("sampling_mode", "ddmi", "did you mean 'ddim'"),
    ("sampling_mode", 1, "not a name"),
    ("clip_models", [], "0 models given"),
    ("clip_models", ["RN50"] * 9, "9 models given"),
    ("clip_models", ["RN50", "RN50::openai"], "RN50::openai is listed twice"),
    ("clip_models", ["ViT-B-33::openai"], "did you mean 'ViT-B-32::openai'"),
    ("clip_models", [3], "not a model name"),
    ("clip_models", 3, "not a list of model names"),
    ("cut_overview", "[65]*1000", "above the maximum 64"),
    ("cut_innercut", "[1.5]*1000", "whole number"),
    ("cut_ic_pow", "[101]*1000", "above the maximum 100"),
    ("cut_icgray_p", "[1.5]*1000", "above the maximum 1"),
    ("cut_icgray_p", "[0.2]*400", "has 400 entries; it needs exactly 1000"),
    ("perlin_mode", "colour", "did you mean 'color'"),
    ("seed", -1, "below the minimum; allowed: 0..4294967295 or none"),
    ("seed", 2**32, "above the maximum"),
    ("seed", "lucky", "not a whole number"),
    ("eta", 1.5, "above the maximum; allowed: 0..1"),
    ("eta", -0.1, "below the minimum"),
    ("clamp_max", 0, "not above 0"),
    ("clamp_max", 11, "above the maximum"),
    ("rand_mag", -1, "below the minimum"),
    ("use_vertical_symmetry", "sideways", "not true or false"),
    ("transformation_percent", [0], "not between 0 and 1"),
    ("transformation_percent", [1], "not between 0 and 1"),
    ("transformation_percent", [0.1] * 17, "17 values given"),
    ("intermediate_saves", -1, "below the minimum"),
    ("intermediate_saves", [0], "below the minimum"),
    ("intermediate_saves", list(range(1, 102)), "101 steps listed"),
    ("display_rate", 0, "below the minimum"),
    ("n_batches", 101, "above the maximum; allowed: 1..100"),
    ("use_checkpoint", None, "not true or false"),
    ("batch_name", ["x"], "not text"),
    ("text_prompts", "fog:nan", "finite"),
    ("text_prompts", 5, "got int"),
    ("image_prompts", [""], "prompt 1 is empty"),
])
def test_each_bound_is_a_teaching_error(field, bad, words):
    err = error_of(**{field: bad})
    message = str(err)
    assert err.param == field and message.startswith(f"{field}: ")
    assert words in message
    assert "allowed:" in message or "—" in message  # a range, or the parser's own advice


def test_all_problems_are_listed_in_one_error():
    err = error_of(steps=0, width=10, sampling_mode="x", seed=-5)
    message = str(err)
    assert message.startswith("4 settings are invalid:")
    for field in ("steps", "width", "sampling_mode", "seed"):
        assert f"\n- {field}: " in message
    assert err.param is None


@pytest.mark.parametrize("settings_,field,words", [
    ({"steps": 50, "skip_steps": 50}, "skip_steps", "leave nothing to do with steps=50"),
    ({"steps": 50, "intermediate_saves": 51}, "intermediate_saves", "beyond the last step"),
    ({"steps": 50, "intermediate_saves": [10, 60]}, "intermediate_saves", "60 is beyond"),
    ({"text_prompts": [], "image_prompts": []}, "text_prompts", "no text or image prompts"),
    ({"text_prompts": "a:1 | b:-1"}, "text_prompts", "the weights sum to 0"),
    ({"text_prompts": "a:1", "image_prompts": "x.png:-1"}, "text_prompts", "sum to 0"),
    ({"cut_overview": "[0]*1000", "cut_innercut": "[4]*400+[0]*600"}, "cut_innercut",
     "no cuts at positions 401..1000"),
])
def test_rules_across_fields(settings_, field, words):
    err = error_of(**settings_)
    assert err.param == field and words in str(err)


def test_without_clip_guidance_no_prompts_or_cuts_are_needed():
    spec = RenderSpec.from_dict({"clip_guidance_scale": 0, "text_prompts": [],
                                 "cut_overview": "[0]*1000", "cut_innercut": "0"})
    assert spec.text_prompts == [] and spec.cut_schedule(500).overview == 0


# ---- accepted forms and canonical values ------------------------------------------------------

def test_friendly_forms_are_normalised():
    spec = RenderSpec.from_dict({
        "steps": "100", "skip_steps": 5.0, "eta": "0.5", "seed": "random", "skip_augs": "yes",
        "clip_models": "ViT-B/32, rn50x4 | ViT-B-32::laion2b_e16, RN50_yffcc15m, ViTL14_336px",
        "sampling_mode": "PLMS", "perlin_mode": "Gray", "transformation_percent": 0.5,
        "intermediate_saves": [30, 10, 10], "init_image": "  none ", "cut_overview": 8,
        "cut_innercut": " [4] * 1000 ",
    })
    assert (spec.steps, spec.skip_steps, spec.eta, spec.seed, spec.skip_augs) == (
        100, 5, 0.5, None, True)
    assert spec.clip_models == ["ViT-B-32::openai", "RN50x4::openai", "ViT-B-32::laion2b_e16",
                                "RN50::yfcc15m", "ViT-L-14-336::openai"]
    assert (spec.sampling_mode, spec.perlin_mode) == ("plms", "gray")
    assert spec.transformation_percent == [0.5] and spec.intermediate_saves == [10, 30]
    assert spec.init_image is None
    assert (spec.cut_overview, spec.cut_innercut) == ("[8]*1000", "[4]*1000")
    assert RenderSpec(intermediate_saves=[]).intermediate_saves == 0


def test_every_allowed_clip_model_is_accepted():
    for name in CLIP_MODELS:
        assert RenderSpec(clip_models=[name]).clip_models == [name]


@pytest.mark.parametrize("field,value,kept,note", [
    ("width", 1000, 960, "width 1000 is not a multiple of 64: using 960"),
    ("height", 100, 64, "height 100 is not a multiple of 64: using 64"),
    ("width", 4096, 4096, None),
])
def test_sides_round_down_to_64_with_a_note(field, value, kept, note):
    spec = RenderSpec.from_dict({field: value})
    assert getattr(spec, field) == kept
    assert spec.notes == ((note,) if note else ())


@pytest.mark.parametrize("raw,safe", [
    ("../../etc/passwd", "etc_passwd"),
    ("/etc/passwd", "etc_passwd"),
    ("C:\\Windows\\system32", "C_Windows_system32"),
    ("..", "TimeToDisco"),
    (".hidden", "hidden"),
    ("a\x00b", "a_b"),
    ("café ☕ night", "cafe _ night"),
    ("日本語", "TimeToDisco"),
    ("", "TimeToDisco"),
    ("CON", "CON_"),
    ("-rf", "rf"),
    ("x" * 200, "x" * 64),
    ("My Batch_01.v2", "My Batch_01.v2"),
])
def test_batch_name_is_made_safe(raw, safe):
    spec = RenderSpec(batch_name=raw)
    assert spec.batch_name == safe == safe_batch_name(raw)
    assert "/" not in safe and "\\" not in safe and ".." not in safe and not safe.startswith(".")
    if raw != safe:
        assert any(note.startswith("batch_name ") for note in spec.notes)
    else:
        assert spec.notes == ()


# ---- schedules at run time ----------------------------------------------------------------------

def test_cut_schedule_uses_dd_indexing():
    spec = RenderSpec()
    assert spec.cut_schedule(1000) == CutStep(12, 4, 1.0, 0.2)  # t = 999, the first step
    assert spec.cut_schedule(601) == CutStep(12, 4, 1.0, 0.2)
    assert spec.cut_schedule(600) == CutStep(4, 12, 1.0, 0.0)
    assert spec.cut_schedule(1) == CutStep(4, 12, 1.0, 0.0)
    schedules = spec.schedules()
    assert all(len(values) == 1000 for values in schedules)
    assert spec.schedules() is schedules  # parsed once
    assert normalized_weights(spec.text_prompts + spec.image_prompts) == [0.5, 0.5]


def test_prompt_summary_uses_the_prompt_syntax():
    spec = RenderSpec(text_prompts="a storm:2 | calm | fog:-0.5")
    assert spec.prompt_summary() == "a storm:2 | calm | fog:-0.5"


# ---- canonical JSON ---------------------------------------------------------------------------

def test_json_is_canonical_and_round_trips():
    spec = RenderSpec.from_dict({"text_prompts": "a:2 | b:-0.5", "width": 1000, "eta": 0.5,
                                 "clip_guidance_scale": 7000,
                                 "cut_overview": "[12]*200+[12]*200+[4]*600"})
    text = spec.to_json()
    data = json.loads(text)
    assert list(data) == sorted(data) and data["schema_version"] == 1
    assert data["text_prompts"] == [{"text": "a", "weight": 2.0}, {"text": "b", "weight": -0.5}]
    assert data["cut_overview"] == "[12]*400+[4]*600" and data["clip_guidance_scale"] == 7000.0
    assert "notes" not in data and "_notes" not in text
    again = RenderSpec.from_json(text)
    assert again.to_json() == text and again == spec and hash(again) == hash(spec)
    assert again.notes == () and spec.notes  # the note stays with the spec that was rounded


def test_equal_specs_give_identical_bytes():
    one = RenderSpec.from_dict({"clip_guidance_scale": 5000, "width": "1280", "seed": 7,
                                "text_prompts": [{"text": "sea", "weight": 1}]})
    two = RenderSpec.from_dict({"clip_guidance_scale": 5000.0, "width": 1280, "seed": "7",
                                "text_prompts": "sea"})
    assert one == two and one.to_json() == two.to_json()
    assert RenderSpec(tv_scale=-0.0).to_json() == RenderSpec(tv_scale=0).to_json()


@pytest.mark.parametrize("text,words", [
    ("{", "not valid JSON: line 1, column 2"),
    ("[1, 2]", "must be a mapping"),
    ('{"steps": 1' + "0" * 5000 + "}", "cannot be read"),
    ("[" * 100_000 + "]" * 100_000, "cannot be read"),
    ("x" * 1_000_001, "at most 1000000"),
    (b"\xff\xfe", "not UTF-8"),
    ('{"stepz": 5}', "stepz: unknown setting; did you mean 'steps'?"),
    ('{"schema_version": 2}', "this engine reads version 1"),
    ('{"steps": NaN}', "not a finite number"),
])
def test_from_json_errors(text, words):
    with pytest.raises(SpecError) as info:
        RenderSpec.from_json(text)
    assert words in str(info.value)


def test_from_dict_rejects_non_text_keys_and_non_dicts():
    with pytest.raises(SpecError, match="names must be text"):
        RenderSpec.from_dict({1: 2})
    with pytest.raises(SpecError, match="mapping"):
        RenderSpec.from_dict(None)


# ---- hostile input: SpecError or a spec, nothing else, quickly ---------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(sorted(RenderSpec.model_fields))


@given(st.dictionaries(field_names | st.text(max_size=12), json_values, max_size=6))
@settings(max_examples=300, deadline=200)
def test_any_dict_builds_a_spec_or_raises_spec_error(data):
    try:
        spec = RenderSpec.from_dict(data)
    except SpecError as err:
        assert str(err)
    else:
        assert RenderSpec.from_json(spec.to_json()) == spec


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=200)
def test_any_text_as_json_or_overrides_is_safe(text):
    for build in (RenderSpec.from_json, lambda t: apply_overrides(RenderSpec(), t)):
        try:
            build(text)
        except SpecError:
            pass


@pytest.mark.parametrize("empty", ["none", "None", " null ", ""])
def test_image_prompts_none_means_no_image_prompts(empty):
    assert RenderSpec.from_dict({"image_prompts": empty}).image_prompts == []
    assert RenderSpec.from_dict(parse_set_options([f"image_prompts={empty}"])).image_prompts == []
