"""key=value settings as typed on the CLI and in the bot (engine/spec/overrides.py)."""
from __future__ import annotations

import pytest

from engine.errors import SpecError
from engine.spec.animation import AnimationSpec
from engine.spec.overrides import MAX_OPTIONS, apply_overrides, parse_set_options, split_animation_options
from engine.spec.prompts import WeightedPrompt
from engine.spec.render import RenderSpec


def test_parse_set_options_reads_literals_without_eval():
    options = parse_set_options(
        'steps=100; eta=0.5; skip_augs=true; seed=none; text_prompts=a cat:2 | dog:-0.5; '
        'cut_overview=[12]*400+[4]*600; transformation_percent=[0.09, 0.5]; '
        "batch_name=2024; init_image='my;file.png'; clip_models=ViT-B-32::openai,RN50"
    )
    assert options == {
        "steps": 100, "eta": 0.5, "skip_augs": True, "seed": None,
        "text_prompts": "a cat:2 | dog:-0.5", "cut_overview": "[12]*400+[4]*600",
        "transformation_percent": [0.09, 0.5], "batch_name": "2024",
        "init_image": "my;file.png", "clip_models": "ViT-B-32::openai,RN50",
    }
    assert parse_set_options(["text_prompts=a; b", "Set-Seed=5", "width_height=[512, 448]"]) == {
        "text_prompts": "a; b", "seed": 5, "width": 512, "height": 448}
    assert parse_set_options(None) == {} and parse_set_options("") == {}
    assert parse_set_options(['text_prompts="quoted \\"x\\""']) == {"text_prompts": 'quoted "x"'}
    assert parse_set_options(["sampling_mode=plms"]) == {"sampling_mode": "plms"}


@pytest.mark.parametrize("text", [
    "steps=150, eta=0.5", "steps: 150; eta: 0.5", '"steps": 150, "eta": 0.5,', '{"steps": 150, "eta": 0.5}',
    "steps:150\neta:0.5",
])
def test_lines_pasted_from_a_dd_settings_file_read_as_key_value(text):
    assert parse_set_options(text) == {"steps": 150, "eta": 0.5}


def test_commas_and_colons_inside_values_stay_values():
    assert parse_set_options("clip_models=ViT-B-32::openai, RN50::openai, steps=9") == {
        "clip_models": "ViT-B-32::openai, RN50::openai", "steps": 9}
    assert parse_set_options("text_prompts=a storm, at night:2 | calm:-1") == {
        "text_prompts": "a storm, at night:2 | calm:-1"}
    assert parse_set_options("transformation_percent=[0.1, 0.5], cut_overview: [12]*400+[4]*600") == {
        "transformation_percent": [0.1, 0.5], "cut_overview": "[12]*400+[4]*600"}
    assert parse_set_options('text_prompts="a, steps=3"') == {"text_prompts": "a, steps=3"}  # quoted
    with pytest.raises(SpecError, match="expected key=value, found 'a storm: 2'"):
        parse_set_options("a storm: 2")  # not a setting's name: not read as one


@pytest.mark.parametrize("options,words", [
    (["stepz=5"], "stepz: unknown setting; did you mean 'steps'?"),
    (["clip_guidance=5"], "did you mean 'clip_guidance_scale'?"),
    (["zoom=0: (1.1)"], "zoom: an animation setting, for animations only (/animate, disco animate)"),
    ("turbo_mode=true", "turbo_mode: an animation setting"),
    (["steps"], "expected key=value"),
    (["=5"], "expected key=value"),
    ("steps=5; steps=6", "steps: given twice"),
    (["width_height=5"], "expected [width, height]"),
    (["x=1"] * 65, "at most 64"),
])
def test_parse_set_options_errors(options, words):
    with pytest.raises(SpecError) as info:
        parse_set_options(options)
    assert words in str(info.value)


def test_apply_overrides_validates_the_result():
    spec = apply_overrides(RenderSpec(), "steps=100; text_prompts=a storm:2 | calm:-1")
    assert spec.steps == 100 and spec.text_prompts[1] == WeightedPrompt("calm", -1.0)
    with pytest.raises(SpecError, match="steps: 'many' is not a whole number"):
        apply_overrides(spec, ["steps=many"])
    with pytest.raises(SpecError, match="at position 5: expected a whole number after"):
        apply_overrides(spec, ["cut_overview=[0]*9**9**9"])


def test_animation_settings_are_split_off_typed_and_the_rest_left_as_text():
    animation, rest = split_animation_options(
        'max_frames=30; zoom=0: (1.02); frames_skip_steps=60%; turbo_mode=true; fps="24"; '
        "animation-mode=3D; steps=50; eta=0.5; b=; not an option")
    assert animation == {"max_frames": 30, "zoom": "0: (1.02)", "frames_skip_steps": "60%",
                         "turbo_mode": True, "fps": "24", "animation_mode": "3D"}
    assert rest == [" steps=50", " eta=0.5", " b=", " not an option"]
    assert split_animation_options(None) == ({}, [])
    assert split_animation_options(["render=1"]) == ({}, ["render=1"])  # never the nested render
    spec = AnimationSpec(**animation, render=RenderSpec.from_dict(parse_set_options(rest[:2])))
    assert (spec.max_frames, spec.fps, spec.render.steps, spec.render.eta) == (30, 24, 50, 0.5)
    with pytest.raises(SpecError, match=f"at most {MAX_OPTIONS} settings"):
        split_animation_options(["fps=1"] * (MAX_OPTIONS + 1))
    with pytest.raises(SpecError, match="too long"):
        split_animation_options("x" * 2_000_000)
