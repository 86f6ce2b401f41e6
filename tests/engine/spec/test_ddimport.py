"""Real users' DD settings files: DD 5.x's save_settings, pre-5.7 video, partial files, JSON5,
discoart YAML; each imported value checked against what DD would have used, every refusal
naming the key and the fix."""
from __future__ import annotations

import argparse
import json

import pytest
from hypothesis import given, settings, strategies as st

from engine.errors import SpecError
from engine.models.registry import CUT_SCHEDULE_GROUPS
from engine.spec.animation import AnimationSpec
from engine.spec.ddanimation import dd_animation_values, export_dd_animation, import_dd_animation
from engine.spec.ddsettings import export_dd_settings, import_dd_settings
from engine.spec.prompts import WeightedPrompt as P
from engine.spec.render import RenderSpec
from engine.spec.sources import build_spec
from tests.support import FIXTURES

DD = FIXTURES / "dd"


def text(name: str) -> str:
    return (DD / name).read_text(encoding="utf-8")


def refusal(source, mode=None) -> SpecError:
    with pytest.raises(SpecError) as info:
        import_dd_animation(source, mode) if mode else import_dd_settings(source)
    return info.value


# ---- item 1: what DD 5.x and the forks wrote --------------------------------------------------

def test_dd57_3d_file_without_animation_mode_infers_3d_and_skips_2d_keys():
    spec, report = import_dd_animation(text("dd57_3d_turbo_settings.txt"))
    assert spec.animation_mode == "3D" and spec.turbo_mode and spec.max_frames == 120
    assert spec.rotation_3d_y == "0: (0.5), 60: (-0.5)" and spec.translation_z == "0: (5)"
    assert spec.zoom == AnimationSpec.model_fields["zoom"].default  # "0: (0)" never validated
    assert (spec.render.steps, spec.render.width, spec.render.seed) == (150, 1024, 1234567)
    assert spec.prompts_at(50) == [P("a flooded gothic cathedral, moonlight", 2.0)]
    assert any(line.startswith("animation_mode: not in the file") and "using 3D" in line
               and "turbo_mode is on" in line for line in report)
    unused = next(line for line in report if line.startswith("not used in 3D mode"))
    assert "zoom" in unused and "video_init_steps" in unused
    assert "null values read as not given (the defaults apply): angle" in report
    assert "midas_weight: no effect" in " ".join(report)


def test_the_command_mode_wins_and_keys_of_other_modes_are_not_checked():
    err = refusal(text("dd57_3d_turbo_settings.txt"), "2d")  # 2D uses zoom: now it is checked
    assert err.param == "zoom" and "0 is out of range" in str(err)
    data = {**json.loads(text("dd57_3d_turbo_settings.txt")), "zoom": "0: (1.02)"}
    spec, report = import_dd_animation(data, "2d")
    assert spec.animation_mode == "2D" and not spec.turbo_mode and spec.zoom == "0: (1.02)"
    assert spec.rotation_3d_y == "0: (0)"  # a 3D key: DD's default, the file's value unused
    assert any("not used in 2D mode" in line and "turbo_mode" in line for line in report)
    lantern = {**json.loads(text("../dd57_lantern_settings.txt")), "max_frames": 50}
    plain_2d, report = import_dd_animation(lantern)
    assert plain_2d.animation_mode == "2D"
    assert any("using 2D (no 3D camera motion in the file)" in line for line in report)


def test_pre_57_video_file_uses_the_main_settings_for_every_frame():
    values, report = dd_animation_values(text("dd54_video_settings.txt"), "video")
    spec = AnimationSpec.from_dict({**values, "video_init_path": "dance.mp4", "max_frames": 10})
    frame = spec.frame_render_spec(3, init_image="prev.png", seed=1)
    # DD 5.4 rendered every video frame with the main settings, not 5.7's video defaults.
    assert (frame.steps, frame.clip_guidance_scale, frame.tv_scale, frame.cutn_batches) == (
        200, 30000, 20000, 2)
    assert frame.init_scale == 1500 and frame.skip_steps == 130  # frames_skip_steps 65% of 200
    assert spec.frame_render_spec(0).skip_steps == 20
    assert any(line.startswith("no video_init_* settings (a file from before DD 5.7)")
               and "steps 200" in line and "clip_guidance_scale 30000" in line for line in report)


