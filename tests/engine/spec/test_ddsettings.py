"""DD *_settings.txt import and export: frame-0 prompts, CLIP checkboxes, reports, round trip."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from engine.errors import SpecError
from engine.media.files import save_json
from engine.spec.ddsettings import export_dd_settings, import_dd_settings
from engine.spec.fields import DD_CLIP_FLAGS
from engine.spec.prompts import WeightedPrompt
from engine.spec.render import RenderSpec
from tests.support import FIXTURES

FIXTURE = FIXTURES / "dd57_lantern_settings.txt"


def fixture_data() -> dict:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


def settings_text(spec: RenderSpec, folder: Path) -> str:
    """The settings file as a render writes it: `export_dd_settings` through `save_json`."""
    return save_json(folder / "run(0)_settings.txt", export_dd_settings(spec)).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def settings_folder(tmp_path_factory) -> Path:
    """One folder for the property test's examples (hypothesis reruns a test, not its fixtures)."""
    return tmp_path_factory.mktemp("settings")


def test_realistic_dd_file_imports():
    spec, report = import_dd_settings(FIXTURE.read_text(encoding="utf-8"))
    assert spec.text_prompts == [
        WeightedPrompt("A paper lantern festival over a misty river at dusk, matte painting by "
                       "ivan aivazovsky, trending on artstation", 3.0),
        WeightedPrompt("warm orange and teal color scheme", 1.5),
        WeightedPrompt("blurry, watermark", -1.0),
    ]
    assert spec.image_prompts == [] and spec.init_image is None
    assert (spec.width, spec.height, spec.steps, spec.skip_steps) == (1024, 576, 240, 12)
    assert (spec.clip_guidance_scale, spec.clamp_max, spec.seed) == (7500, 0.07, 3141592653)
    assert spec.sampling_mode == "ddim"  # from diffusion_sampling_mode, not 3D's 'bicubic'
    assert spec.clip_models == ["ViT-B-32::openai", "ViT-B-16::openai", "RN50::openai",
                                "RN50x4::openai", "RN50::yfcc15m"]
    assert spec.cut_overview == "[12]*400+[4]*600"
    assert "text_prompts: frames 120 ignored; still images use frame 0" in report
    ignored = next(line for line in report if line.startswith("ignored for still images"))
    for key in ("zoom", "translation_z", "video_init_path", "turbo_mode", "sampling_mode",
                "max_frames", "frames_skip_steps"):
        assert key in ignored
    assert "diffusion_steps: ignored (derived from steps)" in report
    assert any(line.startswith("randomize_class: ignored") for line in report)
    assert not any("unknown" in line for line in report)


def test_unknown_keys_are_reported_not_dropped():
    data = fixture_data()
    data["fovv"] = 41
    data["my_custom_flag"] = True
    _, report = import_dd_settings(data)
    assert ("fovv: unknown key, not a Disco Diffusion 5.x setting; not used "
            "(did you mean 'fov'?)") in report
    assert any(line.startswith("my_custom_flag: unknown key") for line in report)


def test_many_unknown_keys_are_summarised_quickly():
    _, report = import_dd_settings({"steps": 50, **{f"key_{i}": i for i in range(50_000)}})
    assert len(report) == 21 and report[-1] == "… and 49980 more unknown keys, not used"


def test_accepts_bytes_dict_and_dd_alternatives():
    data = {"text_prompts": ["a storm:2", "calm"], "set_seed": "random_seed",
            "width_height": [1000, 720], "sampling_mode": "plms", "ViTB32": True, "RN50": False}
    spec, report = import_dd_settings(json.dumps(data).encode())
    assert spec.text_prompts == [WeightedPrompt("a storm", 2.0), WeightedPrompt("calm", 1.0)]
    assert (spec.seed, spec.width, spec.height) == (None, 960, 704)
    assert spec.sampling_mode == "plms" and spec.clip_models == ["ViT-B-32::openai"]
    assert "sampling_mode: read as the diffusion sampler (a DD 5.0 file)" in report
    assert "width 1000 is not a multiple of 64: using 960" in report
    spec, report = import_dd_settings({"seed": 5, "set_seed": "random_seed",
                                       "text_prompts": {0: ["a"]}})
    assert spec.seed == 5 and "set_seed: ignored (seed, the seed the run used, is given)" in report


def test_width_and_height_win_over_width_height():
    spec, report = import_dd_settings({"width": 512, "height": 512, "width_height": [64, 64]})
    assert (spec.width, spec.height) == (512, 512)
    assert "width_height: ignored (width and height are given)" in report


def test_per_model_size_pairs_follow_the_diffusion_model():
    data = {"width_height_for_512x512_models": [1280, 768],
            "width_height_for_256x256_models": [512, 448]}
    spec, _ = import_dd_settings({**data, "diffusion_model": "256x256_diffusion_uncond"})
    assert (spec.width, spec.height) == (512, 448)
    spec, _ = import_dd_settings(data)
    assert (spec.width, spec.height) == (1280, 768)


def test_frame_zero_missing_uses_first_frame_and_reports_it():
    spec, report = import_dd_settings({"text_prompts": {"10": ["late:1"], "20": ["later"]}})
    assert spec.text_prompts == [WeightedPrompt("late", 1.0)]
    assert "text_prompts: no frame 0; using frame 10" in report
    assert "text_prompts: frames 20 ignored; still images use frame 10" in report


