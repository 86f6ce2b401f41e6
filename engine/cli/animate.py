"""`disco animate`: render a Disco Diffusion animation (2D, 3D or video input) on the command line.

Settings are layered like `disco render`: DD's defaults < `--settings` file (our animation JSON
or a DD *_settings.txt, read for the --mode given) < `--set key=value` (animation settings such
as zoom or turbo_steps, or any still-render setting) < the explicit flags. Every bad input
is answered with one ``error: …`` line and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.render import command_line_pool
from engine.errors import EngineError
from engine.models.devices import PRECISIONS
from engine.models.registry import MODEL_SETS

# The keyframed motion settings that have their own flag (--zoom, --rotation-3d-x, ...).
MOTION = ("angle", "zoom", "translation_x", "translation_y", "translation_z", "rotation_3d_x",
          "rotation_3d_y", "rotation_3d_z")


# The settings DD 5.7 replaces with their video_init_* twins on Video Input frames.
VIDEO_TWINS = {name: f"video_init_{name}" for name in (
    "steps", "skip_steps", "clip_guidance_scale", "tv_scale", "range_scale", "sat_scale",
    "cutn_batches", "frames_scale", "frames_skip_steps")}


def add_animate_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("animate", help="render an animation (2D, 3D or video input)",
                            description="Render a Disco Diffusion animation: frames, an MP4 and "
                            "a GIF preview.")
    p.error = _one_line_error  # argparse's two-line usage errors become one line, exit 2
    p.add_argument("prompt", nargs="?", help='prompts joined by "|", each "text:weight"; keyed by '
                   'the frame they start at: "0: a castle | fog:-0.5 || 60: a city"')
    p.add_argument("--mode", help="2D, 3D or video (default 2D; video when --video is given)")
    p.add_argument("--frames", help="frames to render (max_frames)")
    for dest in MOTION:
        flag = "--" + dest.replace("_", "-")
        example = "0: (1), 10: (1.02)" if dest == "zoom" else "0: (0), 10: (1.5)"
        p.add_argument(flag, dest=dest, metavar="KEYFRAMES",
                       help=f'{dest} keyframes, e.g. "{example}"')
    p.add_argument("--turbo", action="store_true", help="3D turbo: diffuse only every few frames")
    p.add_argument("--vr", action="store_true", help="3D VR: left/right eye frames and a "
                   "side-by-side MP4")
    p.add_argument("--video", metavar="PATH", help="video init: a local video file")
    p.add_argument("--fps", help="frames per second of the MP4 (default 12)")
    p.add_argument("--settings", type=Path, help="settings file: our animation JSON or a DD "
                   "*_settings.txt (JSON, JSON5 or YAML)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any animation or render setting, e.g. --set turbo_steps=4 (repeatable)")
    p.add_argument("--out", type=Path, default=Path("out/animation"),
                   help="output folder (default ./out/animation); an unfinished animation "
                   "there is resumed")
    p.add_argument("--steps", help="diffusion steps of each frame (DD's default 250; later frames "
                   "skip frames_skip_steps of them)")
    p.add_argument("--width", help="pixels, rounded down to a multiple of 64 as DD does (DD's default 1280)")
    p.add_argument("--height", help="pixels, rounded down to a multiple of 64 as DD does (DD's default 768)")
    p.add_argument("--seed", help="0 to 4294967295 (default random)")
    p.add_argument("--models", default="dd-default", help=f"model set: {', '.join(MODEL_SETS)}")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto = DD's choice: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--allow-download", action="store_true",
                   help="download missing model files (otherwise a missing file is an error)")
    p.add_argument("--restart", action="store_true",
                   help="render every frame again instead of resuming")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_animate)


def _one_line_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _whole(name: str, text: str | None) -> int | None:
    """Numbers arrive as text so a bad one is reported in the engine's words, on one line."""
    from engine.errors import SpecError

    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise SpecError(f"--{name}: {text[:40]!r} is not a whole number", name) from None