def test_dd57_video_file_keeps_its_overrides():
    data = json.loads(text("../dd57_lantern_settings.txt"))
    values, report = dd_animation_values(data, "video")
    assert values["video_init_steps"] == data["video_init_steps"]
    assert not any("before DD 5.7" in line for line in report)


def test_partial_queue_file_renders_through_disco_render(tmp_path):
    path = tmp_path / "queue.json"
    path.write_text(text("dd_queue_partial.json"), encoding="utf-8")
    args = argparse.Namespace(settings=path, set=[], steps=None, width=None, height=None,
                              seed=None, prompt=None, batches=None)
    spec, report = build_spec(args)
    assert spec.text_prompts[0] == P("a cozy cabin in a snowy forest, trending on artstation", 3.0)
    assert (spec.steps, spec.clip_guidance_scale, spec.tv_scale) == (150, 10000, 0)
    assert spec.clip_models == ["ViT-L-14::openai"] and spec.n_batches == 1
    assert "queue.json: tv_scale: false read as 0" in report
    assert not any("unknown" in line for line in report)


def test_steps_from_a_file_scale_dd_default_skip_steps(tmp_path):
    path = tmp_path / "short.json"
    path.write_text('{"text_prompts": {"0": ["a"]}, "steps": 5}', encoding="utf-8")
    args = argparse.Namespace(settings=path, set=[], steps=None, width=None, height=None,
                              seed=None, prompt=None, batches=None)
    spec, _ = build_spec(args)
    assert (spec.steps, spec.skip_steps) == (5, 0)
    args.steps = 250
    assert build_spec(args)[0].skip_steps == 10  # DD's default where it fits


def test_json5_comments_and_trailing_commas():
    spec, report = import_dd_settings(text("dd_hand_edited.json5"))
    assert spec.text_prompts == [P("A lonely lighthouse on a cliff, concept art", 2.0),
                                 P("muted colors")]
    assert (spec.width, spec.height, spec.seed, spec.cut_ic_pow) == (1152, 640, 42, "[1]*1000")
    assert ("width_height_for_512x512_models: gave the size 1152x640 (DD's size for this model)"
            in report)
    assert not any("width_height_for_512x512_models: ignored" in line for line in report)


def test_discoart_yaml_config():
    spec, report = import_dd_settings(text("discoart_config.yml"))
    assert spec.text_prompts == [P("A pulp sci-fi cover of a rocket over a jungle planet", 3.0),
                                 P("bright colors")]
    assert (spec.width, spec.height, spec.seed, spec.skip_steps, spec.n_batches) == (
        1280, 768, 777, 0, 2)
    watercolor = CUT_SCHEDULE_GROUPS["watercolor"]
    assert spec.cut_overview == watercolor["cut_overview"]
    assert spec.cut_icgray_p == watercolor["cut_icgray_p"]
    assert any(line.startswith("cut_schedules_group watercolor: gave cut_overview") for line in report)
    assert any(line.startswith("name_docarray: ignored") for line in report)
    assert not any("unknown" in line for line in report)


def test_discoart_prompt_schema():
    spec, report = import_dd_settings({"text_prompts": {"version": "1", "prompts": [
        {"text": "a red fox", "weight": 2}, {"text": "snow"}]}})
    assert spec.text_prompts == [P("a red fox", 2.0), P("snow")]


@pytest.mark.parametrize("data, param, words", [
    ({"steps": 50, "clip_guidance_scale": "0: (5000), 50: (3000)"}, "clip_guidance_scale",
     "keyframed, which DD 5.7 never supported for clip_guidance_scale — fix: one number, e.g. "
     "clip_guidance_scale=5000"),
    ({"tv_scale": "[0]*500+[100]*500"}, "tv_scale", "never evaluated here — fix: one number"),
    ({"zoom": "0: (1.0025+0.002*sin(1.25*3.14*t/30))"}, "zoom",
     "math expression; expressions are never evaluated here"),
    ({"cut_overview": "[12 for i in range(1000)]"}, "cut_overview", "write schedules like"),
    ({"text_prompts": {"version": "1", "prompts": [{"text": "a", "weight": "[1]*1000"}]}},
     "text_prompts", "weight schedules are a discoart feature"),
    ({"cut_schedules_group": "han_solo"}, "cut_schedules_group", "is not known"),
])
def test_refusals_name_the_key_and_the_fix(data, param, words):
    err = refusal(data)
    assert err.param == param and words in str(err)


