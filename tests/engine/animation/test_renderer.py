"""The animation loop end to end on the tiny models at 64×64: 2D frames, MP4 and preview; 3D with
turbo and VR; video input; resume equal to an uninterrupted run; `disco animate` on the command
line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.animation.renderer import AnimationRenderer, FrameEvent
from engine.animation.runfolder import settle_seed
from engine.errors import Cancelled, EngineError
from engine.media.files import read_png_text
from engine.media.video import encode_mp4, probe_video
from engine.spec.animation import AnimationSpec
from engine.spec.ddanimation import import_dd_animation
from tests.support import REPO_ROOT
from tests.support.cli import disco_here
from tests.support.engine import ANIMATION_FAST, ANIMATION_RENDER, tiny_pool

ROOT = REPO_ROOT


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a small shared CPU, two OpenMP threads fighting other processes
    for two cores run these tiny convolutions several times slower than one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def anim(**changes) -> AnimationSpec:
    return AnimationSpec.from_dict({"render": ANIMATION_RENDER, **ANIMATION_FAST, **changes})


class Recorder:
    """Callback keeping which frames ran diffusion steps and which frames finished."""

    def __init__(self, total: int):
        self.total = total
        self.stepped: set[int] = set()
        self.finished: list[int] = []

    def __call__(self, event: FrameEvent) -> None:
        assert event.frames == self.total
        if event.step is not None:
            self.stepped.add(event.frame)
        else:
            self.finished.append(event.frame)


class InitSpy:
    """Wraps the renderer's pipeline to keep each diffused frame's in-memory init as 8-bit RGB
    (frame number -> array), since inits no longer pass through files."""

    def __init__(self, renderer: AnimationRenderer):
        self.pipeline, self.inits = renderer.pipeline, {}
        renderer.pipeline = self

    def __call__(self, spec, *, init=None, **kwargs):
        if init is not None:
            frame = int(spec.init_image.split()[3])  # "init of frame N (in memory)"
            self.inits[frame] = np.round(((init[0].permute(1, 2, 0).cpu().numpy() + 1) / 2) * 255)
        return self.pipeline(spec, init=init, **kwargs)


def render(spec: AnimationSpec, out: Path, total: int | None = None, **kwargs):
    recorder = Recorder(total or spec.max_frames)
    renderer = AnimationRenderer(tiny_pool())
    spy = InitSpy(renderer)
    result = renderer(spec, out_dir=out, callback=recorder, **kwargs)
    result.inits = spy.inits
    return result, recorder


@pytest.fixture(scope="module")
def zoom_2d(tmp_path_factory):
    """One uninterrupted 2D run, shared by the checks on its files and by the resume test."""
    spec = anim(animation_mode="2D", zoom="0: (1.1)", angle="0: (3)", translation_x="0: (2)")
    result, recorder = render(spec, tmp_path_factory.mktemp("zoom2d"))
    return spec, result, recorder


def test_2d_frames_mp4_and_preview(zoom_2d):
    spec, result, recorder = zoom_2d
    assert [p.name for p in result.frames] == ["0000.png", "0001.png", "0002.png", "0003.png"]
    assert recorder.finished == [0, 1, 2, 3] and recorder.stepped == {0, 1, 2, 3}
    for path in result.frames:
        with Image.open(path) as image:
            assert image.size == (64, 64)
    info = probe_video(result.mp4)
    assert (info.width, info.height, info.frames) == (64, 64, 4)
    assert info.fps == pytest.approx(8)
    with Image.open(result.preview) as gif:
        assert gif.format == "GIF" and gif.n_frames >= 2
    stored = read_png_text(result.frames[1])
    assert int(stored["disco_frame"]) == 1 and int(stored["disco_base_seed"]) == 5
    assert AnimationSpec.from_dict(json.loads(stored["disco_animation"])) == spec
    # The settings also in DD's layout, which import back to the same animation.
    dd_file = result.mp4.parent / f"{spec.render.batch_name}(0)_settings.txt"
    again, _ = import_dd_animation(dd_file.read_text(encoding="utf-8"))
    assert again == spec.replace(render={**spec.render.to_dict(), "seed": 5})
    # Each later frame started from the warped previous frame, handed over in memory.
    assert sorted(result.inits) == [1, 2, 3] and not (result.mp4.parent / "inits").exists()
    # Frames differ: the motion and the per-frame seed (seed + frame) change them.
    first, last = (np.asarray(Image.open(p)) for p in (result.frames[0], result.frames[-1]))
    assert not np.array_equal(first, last)


def test_resume_from_the_first_frame_equals_uninterrupted(tmp_path):
    """The engine's kill -9 case: only frame 0 on disk. The frame read back from its PNG must be
    the tensor an uninterrupted run hands on, layout included (a channels-last tensor made every
    later frame a few 8-bit levels off)."""
    spec = anim(max_frames=3)
    whole, _ = render(spec, tmp_path / "whole")
    out = tmp_path / "resumed"
    (out / "frames").mkdir(parents=True)
    for name in ("animation.json", "frames/0000.png"):
        (out / name).write_bytes((tmp_path / "whole" / name).read_bytes())
    resumed, _ = render(spec, out)
    assert resumed.first_rendered == 1
    for a, b in zip(whole.frames, resumed.frames):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b))), b.name


def test_resume_equals_uninterrupted(zoom_2d, tmp_path):
    spec, whole, _ = zoom_2d
    out = tmp_path / "resumed"
    with pytest.raises(Cancelled):
        AnimationRenderer(tiny_pool())(spec, out_dir=out,
                                       should_cancel=lambda: (out / "frames/0001.png").exists())
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["0000.png", "0001.png"]
    result, recorder = render(spec, out)
    assert result.first_rendered == 2 and recorder.stepped == {2, 3}
    for a, b in zip(whole.frames, result.frames):
        assert a.read_bytes() == b.read_bytes(), b.name
    # A different animation is not mixed into these frames.
    with pytest.raises(EngineError, match="different animation"):
        AnimationRenderer(tiny_pool())(spec.replace(angle="0: (4)"), out_dir=out)


def test_3d_without_turbo_diffuses_every_frame(tmp_path):
    spec = anim(animation_mode="3D", max_frames=2, translation_x="0: (30)", rotation_3d_z="0: (5)")
    result, recorder = render(spec, tmp_path)
    assert recorder.stepped == {0, 1} and result.vr_mp4 is None
    # The init of frame 1 is frame 0 moved by the camera over the tiny model's depth.
    frame0 = np.asarray(Image.open(result.frames[0]), dtype=int)
    init1 = result.inits[1].astype(int)
    assert init1.shape == frame0.shape and np.abs(init1 - frame0).mean() > 1


TURBO_VR = dict(animation_mode="3D", translation_z="0: (20)", rotation_3d_y="0: (2)",
                turbo_mode=True, turbo_steps=3, turbo_preroll=0, vr_mode=True)


def test_3d_turbo_and_vr(tmp_path):
    # turbo_steps 3 with no preroll: frames 0 and 3 are diffused, 1 and 2 are warped in-betweens.
    spec = anim(**TURBO_VR)
    assert spec.diffused_frames() == [True, False, False, True]
    last_x = {}

    def keep_last_x(event: FrameEvent) -> None:
        recorder(event)
        if event.step is not None:
            last_x[event.frame] = event.step.x

    recorder = Recorder(4)
    renderer = AnimationRenderer(tiny_pool())
    spy = InitSpy(renderer)
    result = renderer(spec, out_dir=tmp_path, callback=keep_last_x)
    assert recorder.stepped == {0, 3}  # the pipeline ran only for diffused frames
    assert recorder.finished == [0, 1, 2, 3]
    assert sorted(spy.inits) == [3]
    # Frame 3 is DD's turbo blend: 1/3 of the diffused image, 2/3 of the warped previous state
    # (which was that frame's init).
    diffused = np.round(np.clip((last_x[3][0].permute(1, 2, 0).numpy() + 1) / 2, 0, 1) * 255)
    warped = spy.inits[3]
    frame3 = np.asarray(Image.open(result.frames[3]), dtype=np.float64)
    assert np.abs(frame3 - (diffused / 3 + warped * 2 / 3)).max() <= 1.01
    assert np.abs(frame3 - diffused).max() > 5
    assert len(result.vr_frames) == 4
    for left, right in result.vr_frames:
        assert left.name.endswith("_l.png") and right.name.endswith("_r.png")
        with Image.open(left) as image:
            assert image.size == (64, 64)
    info = probe_video(result.vr_mp4)
    assert (info.width, info.height, info.frames) == (128, 64, 4)
    assert probe_video(result.mp4).frames == 4

    # Resuming after an in-between frame rebuilds both turbo chains from the state files.
    out = tmp_path / "resumed"
    with pytest.raises(Cancelled):
        AnimationRenderer(tiny_pool())(spec, out_dir=out,
                                       should_cancel=lambda: (out / "frames/0001.png").exists())
    resumed, _ = render(spec, out)
    assert resumed.first_rendered == 2
    for a, b in zip(result.frames + [e for pair in result.vr_frames for e in pair],
                    resumed.frames + [e for pair in resumed.vr_frames for e in pair]):
        assert a.read_bytes() == b.read_bytes(), b.name


def test_linear_video_blend_mixes_each_frame_with_the_one_before(tmp_path):
    spec = anim(animation_mode="2D", max_frames=2, video_init_blend_mode="linear")
    result, _ = render(spec, tmp_path / "out")
    first, second = (np.asarray(Image.open(p), dtype=float) for p in result.frames)
    shown = np.asarray(Image.open(tmp_path / "out" / "blend" / "0001.png"), dtype=float)
    assert np.abs(shown - (first + second) / 2).max() <= 1
    plain = anim(animation_mode="2D", max_frames=2, video_init_blend_mode="None")
    render(plain, tmp_path / "plain")
    assert not (tmp_path / "plain" / "blend").exists()


def test_video_input_every_second_frame(tmp_path):
    clip = tmp_path / "clip.mp4"
    colours = [(40 * i, 255 - 40 * i, 128) for i in range(6)]
    encode_mp4([np.full((64, 64, 3), c, np.uint8) for c in colours], clip, fps=6)
    spec = anim(animation_mode="Video Input", video_init_path=str(clip), extract_nth_frame=2,
                max_frames=10, video_init_steps=4, video_init_skip_steps=2,
                video_init_cutn_batches=1, video_init_frames_scale=0,
                video_init_frames_skip_steps="50%", video_init_seed_continuity=True)
    result, recorder = render(spec, tmp_path / "out", total=3)
    assert len(result.frames) == 3 and recorder.stepped == {0, 1, 2}
    assert probe_video(result.mp4).frames == 3
    # DD's default video_init_blend_mode 'optical flow': the video shows blend/ frames 1..2.
    assert sorted(p.name for p in (tmp_path / "out" / "blend").iterdir()) == ["0001.png", "0002.png"]
    # Frame 0 starts from the first video frame; later inits blend in the flow-warped output.
    init0 = result.inits[0].astype(int)
    assert np.abs(init0 - np.array(colours[0])).max() <= 3


def disco(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(tmp_path / "models"),
           "OMP_NUM_THREADS": "1"}  # see one_thread
    return subprocess.run([sys.executable, "-m", "disco", "animate", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.e2e
def test_cli_animate_smoke(tmp_path, capsys):
    out = tmp_path / "anim"
    args = ("a lighthouse" + ", dramatic light" * 30, "--mode", "2D", "--frames", "2", "--zoom", "0: (1.05)",
            "--steps", "4", "--width", "64", "--height", "64", "--seed", "3", "--fps", "5",
            "--models", "test-tiny", "--device", "cpu", "--no-progress",
            "--set", "cutn_batches=1", "--set", "clip_models=ViT-B-32::openai",
            "--set", "cut_overview=[2]*1000", "--set", "cut_innercut=[2]*1000",
            "--set", "frames_scale=0", "--set", "frames_skip_steps=50%",
            "--out", str(out))
    done = disco(*args, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert str(out / "animation.mp4") in done.stdout
    assert probe_video(out / "animation.mp4").frames == 2
    assert "note: CLIP reads 77 tokens of a prompt; it did not read the end of the prompt: “…" in done.stderr
    # The same command again (in-process: the child above showed the command line's wiring, these
    # two check what it finds in the folder): nothing left to render.
    again = disco_here(capsys, "animate", *args)
    assert again.returncode == 0 and "all 2 frames were already in" in again.stderr, again.stderr
    other = disco_here(capsys, "animate", *args, "--angle", "0: (3)")
    assert other.returncode == 2 and "different animation" in other.stderr
    assert "--restart" in other.stderr


def test_cli_animate_takes_frame_keyed_prompts_as_on_discord():
    from disco.cli import build_parser
    from engine.cli.animate import build_animation

    args = build_parser().parse_args(["animate", "0: a castle:2 | fog:-0.5 || 2: a city",
                                      "--frames", "3"])
    spec, _ = build_animation(args)
    assert [p.text for p in spec.prompts_at(1)] == ["a castle", "fog"]
    assert [p.text for p in spec.prompts_at(2)] == ["a city"]
    plain, _ = build_animation(build_parser().parse_args(["animate", "time: 12:30 a clock"]))
    assert [p.text for p in plain.prompts_at(0)] == ["time: 12:30 a clock"]


def test_cli_animate_skip_steps_at_dd_default_follows_the_steps_of_a_settings_file(tmp_path):
    from disco.cli import build_parser
    from engine.cli.animate import build_animation

    dd_file = tmp_path / "dd_settings.txt"
    dd_file.write_text('{"text_prompts": {"0": ["a castle"]}, "steps": 250, "skip_steps": 10, '
                       '"animation_mode": "2D"}')
    for flags in (["--steps", "3"], ["--set", "steps=3"]):
        spec, _ = build_animation(build_parser().parse_args(
            ["animate", "--settings", str(dd_file), "--frames", "2", *flags]))
        assert (spec.render.steps, spec.render.skip_steps) == (3, 0), flags


def test_cli_video_input_takes_the_steps_and_scales_given_on_the_command_line(tmp_path):
    from disco.cli import build_parser
    from engine.cli.animate import build_animation

    clip = tmp_path / "clip.mp4"
    encode_mp4([np.full((64, 64, 3), 90, np.uint8)] * 4, clip, fps=6)  # every 2nd: 2 frames
    base = ["animate", "a river", "--video", str(clip), "--frames", "2", "--steps", "5",
            "--set", "clip_guidance_scale=8000"]
    spec, notes = build_animation(build_parser().parse_args(base))
    first, later = spec.frame_render_spec(0), spec.frame_render_spec(1)
    assert (first.steps, first.skip_steps, first.clip_guidance_scale) == (5, 0, 8000)
    assert (later.steps, later.clip_guidance_scale) == (5, 8000)
    assert "video_init_steps=5" in notes[-1] and "video_init_clip_guidance_scale=8000" in notes[-1]
    own, notes = build_animation(build_parser().parse_args(
        [*base, "--set", "video_init_steps=70", "--set", "video_init_skip_steps=20"]))
    assert (own.video_init_steps, own.video_init_skip_steps) == (70, 20)  # given: kept
    assert "video_init_steps" not in notes[-1]
    still, notes = build_animation(build_parser().parse_args(["animate", "a river", "--steps", "5"]))
    assert still.video_init_steps == 100 and not any("video_init" in note for note in notes)


def test_cli_video_damaged_at_its_end_is_refused_before_the_animation_is_built(tmp_path):
    """`disco animate --video` decodes every frame of the user's file while it builds the
    animation, before any model loads: a zeroed end (every packet there, its data gone) was
    found only when the render reached it."""
    from disco.cli import build_parser
    from engine.cli.animate import build_animation
    from engine.errors import SpecError

    clip = tmp_path / "clip.mp4"
    encode_mp4([np.full((64, 64, 3), 20 * i, np.uint8) for i in range(12)], clip, fps=6)
    data = clip.read_bytes()
    clip.write_bytes(data[:len(data) // 2] + bytes(len(data) - len(data) // 2))
    with pytest.raises(SpecError, match="damaged or cut short.*use the whole file"):
        build_animation(build_parser().parse_args(["animate", "a river", "--video", str(clip)]))


@pytest.mark.e2e
def test_cli_video_input_says_when_the_video_gives_fewer_frames_than_asked(tmp_path):
    clip = tmp_path / "clip.mp4"
    encode_mp4([np.full((64, 64, 3), 40 * i, np.uint8) for i in range(3)], clip, fps=6)
    done = disco("a river", "--video", str(clip), "--frames", "10", "--steps", "2", "--width", "64",
                 "--height", "64", "--models", "test-tiny", "--device", "cpu", "--no-progress",
                 "--set", "cutn_batches=1", "--set", "clip_models=ViT-B-32::openai",
                 "--set", "video_init_flow_warp=false", "--out", str(tmp_path / "v"), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "the video gives 2 frames with extract_nth_frame=2, fewer than the 10 asked" in done.stderr


def test_cli_video_with_a_dd_settings_file_renders_the_whole_video(tmp_path):
    """A DD 5.4 Video Input file (no animation_mode, DD's max_frames 10000) with --video: the
    video mode (the file was read for 2D, the video ignored) and the video's frames (10000
    frames were refused for their steps; DD takes the count from the video)."""
    from disco.cli import build_parser
    from engine.cli.animate import build_animation

    clip = tmp_path / "clip.mp4"
    encode_mp4([np.full((64, 64, 3), 20 * i, np.uint8) for i in range(7)], clip, fps=6)
    dd_file = ROOT / "tests" / "fixtures" / "dd" / "dd54_video_settings.txt"
    spec, notes = build_animation(build_parser().parse_args(
        ["animate", "--settings", str(dd_file), "--video", str(clip)]))
    assert (spec.animation_mode, spec.video_init_path, spec.extract_nth_frame) == (
        "Video Input", str(clip), 2)
    assert spec.max_frames == 4 and not any("fewer than" in note for note in notes)
    plain, _ = build_animation(build_parser().parse_args(  # no file: the default 100 frames
        ["animate", "a river", "--video", str(clip), "--set", "extract_nth_frame=1"]))
    assert plain.max_frames == 7
    asked, notes = build_animation(build_parser().parse_args(
        ["animate", "a river", "--video", str(clip), "--frames", "3"]))
    assert asked.max_frames == 3 and not any("fewer than" in note for note in notes)
    ours = tmp_path / "animation.json"  # our own file's max_frames caps the video as --frames does
    ours.write_text(json.dumps({"animation": json.loads(asked.to_json()), "base_seed": 1}))
    again, _ = build_animation(build_parser().parse_args(["animate", "--settings", str(ours)]))
    assert again.max_frames == 3


def test_cli_animate_reads_back_its_own_animation_json(tmp_path):
    """`--settings out/animation.json` (the file every run writes) was refused as a DD file
    holding no DD setting; it is the run's animation with the seed the run settled on, and a
    rerun into the same folder with it resumes that run."""
    from disco.cli import build_parser
    from engine.cli.animate import build_animation

    unseeded = anim(animation_mode="2D", zoom="0: (1.05)", max_frames=2,
                    render={**ANIMATION_RENDER, "seed": None})
    run_file = tmp_path / "animation.json"
    run_file.write_text(json.dumps({"animation": json.loads(unseeded.to_json()), "base_seed": 77}))
    seeded, _ = build_animation(build_parser().parse_args(["animate", "--settings", str(run_file)]))
    assert seeded == unseeded.replace(render={**unseeded.render.to_dict(), "seed": 77})
    assert settle_seed(seeded, tmp_path, resume=True) == 77  # the same run, not "different"


def test_a_new_fps_or_blend_mode_reuses_the_frames(tmp_path):
    """A rerun asking only for another MP4 frame rate or video blend was "frames of a different
    animation": every frame had to be rendered again (--restart) for a change of playback."""
    spec = anim(animation_mode="2D", max_frames=2, render={**ANIMATION_RENDER, "seed": None})
    seed = settle_seed(spec, tmp_path, resume=True)
    faster = spec.replace(fps=24, video_init_blend_mode="linear")
    assert settle_seed(faster, tmp_path, resume=True) == seed
    stored = json.loads((tmp_path / "animation.json").read_text())
    assert stored["animation"]["fps"] == 24 and stored["base_seed"] == seed  # what is assembled now
    assert json.loads((tmp_path / "TimeToDisco(0)_settings.txt").read_text())["fps"] == 24
    with pytest.raises(EngineError, match="holds frames of a different animation"):
        settle_seed(faster.replace(zoom="0: (1.2)"), tmp_path, resume=True)