def build_animation(args: argparse.Namespace):
    """The AnimationSpec the command line describes, plus notes to show the user."""
    from engine.errors import SpecError
    from engine.media.video import orientation_note
    from engine.spec.animation import MODE_NAMES, AnimationSpec
    from engine.spec.frame_prompts import is_frame_keyed
    from engine.spec.overrides import parse_set_options, split_animation_options
    from engine.spec.render import follow_steps

    anim, render, report = _settings_file(args)
    typed, render_options = split_animation_options(args.set)
    anim.update(typed)
    # follow_steps: a skip_steps at DD's default follows the steps, as for `disco render`.
    render_set = parse_set_options(render_options)
    render = follow_steps(render, render_set)
    # Prompts for every frame go to the render; frame-keyed prompts (the argument written
    # "0: a castle || 60: a city", as on Discord, or --set text_prompts=...) replace them, as
    # AnimationSpec defines.
    if args.prompt is not None and is_frame_keyed(args.prompt):
        anim["text_prompts"] = args.prompt
    elif args.prompt is not None:
        render["text_prompts"] = args.prompt
    flags = {name: _whole(name, getattr(args, name)) for name in ("steps", "width", "height", "seed")}
    render = follow_steps(render, {name: value for name, value in flags.items() if value is not None})
    for name in MOTION:
        if getattr(args, name) is not None:
            anim[name] = getattr(args, name)
    if args.frames is not None:
        anim["max_frames"] = _whole("frames", args.frames)
    if args.fps is not None:
        anim["fps"] = _whole("fps", args.fps)
    if args.mode is not None:
        anim["animation_mode"] = MODE_NAMES.get(args.mode.strip().lower(), args.mode)
    if args.video is not None:
        anim["video_init_path"] = args.video
        if args.mode is None:  # --video means video mode, whatever a settings file said
            anim["animation_mode"] = "Video Input"
        elif anim["animation_mode"] != "Video Input":  # as /animate: never a video silently unused
            raise SpecError(f"--video: a video is used only in video mode, not {args.mode.strip()[:20]} — "
                            f"use --mode video, or leave --video out", "video_init_path")
    video, video_notes = _settle_video_frames(anim, asked="max_frames" in typed or args.frames is not None)
    if args.turbo:
        anim["turbo_mode"] = True
    if args.vr:
        anim["vr_mode"] = True
    spec = AnimationSpec.from_dict({**anim, "render": render})
    given = set(render_set) | {name for name, value in flags.items() if value is not None} | set(typed)
    spec, carried = _video_settings_from_the_command_line(spec, anim, render, given)
    shape = orientation_note(video, spec.render.width, spec.render.height) if video else None
    video_notes += [shape] if shape else []
    return spec, report + video_notes + [note for note in spec.notes if note not in report] + carried


def _settle_video_frames(anim: dict, *, asked: bool):
    """In Video Input, anim["max_frames"] becomes what the video gives with every-nth selection
    (DD renders the whole video), at most the max_frames given (--frames, --set or a file: DD's
    10000 never binds); the video is probed and its bounds checked here. (The video's VideoInfo
    or None, the notes to show.)"""
    from engine.media.video import check_selection, probe_video
    from engine.spec.animation import MODE_NAMES, AnimationSpec

    mode = MODE_NAMES.get(str(anim.get("animation_mode", "")).strip().lower())
    if mode != "Video Input" or not anim.get("video_init_path"):
        return None, []
    nth = anim.get("extract_nth_frame", AnimationSpec.model_fields["extract_nth_frame"].default)
    info = probe_video(anim["video_init_path"], decode=True)  # a user's file: every frame decoded
    whole = check_selection(info, nth, None)
    requested = anim.get("max_frames")  # a cap, from the flags or a file (DD's 10000 caps nothing)
    anim["max_frames"] = min(whole, requested) if isinstance(requested, int) else whole
    if asked and isinstance(requested, int) and requested > whole:
        return info, [f"the video gives {whole} frames with extract_nth_frame={nth}, fewer than the "
                      f"{requested} asked" + ("; extract_nth_frame=1 takes every frame" if nth > 1 else "")]
    return info, []