@pytest.mark.parametrize("source, words", [
    ({"prompt": "a", "colour": 3}, "holds no Disco Diffusion setting (its keys: 'prompt', 'colour')"),
    ({}, "is empty; fix"),
    ("", "is empty; fix"), (b"\n  \n", "is empty; fix"), ("null", "is empty; fix"),
    ("# only a comment\n", "is empty; fix"),
    ("{'steps': 50,,}", "not valid JSON or JSON5: line 1"),
    ("steps: [1, 2\nfoo: }", "neither JSON nor YAML: line"),
    ("just some words", "holds str, not settings"),
    ("- a\n- b", "holds list, not settings"),
    ("[" * 100_000, "not valid JSON or JSON5"),
    ("a: &x [1, 2]\nb: [*x, *x]\nsteps: 5", "line 2, column 5: aliases (*name) are not allowed"),
])
def test_unreadable_or_foreign_files_are_refused_in_one_line(source, words):
    assert words in str(refusal(source))


def test_mode_refusal_names_the_key():
    with pytest.raises(SpecError) as info:
        dd_animation_values({"animation_mode": "4D", "steps": 50})
    assert info.value.param == "animation_mode" and "fix: 2D, 3D or Video Input" in str(info.value)


# ---- item 6: round trips ----------------------------------------------------------------------

def test_our_own_settings_file_reimports_without_unknown_keys():
    data = export_dd_settings(RenderSpec(steps=60, seed=5))
    data.update(engine="disco-discord 1.0", model_set="dd-default", models_sha256={"x": "y"})
    spec, report = import_dd_settings(data)
    assert spec.steps == 60 and not any("unknown" in line for line in report)


@pytest.mark.parametrize("name, mode", [("dd57_3d_turbo_settings.txt", None),
                                        ("../dd57_lantern_settings.txt", "2D"),
                                        ("dd54_video_settings.txt", "video")])
def test_animation_import_export_import_is_the_identity(name, mode):
    values, _ = dd_animation_values(text(name), mode)
    values.setdefault("max_frames", 100)
    values["max_frames"] = min(values["max_frames"], 120)
    first = AnimationSpec.from_dict(values)
    exported = json.loads(json.dumps(export_dd_animation(first, seed=first.render.seed)))
    assert exported["animation_mode"] == first.animation_mode
    again, report = import_dd_animation(exported)
    assert again == first
    assert not any("unknown" in line for line in report)


def test_still_import_export_import_is_the_identity():
    spec, _ = import_dd_settings(text("discoart_config.yml"))
    again, _ = import_dd_settings(json.dumps(export_dd_settings(spec)))
    assert again == spec


def test_disco_animate_reads_settings_files(tmp_path):
    from disco.cli import build_parser
    from engine.cli.animate import build_animation

    dd_file = DD / "dd57_3d_turbo_settings.txt"
    args = build_parser().parse_args(["animate", "--settings", str(dd_file), "--frames", "30",
                                      "--set", "fov=50", "--steps", "100"])
    spec, notes = build_animation(args)
    assert (spec.animation_mode, spec.max_frames, spec.fov, spec.render.steps) == ("3D", 30, 50, 100)
    assert spec.rotation_3d_y == "0: (0.5), 60: (-0.5)" and spec.render.seed == 1234567
    assert spec.render.skip_steps == 10  # the file's own skip_steps
    assert any(note.startswith("dd57_3d_turbo_settings.txt: animation_mode: not in the file")
               for note in notes)
    ours = tmp_path / "anim.json"
    ours.write_text(spec.to_json(), encoding="utf-8")
    again, _ = build_animation(build_parser().parse_args(["animate", "--settings", str(ours)]))
    assert again == spec
    exported = tmp_path / "anim(0)_settings.txt"
    exported.write_text(json.dumps(export_dd_animation(spec)), encoding="utf-8")
    back, notes = build_animation(build_parser().parse_args(["animate", "--settings", str(exported)]))
    assert back == spec and not any("unknown" in note for note in notes)


