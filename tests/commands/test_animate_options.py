"""Building an /animate job: sources and precedence, frame-keyed prompts, settings files, paths as
attachments only, the server's limits (frames, video steps and cuts), and the echo's line."""
from __future__ import annotations

import json
import random

import pytest

from commands.animate_options import (
    AnimateOptions,
    animation_line,
    build_animation,
    read_animation_file,
    split_prompt,
    still_settings,
)
from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits, build_job
from commands.job_size import animation_size
from engine.errors import SpecError
from engine.media.video import VideoInfo
from tests.support import FIXTURES

FIXTURE = FIXTURES / "dd57_lantern_settings.txt"
LIMITS = JobLimits(max_steps=500, max_pixels=4096 * 4096, max_cuts=1000, max_frames=300)


def still(prompt="a lighthouse", **kwargs):
    return build_job(DiscoOptions(prompt=prompt, n=1, **kwargs), limits=LIMITS, rng=random.Random(7))


def animate(options: AnimateOptions = AnimateOptions(), limits=LIMITS, **still_kwargs):
    return build_animation(still(**still_kwargs), options, limits=limits)


def video(frames=60, fps=12.0) -> VideoInfo:
    return VideoInfo(width=320, height=240, fps=fps, frames=frames, duration=frames / fps, codec="h264")


