"""AnimationSpec: defaults, every validation path, per-frame settings, JSON and DD import."""
from __future__ import annotations

import json

import pytest

from engine.errors import SpecError
from engine.spec.animation import MAX_TOTAL_STEPS, AnimationSpec
from engine.spec.ddanimation import dd_animation_values
from engine.spec.ddsettings import export_dd_settings
from engine.spec.prompts import WeightedPrompt as P
from engine.spec.render import RenderSpec

SMALL = {"render": {"steps": 50, "seed": 7, "text_prompts": "a castle"}, "max_frames": 20}


def make(**changes) -> AnimationSpec:
    return AnimationSpec.from_dict({**SMALL, **changes})


def error(**changes) -> SpecError:
    with pytest.raises(SpecError) as info:
        make(**changes)
    return info.value


def from_dd(source) -> tuple[AnimationSpec, list[str]]:
    """A DD file's animation as /animate reads it (commands.animate_options): its values, then
    the spec's validation."""
    values, report = dd_animation_values(source)
    return AnimationSpec.from_dict(values), report


def test_defaults_match_dd():
    spec = AnimationSpec()
    assert spec.animation_mode == "2D" and spec.zoom == "0: (1), 10: (1.05)"
    assert spec.translation_z == "0: (10)" and spec.frames_skip_steps == "60%"
    assert (spec.frames_scale, spec.turbo_steps, spec.turbo_preroll, spec.fov) == (1500, 3, 10, 40)
    assert spec.text_prompts == {0: list(spec.render.text_prompts)}
    assert spec.notes == ()


def test_canonical_forms_and_json_round_trip():
    spec = make(zoom=" 10:(1.050) ,0:(1) ", frames_skip_steps=" 65 ", turbo_steps="4",
                animation_mode="3d", interp_spline="cubic", text_prompts="0: a:2 | b || 5: c")
    assert (spec.zoom, spec.frames_skip_steps, spec.turbo_steps) == ("0: (1), 10: (1.05)",
                                                                   "65%", 4)
    assert (spec.animation_mode, spec.interp_spline) == ("3D", "Cubic")
    text = spec.to_json()
    again = AnimationSpec.from_json(text)
    assert again == spec and again.to_json() == text and hash(again) == hash(spec)
    assert json.loads(text)["text_prompts"]["5"] == [{"text": "c", "weight": 1.0}]
    assert spec.replace(fps=24).fps == 24 and spec.replace(fps=24) != spec
    assert spec.prompt_summary() == "0: a:2 | b || 5: c"


@pytest.mark.parametrize("changes, param, fragment", [
    ({"turbo_mode": True}, "turbo_mode", "set animation_mode=3D or turbo_mode=false"),
    ({"vr_mode": True, "animation_mode": "Video Input", "video_init_path": "v.mp4"},
     "vr_mode", "VR works only in 3D"),
    ({"animation_mode": "Video Input"}, "video_init_path", "Video Input mode needs a video"),
    ({"near_plane": 500, "far_plane": 400}, "near_plane", "not below far_plane"),
    ({"animation_mode": "Video Input", "video_init_path": "v.mp4", "video_init_skip_steps": 200},
     "video_init_skip_steps", "leave nothing to do"),
    ({"max_frames": 10_000, "render": {"steps": 100}}, "max_frames",
     f"at most {MAX_TOTAL_STEPS}; allowed: 1..10000; fix: lower max_frames to about 2500"),
    ({"max_frames": 0}, "max_frames", "below the minimum"),
    ({"zoom": "0: (1), 10: (1.o5)"}, "zoom", "keyframe 2 ('10: (1.o5)'): '1.o5' is not a"),
    ({"angle": "0: (400)"}, "angle", "out of range"),
    ({"rotation_3d_y": "0: (9**9)"}, "rotation_3d_y", "is not a number"),
    ({"translation_x": "50: (3)"}, "translation_x", "every keyframe is at or after frame 20"),
    ({"text_prompts": "30: a"}, "text_prompts", "past the last frame"),
    ({"text_prompts": "0: a || 5: b:1 | c:-1"}, "text_prompts", "frame 5: the weights sum to 0"),
    ({"text_prompts": "0: a || x"}, "text_prompts", "has no frame number"),
    ({"frames_skip_steps": "100%"}, "frames_skip_steps", "0%..99%"),
    ({"video_init_frames_skip_steps": "x"}, "video_init_frames_skip_steps", "whole percentage"),
    ({"fov": 200}, "fov", "allowed: 1..179 degrees; fix: e.g. fov=40"),
    ({"turbo_steps": "7"}, "turbo_steps", "above the maximum"),
    ({"padding_mode": "mirror"}, "padding_mode", "allowed: one of border, reflection, zeros"),
    ({"sampling_mode": "bicubc"}, "sampling_mode", "did you mean 'bicubic'?"),
    ({"midas_depth_model": "dpt_hybrid"}, "midas_depth_model", "one of dpt_large"),
    ({"video_init_path": "https://x/v.mp4"}, "video_init_path", "is a URL"),
    ({"key_frames": "maybe"}, "key_frames", "not true or false"),
    ({"fps": 61}, "fps", "1..60"),
    ({"render": {"steps": 1}}, "render", "steps: 1 is below the minimum"),
    ({"render": "x"}, "render", "must be a mapping"),
    ({"animation_mode": "Video Input", "video_init_path": "v.mp4",
      "video_init_cutn_batches": 0}, "video_init_cutn_batches", "below the minimum"),
])
def test_validation_paths(changes, param, fragment):
    err = error(**changes)
    assert err.param == param
    assert fragment in str(err)