def test_more_frames_resume_when_the_frames_done_come_out_the_same(tmp_path):
    """Asking for more (or fewer) frames into the same folder was "frames of a different
    animation", so lengthening a render meant rendering every frame again; it resumes when the
    frames on disk get the same motion, prompts and steps under the new length."""
    steady = anim(animation_mode="2D", max_frames=2, zoom="0: (1.05), 30: (1.2)",
                  text_prompts="0: a lighthouse || 3: a storm")
    seed = settle_seed(steady, tmp_path, resume=True)
    (tmp_path / "frames").mkdir()
    for n in range(2):
        (tmp_path / "frames" / f"{n:04}.png").write_bytes(b"")
    longer = steady.replace(max_frames=5)  # keys at 30 and prompts at 3 were past the end: still are for 0..1
    assert settle_seed(longer, tmp_path, resume=True) == seed
    assert json.loads((tmp_path / "animation.json").read_text())["animation"]["max_frames"] == 5
    moved = longer.replace(max_frames=40)  # now the zoom key at 30 bends frame 1's zoom
    with pytest.raises(EngineError, match="holds frames of a different animation"):
        settle_seed(moved, tmp_path, resume=True)
    assert settle_seed(longer.replace(max_frames=1), tmp_path, resume=True) == seed
    # Now frame 1 is past the stored length: a frame there is another run's (as a --restart with
    # fewer frames leaves), so lengthening renders it again rather than taking it.
    assert settle_seed(longer, tmp_path, resume=True) == seed
    assert not (tmp_path / "frames" / "0001.png").exists() and (tmp_path / "frames" / "0000.png").exists()