def test_animation_mode_is_reported():
    _, report = import_dd_settings({"animation_mode": "3D"})
    assert any(line.startswith("animation_mode '3D': this engine renders still images")
               for line in report)


@pytest.mark.parametrize("data,param,words", [
    ({"steps": 0}, "steps", "steps: 0 is below the minimum"),
    ({"diffusion_sampling_mode": "ddpm"}, "diffusion_sampling_mode", "'diffusion_sampling_mode'"),
    ({"seed": -3}, "seed", "seed: -3 is below the minimum"),
    ({"text_prompts": {"first": ["a"]}}, "text_prompts", "frame 'first' is not a frame number"),
    ({"text_prompts": {"²": ["a"]}}, "text_prompts", "is not a frame number"),
    ({"text_prompts": {10**30: ["a"]}}, "text_prompts", "is not a frame number"),
    ({"width_height": [1280]}, "width_height", "expected [width, height]"),
    ({"ViTB32": "yes please"}, "ViTB32", "not true or false"),
    ({flag: False for flag in DD_CLIP_FLAGS}, "ViTB32", "no CLIP model is switched on"),
    ({"cut_overview": "[12]*400+[4]*500"}, "cut_overview", "has 900 entries"),
])
def test_invalid_values_name_the_key(data, param, words):
    with pytest.raises(SpecError) as info:
        import_dd_settings(data)
    assert info.value.param == param and words in str(info.value)


@pytest.mark.parametrize("source,words", [
    ("{not json", "not valid JSON"), ("[]", "holds list, not settings"), (b"\xff", "not UTF-8"),
    ({1: 2}, "names must be text"),
])
def test_unreadable_files(source, words):
    with pytest.raises(SpecError, match=words):
        import_dd_settings(source)


def test_export_has_dd_layout_and_our_extras(tmp_path):
    spec = RenderSpec.from_dict({"text_prompts": "a storm:2 | calm | a cat: portrait",
                                 "image_prompts": "https://x/y.png:0.5", "seed": 12,
                                 "clip_models": ["ViT-B-16::openai", "ViT-B-32::laion400m_e32"]})
    out = export_dd_settings(spec)
    assert out["text_prompts"] == {"0": ["a storm:2", "calm", "a cat: portrait:1"]}
    assert out["image_prompts"] == {"0": ["https://x/y.png:0.5"]}
    assert out["seed"] == 12 and out["diffusion_sampling_mode"] == "ddim"
    assert out["ViTB16"] is True and out["ViTB32_laion400m_32"] is True and out["RN50"] is False
    assert out["clip_guidance_scale"] == 5000 and isinstance(out["clip_guidance_scale"], int)
    assert out["diffusion_steps"] == 1000 and out["sampling_mode"] == "bicubic"
    assert out["clip_models"] == spec.clip_models and out["engine"] == "disco-discord"
    fixture_keys = set(fixture_data())
    assert fixture_keys <= set(out)  # every key DD writes is there
    assert export_dd_settings(RenderSpec(), seed=99)["seed"] == 99
    assert export_dd_settings(RenderSpec())["seed"] == "random_seed"
    text = settings_text(spec, tmp_path)
    assert text.startswith('{\n    "text_prompts": {') and json.loads(text) == out


def test_fixture_export_import_round_trip(tmp_path):
    spec, _ = import_dd_settings(FIXTURE.read_text(encoding="utf-8"))
    again, _ = import_dd_settings(settings_text(spec, tmp_path))
    assert again == spec and again.to_json() == spec.to_json()


prompt_text = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="|"),
                      min_size=1, max_size=20).filter(lambda t: t.strip())


@given(
    prompts=st.lists(st.tuples(prompt_text, st.sampled_from([1.0, 2.0, -0.5, 0.25])),
                     min_size=1, max_size=4).filter(lambda ps: sum(w for _, w in ps) > 0.01),
    steps=st.integers(2, 1000), seed=st.none() | st.integers(0, 2**32 - 1),
    models=st.lists(st.sampled_from(sorted(DD_CLIP_FLAGS.values()) + ["TinyCLIP-test::none"]),
                    min_size=1, max_size=4, unique=True),
    mode=st.sampled_from(["ddim", "plms"]), eta=st.floats(0, 1), saves=st.integers(0, 2),
)
@settings(max_examples=60, deadline=300)
def test_export_then_import_gives_an_equal_spec(settings_folder, prompts, steps, seed, models, mode, eta,
                                                saves):
    spec = RenderSpec.from_dict({
        "text_prompts": [{"text": t, "weight": w} for t, w in prompts], "steps": steps,
        "skip_steps": steps // 2, "seed": seed, "clip_models": models, "sampling_mode": mode,
        "eta": eta, "intermediate_saves": saves, "batch_name": "round trip",
    })
    again, _ = import_dd_settings(settings_text(spec, settings_folder))
    assert again == spec


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=10,
)
dd_keys = st.sampled_from(sorted(fixture_data()) + ["set_seed", "width_height", "clip_models"])


@given(st.dictionaries(dd_keys | st.text(max_size=10), json_values, max_size=6))
@settings(max_examples=200, deadline=200)
def test_any_settings_dict_imports_or_raises_spec_error(data):
    try:
        spec, report = import_dd_settings(data)
    except SpecError as err:
        assert str(err)
    else:
        assert isinstance(spec, RenderSpec) and all(isinstance(line, str) for line in report)