# ---- item 5: no silent no-ops -------------------------------------------------------------------

def test_keys_without_effect_are_named():
    spec, report = import_dd_settings({"steps": 50, "randomize_class": True, "clip_denoised": True})
    assert "randomize_class: ignored (as in DD, no effect: DD's diffusion models are unconditional)" in report
    assert spec.clip_denoised is True and export_dd_settings(spec)["clip_denoised"] is True
    spec, report = import_dd_settings({"steps": 50, "clip_denoised": False})
    assert spec.clip_denoised is False and not any("clip_denoised" in line for line in report)
    spec = AnimationSpec.from_dict({"animation_mode": "3D", "midas_weight": 0.5, "max_frames": 3})
    assert any(note.startswith("midas_weight: no effect") for note in spec.notes)
    assert not any("midas" in note for note in AnimationSpec(animation_mode="3D", max_frames=3).notes)


# ---- item 2: community models ------------------------------------------------------------------

@pytest.mark.parametrize("written, model, size", [
    ("FeiArt_Handpainted_CG_Diffusion", "FeiArt_Handpainted_CG_Diffusion", (1280, 768)),
    ("Ukiyo-e_Diffusion_All_V1.by_thegenerativegeneration",
     "Ukiyo-e_Diffusion_All_V1.by_thegenerativegeneration", (512, 448)),
    ("256x256_openai_comics_faces_v2.by_alex_spirin_114k",
     "256x256_openai_comics_faces_v2.by_alex_spirin_114k", (512, 448)),
    ("portrait_generator_v1.5_ema_0.9999_165000", "portrait_generator_v1.5", (1280, 768)),
    ("portrait_generator_v001_ema_0.9999_1MM", "portrait_generator_v001", (1280, 768)),
    ("PADexpanded", "pixelartdiffusion_expanded", (512, 448)),
    ("IsometricDiffusionRevrart512px", "IsometricDiffusionRevrart512px", (1280, 768)),
])
def test_community_models_in_files(written, model, size):
    spec, report = import_dd_settings({"diffusion_model": written, "steps": 50})
    assert spec.diffusion_model == model and (spec.width, spec.height) == size
    assert (written == model) or f"read as {model}" in " ".join(report)


def test_custom_model_is_refused_with_the_fix():
    err = refusal({"diffusion_model": "custom", "custom_path": "/content/drive/ema.pt"})
    assert err.param == "diffusion_model" and "'/content/drive/ema.pt'" in str(err)
    assert "fix: add it with `disco models add NAME --url URL --sha256 HEX`" in str(err)
    assert "or set diffusion_model to one of 512x512_diffusion_uncond_finetune_008100" in str(err)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=30), st.sampled_from(["0: (1)", "[12]*1000", "3D", "Video Input",
                                                           "custom", "ddim", "random_seed"]),
                    st.lists(st.integers(0, 2000), max_size=3),
                    st.dictionaries(st.sampled_from(["0", "x", "prompts"]), st.text(max_size=5), max_size=2))
_KEYS = st.sampled_from(sorted({*json.loads(text("dd57_3d_turbo_settings.txt")), "animation_mode",
                                "width_height", "set_seed", "cut_schedules_group", "clip_models",
                                "width_height_for_256x256_models", "name_docarray"}))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=12), st.sampled_from([None, "2d", "3d", "video"]))
def test_no_input_gives_a_traceback(data, mode):
    for read in (lambda: import_dd_settings(data), lambda: import_dd_animation(data, mode)):
        try:
            read()
        except SpecError as err:
            assert str(err)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200),
                 st.text(alphabet="{}[]:,\"'#/*-&!|>\n abc0129.", max_size=120)))
def test_no_text_gives_a_traceback(source):
    try:
        import_dd_settings(source)
    except SpecError as err:
        assert str(err)