def test_frames_without_their_settings_file_resume_only_as_their_own_animation(tmp_path):
    """With animation.json gone (deleted, as the "damaged" message advised; a queued job's frames
    come back without it) the frames on disk were taken as this run's whatever they were: a new
    seed and other settings went on from another animation's frames. Frame 0 says which
    animation and seed it is."""
    from engine.media.files import save_png

    spec = anim(animation_mode="2D", max_frames=3, render={**ANIMATION_RENDER, "seed": None})
    (tmp_path / "frames").mkdir()
    save_png(Image.new("RGB", (64, 64)), tmp_path / "frames" / "0000.png",
             {"disco_animation": spec.to_json(), "disco_base_seed": "4321"})
    assert settle_seed(spec, tmp_path, resume=True) == 4321  # its seed, not a new one
    (tmp_path / "animation.json").unlink()
    with pytest.raises(EngineError, match="holds frames of a different animation"):
        settle_seed(spec.replace(zoom="0: (1.3)"), tmp_path, resume=True)
    with pytest.raises(EngineError, match="holds frames of a different animation"):  # another seed
        settle_seed(spec.replace(render={**ANIMATION_RENDER, "seed": 5}), tmp_path, resume=True)
    settle_seed(spec.replace(zoom="0: (1.3)"), tmp_path, resume=False)  # --restart replaces them
    assert json.loads((tmp_path / "animation.json").read_text())["animation"]["zoom"] == "0: (1.3)"