def test_all_problems_reported_at_once():
    err = error(fov=0, fps=0, zoom="x")
    assert str(err).startswith("3 animation settings are invalid") and err.param is None
    err = error(turbo_mode=True, vr_mode=True)
    assert "turbo_mode:" in str(err) and "vr_mode:" in str(err)


def test_unknown_keys_and_schema():
    with pytest.raises(SpecError, match="it belongs in render"):
        AnimationSpec.from_dict({"steps": 50})
    with pytest.raises(SpecError, match="did you mean 'max_frames'"):
        AnimationSpec.from_dict({"max_frame": 5})
    with pytest.raises(SpecError, match="schema_version"):
        AnimationSpec.from_dict({"schema_version": 2})
    for bad in ("{", "[1]", b"\xff", "1" * 5000):
        with pytest.raises(SpecError):
            AnimationSpec.from_json(bad)


def test_notes():
    spec = make(rotation_3d_x="0: (2)", zoom="0: (1), 10: (1.05), 40: (2)", key_frames=False,
                text_prompts="0: a || 50: b")
    notes = " / ".join(spec.notes)
    assert "rotation_3d_x: not used in 2D mode" in notes
    assert "zoom: keys past the last frame (19) are ignored (frame 40)" in notes
    assert "zoom: key_frames is off, so only the first value (0: (1)) is used" in notes
    assert "text_prompts: prompts starting past the last frame (19) are ignored (frame 50)" in notes
    assert make(zoom="1.1").zoom == "0: (1.1)"
    assert AnimationSpec(max_frames=5).notes == ()  # DD's default zoom (frame 10) says nothing
    assert "read as 0: (1.1)" in " ".join(make(zoom="1.1").notes)


def test_series_and_prompts_at():
    spec = make(zoom="0: (1), 10: (2)", text_prompts="0: a || 10: b")
    series = spec.series("zoom")
    assert len(series) == 20 and series[5] == pytest.approx(1.5) and series[15] == 2.0
    assert make(zoom="0: (1), 10: (2)", key_frames=False).series("zoom") == [1.0] * 20
    assert spec.prompts_at(9) == [P("a")] and spec.prompts_at(10) == [P("b")]
    with pytest.raises(SpecError, match="not a keyframed setting"):
        spec.series("fov")


def test_frame_render_spec_2d():
    spec = make(text_prompts="0: a || 3: b", frames_scale=900, frames_skip_steps="70%")
    first = spec.frame_render_spec(0)
    assert first.skip_steps == spec.render.skip_steps and first.seed == 7
    assert first.text_prompts == [P("a")] and first.n_batches == 1
    later = spec.frame_render_spec(4, init_image="prev.png")
    assert (later.seed, later.skip_steps, later.init_scale) == (11, 35, 900)
    assert later.init_image == "prev.png" and later.text_prompts == [P("b")]
    with pytest.raises(SpecError, match="outside 0..19"):
        spec.frame_render_spec(20)


def test_frame_render_spec_random_seed_and_wrap():
    spec = make(render={"steps": 50, "seed": None})
    assert spec.frame_render_spec(3).seed is None
    assert spec.frame_render_spec(3, seed=2**32 - 1).seed == 2
    assert make(render={"steps": 50, "seed": 2**32 - 1}).frame_render_spec(1).seed == 0