def _video_settings_from_the_command_line(spec, anim: dict, render: dict, given: set[str]):
    """DD 5.7 renders Video Input frames with the video_init_* settings, not steps,
    clip_guidance_scale, …: what the command line gives for those (--steps, --set) would be
    ignored, so it goes to their video_init_* twins unless those are given too. The spec, and
    a note naming what was carried."""
    from engine.spec.animation import AnimationSpec

    if spec.animation_mode != "Video Input":
        return spec, []
    wanted = {key for key in VIDEO_TWINS if key in given and VIDEO_TWINS[key] not in given}
    if wanted & {"steps", "skip_steps"}:  # one pair: the skip follows the steps it was made for
        wanted |= {key for key in ("steps", "skip_steps") if VIDEO_TWINS[key] not in given}
    if not wanted:
        return spec, []
    carried = {VIDEO_TWINS[key]: getattr(spec.render if hasattr(spec.render, key) else spec, key)
               for key in sorted(wanted)}
    spec = AnimationSpec.from_dict({**anim, **carried, "render": render})
    return spec, ["video input renders its frames with DD's video_init_* settings: "
                  + ", ".join(f"{name}={value}" for name, value in carried.items())
                  + " (from the command line)"]


def _settings_file(args: argparse.Namespace) -> tuple[dict, dict, list[str]]:
    """(animation values, render values, report lines) from --settings; empty without one."""
    from engine.spec.animation import unwrap_run_file
    from engine.spec.ddanimation import dd_animation_values
    from engine.spec.sources import is_dd_file, read_settings_path

    if getattr(args, "settings", None) is None:
        return {}, {}, []
    data = unwrap_run_file(read_settings_path(args.settings))
    if isinstance(data.get("render"), dict):  # our own animation JSON
        return ({k: v for k, v in data.items() if k not in ("render", "schema_version")},
                dict(data["render"]), [])
    if not is_dd_file(data):  # our own still settings (a render's JSON or PNG): every frame's
        return {}, {k: v for k, v in data.items() if k != "schema_version"}, []
    # As on Discord, a video given without a mode reads the file for video mode.
    values, report = dd_animation_values(data, args.mode or ("video" if args.video else None))
    spec = values.pop("render")
    render = {k: v for k, v in spec.to_dict().items() if k in spec.model_fields_set}
    return values, render, [f"{args.settings.name}: {line}" for line in report]


def cmd_animate(args: argparse.Namespace) -> int:
    progress = _FrameBars(disable=args.no_progress)
    try:
        spec, notes = build_animation(args)
        for line in notes:
            print(f"note: {line}", file=sys.stderr)
        from engine.animation.renderer import AnimationRenderer
        from engine.diffusion.prompt_length import animation_prompts, unread_prompt_notes

        pool = command_line_pool(args)
        for line in unread_prompt_notes(pool, spec.render.clip_models, animation_prompts(spec)):
            print(f"note: {line}", file=sys.stderr)
        result = AnimationRenderer(pool)(spec, out_dir=args.out, callback=progress, resume=not args.restart)
    except EngineError as exc:
        progress.close()
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output folder: missing permissions, a file in the way, disk full
        progress.close()
        print(f"error: cannot write the animation to {args.out}: {exc.strerror or exc}; "
              "choose another --out folder or free some space", file=sys.stderr)
        return 2
    progress.close()
    count = len(result.frames)
    frames = f"{count} frame{'' if count == 1 else 's'}"
    if result.first_rendered >= count:
        print(f"all {frames} were already in {args.out}; --restart renders them again", file=sys.stderr)
    elif result.first_rendered:  # counted from 1 as the progress bar counts; the file names from 0
        print(f"resumed at frame {result.first_rendered + 1} of {count} "
              f"({result.frames[result.first_rendered].name})", file=sys.stderr)
    print(f"{result.mp4}  {frames}  seed {result.base_seed}  {result.seconds:.1f} s")
    print(f"preview: {result.preview}")
    if result.vr_mp4 is not None:
        print(f"vr: {result.vr_mp4}")
    return 0


class _FrameBars:
    """A tqdm bar per diffused frame ("frame k/n"); in-between frames just advance the count."""

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bar = None
        self.frame = -1

    def __call__(self, event) -> None:
        from tqdm import tqdm

        if event.step is not None:
            if event.frame != self.frame:
                self.close()
                self.frame = event.frame
                self.bar = tqdm(total=event.step.total, initial=event.step.step - 1, unit="step",
                                desc=f"frame {event.frame + 1}/{event.frames}",
                                disable=self.disable)
            self.bar.update(1)
        elif not event.diffused and not self.disable:
            self.close()
            print(f"frame {event.frame + 1}/{event.frames}: turbo in-between", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