def test_defaults_are_dd_2d_with_the_still_settings_for_every_frame():
    parsed = animate(steps=50)
    spec = parsed.spec
    assert (spec.animation_mode, spec.max_frames, spec.fps, spec.zoom) == ("2D", 100, 12, "0: (1), 10: (1.05)")
    assert spec.render.steps == 50 and spec.render.n_batches == 1
    # Frame 0 runs 50 - DD's 10 skipped steps, each later frame 50 - 60% = 20: the average
    # drives the queue's ETA.
    assert spec.denoising_steps() == 40 + 99 * 20
    size = animation_size(spec)
    assert (size.steps, size.frames) == (-(-(40 + 99 * 20) // 100), 100)


def test_options_beat_settings_beat_file_values():
    options = AnimateOptions(values={"zoom": "0: (1.1)", "fps": 8, "angle": "0: (1)"},
                             settings="zoom=0: (1.2); fps=10", motion={"zoom": "0: (1.3)"})
    spec = animate(options).spec
    assert (spec.zoom, spec.fps, spec.angle) == ("0: (1.3)", 10, "0: (1)")


def test_mode_names_and_frames_and_flags():
    spec = animate(AnimateOptions(mode="3d", frames=40, turbo=True, vr=True, fps=24)).spec
    assert (spec.animation_mode, spec.max_frames, spec.turbo_mode, spec.vr_mode, spec.fps) == ("3D", 40, True, True, 24)
    with pytest.raises(CommandError, match="not an animation mode; use 2D, 3D or video"):
        animate(AnimateOptions(mode="4D"))


def test_the_animation_line_counts_one_frame_in_the_singular():
    assert "· 1 frame at 12 fps (0.1 s) ·" in animation_line(animate(AnimateOptions(frames=1)).spec)
    assert "· 2 frames at 12 fps" in animation_line(animate(AnimateOptions(frames=2)).spec)


def test_frame_keyed_prompts_give_frame_zero_to_the_still_part():
    prompt, keyed = split_prompt("0: a castle:2 | fog:-0.5 || 60: a city")
    assert prompt == "a castle:2 | fog:-0.5" and keyed.startswith("0: a castle")
    assert split_prompt("1920s street, photo") == ("1920s street, photo", None)
    spec = animate(AnimateOptions(frame_prompts=keyed), prompt=prompt).spec
    assert [p.text for p in spec.prompts_at(59)] == ["a castle", "fog"]
    assert [p.text for p in spec.prompts_at(60)] == ["a city"]
    assert "prompts `0: a castle" in animation_line(spec)


def test_settings_split_into_still_and_animation_keys():
    assert still_settings("zoom=0: (1.02); steps=80; turbo_steps=4; tv_scale=10") == "steps=80; tv_scale=10"
    assert still_settings("frames_skip_steps=50%") is None
    spec = animate(AnimateOptions(settings="frames_skip_steps=50%; translation_x=0: (2), 5: (-2)")).spec
    assert (spec.frames_skip_steps, spec.translation_x) == ("50%", "0: (2), 5: (-2)")


@pytest.mark.parametrize("key", ["video_init_path", "init_frame"])
def test_paths_typed_into_settings_are_refused(key):
    with pytest.raises(CommandError, match="attachments only") as caught:
        animate(AnimateOptions(settings=f"{key}=/etc/passwd"))
    assert caught.value.rule == "attachments_only"


def test_paths_from_a_file_or_stored_animation_are_dropped_with_a_note():
    parsed = animate(AnimateOptions(values={"init_frame": "/etc/passwd", "video_init_path": "/x.mp4"}))
    assert parsed.spec.init_frame is None and parsed.spec.video_init_path is None
    assert any("init_frame from the settings file ignored" in note for note in parsed.notes)


def test_frames_over_the_server_limit_are_clamped_before_the_engine_bound():
    parsed = animate(AnimateOptions(frames=5000), limits=JobLimits(max_frames=300, max_steps=500))
    assert parsed.frames == 300
    assert any(note.startswith("frames 5000 → 300 (from the frames option)") and "(max_frames)" in note
               for note in parsed.notes)


def test_the_engine_bound_on_total_steps_names_the_fix():
    with pytest.raises(SpecError, match="max_frames.*denoising steps.*lower max_frames"):
        animate(AnimateOptions(frames=3000, settings="frames_skip_steps=0%"),
                limits=JobLimits(max_frames=5000, max_steps=1000), steps=1000)


def test_keyframe_errors_name_the_keyframe():
    with pytest.raises(SpecError, match="zoom"):
        animate(AnimateOptions(motion={"zoom": "0: (1), 10: (-2)"}))
    with pytest.raises(SpecError, match="angle"):
        animate(AnimateOptions(motion={"angle": "0: (1), ten: (2)"}))


def test_video_mode_takes_its_frames_from_the_video():
    options = AnimateOptions(video="/data/uploads/1/video_clip.mp4", video_info=video(frames=61))
    parsed = animate(options)  # DD's extract_nth_frame=2: frames 0, 2, …, 60
    assert parsed.spec.animation_mode == "Video Input" and parsed.frames == 31
    assert parsed.spec.video_init_path == "/data/uploads/1/video_clip.mp4"
    assert animate(AnimateOptions(frames=10, video=options.video, video_info=options.video_info)).frames == 10
    assert animate(AnimateOptions(video=options.video, video_info=options.video_info,
                                  settings="extract_nth_frame=1")).frames == 61


def test_video_frames_over_the_limit_are_clamped_and_video_steps_and_cuts_follow_the_limits():
    limits = JobLimits(max_frames=20, max_steps=60, max_cuts=32, max_pixels=4096 * 4096)
    options = AnimateOptions(video="/v.mp4", video_info=video(frames=100), settings="video_init_steps=200")
    parsed = build_animation(still(cutn_batches=1), options, limits=limits)
    spec = parsed.spec
    assert parsed.frames == 20 and spec.video_init_steps == 60 and spec.video_init_skip_steps == 15
    assert spec.video_init_cutn_batches * 16 <= 32  # 16 cuts a batch with DD's schedules
    assert any(note.startswith("frames 50 → 20") for note in parsed.notes), parsed.notes
    assert any(note.startswith("video_init_steps 200 → 60") for note in parsed.notes)
    assert any(note.startswith("video_init_cutn_batches 4 → 2") for note in parsed.notes)


def test_video_needs_video_mode_and_video_mode_needs_a_video():
    with pytest.raises(CommandError, match="needs a video") as caught:
        animate(AnimateOptions(mode="video"))
    assert caught.value.rule == "video_required"
    with pytest.raises(CommandError, match="used only in video mode") as caught:
        animate(AnimateOptions(mode="3D", video="/v.mp4", video_info=video()))
    assert caught.value.rule == "video_mode"


def test_turbo_outside_3d_is_refused_with_the_fix():
    with pytest.raises(SpecError, match="turbo works only in 3D.*animation_mode=3D or turbo_mode=false"):
        animate(AnimateOptions(turbo=True))


def test_a_dd_settings_file_gives_its_animation_and_still_parts():
    still_file, values, notes = read_animation_file(FIXTURE.read_bytes())
    data = json.loads(FIXTURE.read_text())
    assert values["zoom"] == data["zoom"] and values["max_frames"] == 10000
    still_part = json.loads(still_file)
    assert "zoom" not in still_part and still_part["text_prompts"] == {"0": data["text_prompts"]["0"]}
    parsed = build_animation(build_job(DiscoOptions(settings_file=still_file, n=1), limits=LIMITS),
                             AnimateOptions(values=values, notes=tuple(notes)), limits=LIMITS)
    assert parsed.frames == 300 and parsed.spec.render.steps == data["steps"]
    assert [p.text for p in parsed.spec.prompts_at(120)][0].startswith("A paper lantern festival over a frozen")
    unused = next(note for note in parsed.notes if "not used in 2D mode" in note)
    assert "video_init_path" in unused and "translation_z" in unused
    assert any("animation_mode: not in the file" in note for note in parsed.notes)
    assert not any("ignored for still images" in note for note in parsed.notes)


def test_our_animation_json_reads_back_to_the_same_animation():
    first = animate(AnimateOptions(mode="3D", frames=30, motion={"translation_z": "0: (4)"}), steps=60).spec
    still_file, values, notes = read_animation_file(first.to_json())
    again = build_animation(build_job(DiscoOptions(settings_file=still_file, n=1), limits=LIMITS),
                            AnimateOptions(values=values), limits=LIMITS).spec
    assert again.to_json() == first.to_json() and notes == []


def test_disco_animates_own_animation_json_is_a_settings_file_too():
    """The animation.json that `disco animate` writes (the spec inside {"animation", "base_seed"})
    was taken for still settings and refused; it gives its animation, with the run's seed."""
    first = animate(AnimateOptions(mode="3D", frames=30, motion={"translation_z": "0: (4)"}), steps=60).spec
    first = first.replace(render={**first.render.to_dict(), "seed": None})  # as a run without --seed
    run_file = json.dumps({"animation": json.loads(first.to_json()), "base_seed": 4242})
    still_file, values, notes = read_animation_file(run_file)
    assert json.loads(still_file)["seed"] == 4242 and notes == []
    again = build_animation(build_job(DiscoOptions(settings_file=still_file, n=1), limits=LIMITS),
                            AnimateOptions(values=values), limits=LIMITS).spec
    assert (again.animation_mode, again.max_frames, again.translation_z) == ("3D", 30, "0: (4)")
    assert again.render.seed == 4242


def test_a_still_settings_file_is_used_for_every_frame():
    still_file, values, _ = read_animation_file(json.dumps({"steps": 77, "tv_scale": 5}))
    assert values == {} and json.loads(still_file) == {"steps": 77, "tv_scale": 5}


def test_init_frame_makes_frame_zero_free():
    parsed = animate(AnimateOptions(frames=10, init_frame="/data/uploads/2/init_frame.png"), steps=50)
    assert parsed.spec.denoising_steps() == 9 * 20
    assert "frame 0 is the given image" in animation_line(parsed.spec)


def test_a_typed_prompt_replaces_the_file_s_frame_prompts():
    _, values, _ = read_animation_file(FIXTURE.read_bytes())
    parsed = animate(AnimateOptions(values=values, prompt_typed=True), prompt="a harbour at dawn")
    assert [p.text for p in parsed.spec.prompts_at(120)] == ["a harbour at dawn"]
    assert any(n.startswith("text_prompts from the settings file replaced") for n in parsed.notes)
    kept = animate(AnimateOptions(values=values), prompt="ignored by buttons")  # a re-run keeps them
    assert kept.spec.prompts_at(120)[0].text.startswith("A paper lantern festival over a frozen")


def test_the_default_frame_count_is_clamped_to_a_small_server_limit():
    parsed = animate(limits=JobLimits(max_frames=20, max_steps=500))
    assert parsed.frames == 20 and any(n.startswith("frames 100 → 20 (from the default)") for n in parsed.notes)


@pytest.mark.parametrize("options", [AnimateOptions(values={"max_frames": "5000"}),
                                     AnimateOptions(values={"max_frames": 5e3}),
                                     AnimateOptions(values={"max_frames": " 5000 "}),
                                     AnimateOptions(settings="max_frames=5e3")])
def test_frames_given_as_text_or_a_float_are_clamped_too(options):
    parsed = animate(options, limits=JobLimits(max_frames=300, max_steps=500))
    assert parsed.frames == 300
    assert any(note.startswith("frames 5000 → 300") for note in parsed.notes), parsed.notes


def test_video_frames_given_as_text_are_honoured():
    options = AnimateOptions(video="/v.mp4", video_info=video(frames=61), values={"max_frames": "10"})
    assert animate(options).frames == 10


def test_dds_text_prompts_dict_as_the_prompt_is_keyed_by_frame():
    """/animate prompt:"{0: ['a castle'], 10: ['a city']}" (DD's own syntax) was one prompt,
    the dict's text, on every frame."""
    still_prompt, keyed = split_prompt("{0: ['a castle:2', 'fog:-0.5'], 10: ['a city']}")
    assert still_prompt == "a castle:2 | fog:-0.5" and keyed is not None
    parsed = animate(AnimateOptions(frame_prompts=keyed, prompt_typed=True), prompt=still_prompt)
    assert [p.text for p in parsed.spec.prompts_at(12)] == ["a city"]


def test_a_portrait_video_rendered_landscape_is_noted():
    portrait = VideoInfo(width=1080, height=1920, fps=30.0, frames=60, duration=2.0, codec="h264")
    parsed = animate(AnimateOptions(video="/v.mp4", video_info=portrait), width=1280, height=768)
    assert any("1080x1920 (portrait)" in note and "width 768 and height 1280" in note for note in parsed.notes)
    upright = animate(AnimateOptions(video="/v.mp4", video_info=portrait), width=768, height=1280)
    assert not any("portrait" in note for note in upright.notes)


def test_a_pre_57_video_file_read_for_the_video_mode_keeps_its_main_settings():
    content = (FIXTURE.parent / "dd" / "dd54_video_settings.txt").read_bytes()
    _, values, notes = read_animation_file(content, "video")
    assert values["animation_mode"] == "Video Input"
    assert (values["video_init_steps"], values["video_init_clip_guidance_scale"]) == (200, 30000)
    assert any("a file from before DD 5.7" in note for note in notes)
    _, values, notes = read_animation_file(content)  # no mode: inferred, with a note
    assert values["animation_mode"] == "2D" and "video_init_steps" not in values