def test_frame_render_spec_video_overrides_and_continuity():
    video = make(animation_mode="Video Input", video_init_path="clip.mp4",
                 video_init_seed_continuity=True)
    first = video.frame_render_spec(0, init_image="frames/0001.jpg")
    assert (first.steps, first.skip_steps, first.clip_guidance_scale) == (100, 50, 1000)
    assert (first.tv_scale, first.sat_scale, first.init_image) == (0.1, 300, "frames/0001.jpg")
    later = video.frame_render_spec(5)
    # video_init_frames_skip_steps is used (DD ignored it: issue #134).
    assert (later.seed, later.skip_steps, later.init_scale) == (7, 70, 15000)
    assert make(animation_mode="Video Input", video_init_path="clip.mp4"
                ).frame_render_spec(5).seed == 12


def test_turbo_reduces_work():
    base = {"animation_mode": "3D", "max_frames": 2500, "render": {"steps": 100}}
    with pytest.raises(SpecError, match="max_frames"):
        AnimationSpec.from_dict(base)
    spec = AnimationSpec.from_dict({**base, "turbo_mode": True, "turbo_steps": 3})
    assert sum(spec.diffused_frames()) == 10 + len(range(12, 2500, 3))
    assert make().diffused_frames() == [True] * 20


def test_render_instance_and_notes_pass_through():
    render = RenderSpec(width=1000, steps=50)
    spec = AnimationSpec(render=render, max_frames=5)
    assert spec.render is render
    assert any("not a multiple of 64" in note for note in spec.notes)


def test_dd_import():
    data = export_dd_settings(RenderSpec(steps=50, seed=3))
    data.update(animation_mode="3D", max_frames=30, turbo_mode=True, sampling_mode="bilinear",
                translation_z="0: (5), 20: (-5)", text_prompts={"0": ["a:2"], "12": ["b"]},
                resume_run=False)
    spec, report = from_dd(json.dumps(data))
    assert (spec.animation_mode, spec.turbo_mode, spec.sampling_mode) == ("3D", True, "bilinear")
    assert spec.render.steps == 50 and spec.render.sampling_mode == "ddim"
    assert spec.text_prompts == {0: [P("a", 2.0)], 12: [P("b")]}
    assert spec.video_init_path is None
    assert any(line.startswith("not used in 3D mode") and "video_init_path" in line
               for line in report)
    assert any("resume_run" in line for line in report)
    assert not any(line.startswith("ignored for still images") for line in report)


def test_dd_import_drops_what_dd_disregards():
    data = {"animation_mode": "2D", "max_frames": 10, "turbo_mode": True, "vr_mode": True,
            "steps": 50, "zoom": "0: (1.02)"}
    spec, report = from_dd(data)
    assert not spec.turbo_mode and not spec.vr_mode
    assert "not used in 2D mode, so ignored and not checked: turbo_mode, vr_mode" in report
    values, _ = dd_animation_values({"animation_mode": "None", "max_frames": 10}, "3d")
    assert values["animation_mode"] == "3D"  # DD's "None": the command's mode applies
    with pytest.raises(SpecError, match="max_frames"):  # DD's default 10000 frames is too much
        from_dd({"animation_mode": "2D", "max_frames": 10000})


def test_turbo_that_never_starts_says_so():
    """Turbo on a short 3D animation (DD's turbo_preroll 10, 5 frames) diffused every frame while
    the echo said "turbo every 3 frames after 10"; a note now names turbo_preroll."""
    short = make(animation_mode="3D", turbo_mode=True, max_frames=5)
    assert all(short.diffused_frames())
    assert any(note.startswith("turbo_mode: no effect") and "turbo_preroll" in note for note in short.notes)
    started = make(animation_mode="3D", turbo_mode=True, max_frames=5, turbo_preroll=1)
    assert not all(started.diffused_frames()) and not any("turbo_mode" in n for n in started.notes)


def test_curved_in_betweens_that_leave_the_range_are_refused():
    """DD's quadratic and cubic in-betweens overshoot, most past the last key (DD pins the last
    frame to the last key's value): zoom reached -0.36 (a mirrored picture; exactly 0 stopped the
    render mid-way), so the whole curve is checked, not only the keys."""
    err = error(zoom="0: (1), 2: (1.5), 4: (0.5)", interp_spline="Cubic", max_frames=12)
    assert err.param == "zoom"
    assert "the quadratic in-betweens of 0: (1), 2: (1.5), 4: (0.5) reach -0.2203 at frame 6" in str(err)
    assert "interp_spline=Linear" in str(err) and "11: (0.5)" in str(err)
    linear = make(zoom="0: (1), 2: (1.5), 4: (0.5)", max_frames=12)  # DD's default Linear
    assert min(linear.series("zoom")) == 0.5
    calm = make(zoom="0: (1), 5: (1.02), 10: (1.05), 19: (1.1)", interp_spline="Cubic")
    assert all(0 < value <= 10 for value in calm.series("zoom"))
