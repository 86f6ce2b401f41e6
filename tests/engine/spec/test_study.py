"""Study axes: parsing every kind of setting, the limits, errors naming the bad value, and the
study's cells sharing one seed with a canonical JSON round trip."""
from __future__ import annotations

import pytest

from engine.errors import SpecError
from engine.spec.render import RenderSpec
from engine.spec.study import StudySpec, build_study, parse_axis, split_values

BASE = RenderSpec.from_dict(dict(text_prompts="a lighthouse", width=64, height=64, steps=6,
                                 skip_steps=0, seed=7, n_batches=1))


@pytest.mark.parametrize("text,param,values", [
    ("clip_guidance_scale=1500,5000,15000", "clip_guidance_scale", (1500.0, 5000.0, 15000.0)),
    ("steps=4, 6", "steps", (4, 6)),
    ("eta=0,0.5,1", "eta", (0.0, 0.5, 1.0)),
    ("skip_augs=true,false", "skip_augs", (True, False)),
    ("sampling_mode=ddim,PLMS", "sampling_mode", ("ddim", "plms")),
    ("diffusion_sampling_mode=plms,ddim", "sampling_mode", ("plms", "ddim")),  # DD's alias
    ("diffusion_model=512x512_diffusion_uncond_finetune_008100,256x256_diffusion_uncond",
     "diffusion_model", ("512x512_diffusion_uncond_finetune_008100", "256x256_diffusion_uncond")),
    ("cut_ic_pow=[1]*1000,[4]*400+[1]*600", "cut_ic_pow", ("[1]*1000", "[4]*400+[1]*600")),
    ("clip_models=ViT-B-32::openai,ViT-B-32::openai+RN50::openai", "clip_models",
     (["ViT-B-32::openai"], ["ViT-B-32::openai", "RN50::openai"])),
    ("transformation_percent=[0.1, 0.5],[0.2]", "transformation_percent", ([0.1, 0.5], [0.2])),
    ('text_prompts="a cat, red","a dog"', "text_prompts",
     ([{"text": "a cat, red", "weight": 1.0}], [{"text": "a dog", "weight": 1.0}])),
    ("width=64,128", "width", (64, 128)),
    ("init_image=none,x.png", "init_image", (None, "x.png")),
])
def test_axis_kinds(text, param, values):
    axis = parse_axis(text, BASE)
    assert axis.param == param and axis.values == values
    assert len(axis.labels) == len(values)


def test_split_keeps_brackets_and_quotes_whole():
    assert split_values('[1]*500+[4]*500,[2]*1000') == ["[1]*500+[4]*500", "[2]*1000"]
    assert split_values('"a, b",c') == ['"a, b"', "c"]
    assert split_values("[0.1, 0.5],[0.2]") == ["[0.1, 0.5]", "[0.2]"]


@pytest.mark.parametrize("text,expected", [
    ("clip_guidance_scale=1500,abc", ["x axis", "'abc'", "allowed: 0..10000000"]),
    ("steps=1,4", ["steps value '1'", "allowed: 2..1000"]),
    ("sampling_mode=ddim,euler", ["'euler'", "ddim or plms"]),
    ("skip_augs=maybe", ["'maybe'", "true or false"]),
    ("cut_ic_pow=[1]*999", ["999 entries", "1000"]),
    ("clip_models=ViT-B-32::openai,NoSuchModel", ["NoSuchModel"]),
    ("clip_guidence_scale=1,2", ["did you mean 'clip_guidance_scale'"]),
    ("seed=1,2", ["seed cannot be varied", "shares"]),
    ("n_batches=1,2", ["n_batches cannot be varied"]),
    ("batch_name=a,b", ["batch_name cannot be varied"]),
    ("width_height=[64,64]", ["two axes"]),
    ("steps=4,,6", ["empty value"]),
    ("width=64,100", ["same setting"]),  # 100 rounds down to 64
    ("steps=" + ",".join(str(n) for n in range(2, 12)), ["at most 8"]),
    ("steps", ["param=value"]),
])
def test_axis_errors_name_the_value_and_what_is_allowed(text, expected):
    with pytest.raises(SpecError) as info:
        parse_axis(text, BASE)
    for part in expected:
        assert part in str(info.value)


def test_cells_share_seed_and_settings():
    study = build_study(BASE.replace(tv_scale=100), "clip_guidance_scale=1000,2000,3000",
                        "sampling_mode=ddim,plms")
    cells = study.cells()
    assert study.shape == (3, 2) and len(cells) == 6
    assert [(c.index, c.x_index, c.y_index) for c in cells[:4]] == [
        (0, 0, 0), (1, 1, 0), (2, 2, 0), (3, 0, 1)]
    assert {c.spec.seed for c in cells} == {7}
    assert {c.spec.n_batches for c in cells} == {1}
    assert cells[4].spec.clip_guidance_scale == 2000 and cells[4].spec.sampling_mode == "plms"
    # Every setting but the two axes is the base's.
    strip = lambda s: {k: v for k, v in s.to_dict().items()
                       if k not in ("clip_guidance_scale", "sampling_mode")}
    assert all(strip(c.spec) == strip(study.base) for c in cells)


def test_seed_is_fixed_when_missing():
    study = build_study(BASE.replace(seed=None), "eta=0,1")
    assert study.base.seed is not None
    assert {c.spec.seed for c in study.cells()} == {study.base.seed}


def test_limits_and_axis_rules():
    with pytest.raises(SpecError, match="both vary steps"):
        build_study(BASE, "steps=4,6", "steps=8,10")
    with pytest.raises(SpecError, match="at most 4"):
        build_study(BASE, "steps=4,6,8", "eta=0,1", max_cells=4)
    # A combination that is not a valid render is named.
    with pytest.raises(SpecError, match="steps=4, skip_steps=5"):
        build_study(BASE, "steps=4,8", "skip_steps=1,5")


def test_json_round_trip_is_canonical():
    study = build_study(BASE.replace(tv_scale=50), "cut_ic_pow=[1]*1000,[4]*1000",
                        "clip_models=ViT-B-32::openai,ViT-B-32::openai+RN50::openai")
    again = StudySpec.from_json(study.to_json())
    assert again == study and again.to_json() == study.to_json()
    with pytest.raises(SpecError):
        StudySpec.from_json(study.to_json().replace('"steps":6', '"steps":1'))


def test_header_lists_fixed_non_default_settings():
    study = build_study(BASE.replace(tv_scale=100), "clip_guidance_scale=1,2")
    lines = study.header_lines()
    assert lines[0] == "a lighthouse" and lines[1] == "seed 7"
    assert "tv_scale=100" in lines[2] and "clip_guidance_scale" not in lines[2]
    assert "range_scale" not in lines[2]  # at DD's default