def test_cli_animate_reads_our_still_settings_as_every_frames_render(tmp_path):
    from disco.cli import build_parser
    from engine.cli.animate import build_animation
    from engine.spec.render import RenderSpec

    still = RenderSpec(text_prompts="a harbour:2 | fog:-0.5", steps=30, seed=8, width=128, gobig=False)
    (tmp_path / "still.json").write_text(still.to_json(), encoding="utf-8")
    spec, notes = build_animation(build_parser().parse_args(
        ["animate", "--settings", str(tmp_path / "still.json"), "--frames", "2"]))
    assert (spec.render.steps, spec.render.seed, spec.render.width) == (30, 8, 128)
    assert spec.render.prompt_summary() == still.prompt_summary()
    assert not [note for note in notes if "unknown key" in note or "DD 5.0" in note], notes


@pytest.mark.parametrize("args, expected", [
    (["--zoom", "0: (1.02), 5: (abc)"], "zoom: keyframe 2"),
    (["--mode", "4D"], "animation_mode"),
    (["--mode", "2D", "--vr"], "vr_mode"),
    (["--frames", "many"], "--frames"),
    (["--set", "zoom_speed=2"], "zoom_speed"),
    (["--width"], "--width"),
    (["--video", "/nonexistent/clip.mp4"], "video_init_path"),
    (["--video", "/nonexistent/clip.mp4", "--mode", "3D"], "a video is used only in video mode, not 3D"),
])
def test_cli_bad_input_is_one_line(tmp_path, capsys, args, expected):
    from disco.cli import main

    # In process: these fail before any model loads (dd-default loads lazily, and prints no
    # tiny-model warning), and a subprocess costs seconds.
    try:
        code = main(["animate", "x", "--models", "dd-default", "--device", "cpu",
                     "--out", str(tmp_path / "o"), *args])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err
    assert "Traceback" not in err and not (tmp_path / "o").exists()
