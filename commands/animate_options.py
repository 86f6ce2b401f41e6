"""Turn an `/animate` request into one checked `ParsedAnimation`.

An animation is a still render (every frame's settings) plus DD's animation settings. The still
part goes through the `/disco` pipeline (`commands.job_options.build_job`: sources, prompt
syntax, the server's defaults and limits); this module adds the animation part. Its sources,
later ones winning:

1. DD's animation defaults;
2. `values`: a settings file's animation keys, or a stored animation being run again;
3. `settings`: the animation keys of ``"key=value; key=value"`` (`still_settings` hands the
   other keys to the still part);
4. the explicit slash options (mode, frames, fps, the motion keyframes, turbo, vr) and the
   attachments (video, init_frame).

Paths are attachments only, as for images: `video_init_path` and `init_frame` typed into
settings are refused, and from a file or a stored animation they are dropped with a note.

The server's limits: frames are clamped to `max_frames` with a note (a video gives as many
frames as its every-nth selection yields, also clamped); Video Input's own step and cut
settings (video_init_steps, video_init_cutn_batches) are clamped to `max_steps` / `max_cuts`
like the still ones. The whole animation's denoising steps are bounded by the engine
(`engine.spec.animation.MAX_TOTAL_STEPS`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from commands.errors import CommandError
from commands.job_options import JobLimits, ParsedJob, cuts_per_step
from engine.media.video import VideoInfo, check_selection, orientation_note
from engine.spec.animation import MODE_KEYS, MODE_NAMES, AnimationSpec, unwrap_run_file
from engine.spec.overrides import split_animation_options
from engine.spec.ddanimation import DD_ANIMATION_KEYS, dd_animation_values
from engine.spec.ddfile import load_dd_file, read_settings
from engine.spec.ddsettings import STILL_IGNORED_KEYS
from engine.spec.fields import Invalid, check_int
from engine.spec.frame_prompts import is_frame_keyed, parse_frame_prompts
from engine.spec.prompts import format_prompts

PATH_KEYS = ("video_init_path", "init_frame")


@dataclass(frozen=True)
class AnimateOptions:
    """The `/animate` options beyond the still ones; None = not given. `video` and `init_frame`
    are local paths of checked, downloaded files; `video_info` is the video's probe."""

    mode: str | None = None
    frames: int | None = None
    fps: int | None = None
    motion: dict[str, str] = field(default_factory=dict)  # keyframes by name, e.g. zoom
    turbo: bool | None = None
    vr: bool | None = None
    settings: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    values_label: str = "the settings file"
    notes: tuple[str, ...] = ()  # what reading `values` found (e.g. the settings file's report)
    frame_prompts: str | None = None
    prompt_typed: bool = False  # the command's prompt option: it replaces prompts from `values`
    video: str | None = None
    video_info: VideoInfo | None = None
    init_frame: str | None = None


@dataclass
class ParsedAnimation:
    """A checked animation: the spec plus what to tell the user about it."""

    spec: AnimationSpec
    still: ParsedJob
    notes: list[str]

    @property
    def frames(self) -> int:
        return self.spec.max_frames


# ---- reading what the user typed ----------------------------------------------------------

def split_prompt(prompt: str) -> tuple[str, str | None]:
    """(the prompt for the still part, frame-keyed prompts or None). Frame-keyed text such as
    ``0: a castle || 60: a city`` gives its first prompts to the still part."""
    if not is_frame_keyed(prompt):
        return prompt, None
    keyed = parse_frame_prompts(prompt, param="prompt")
    return format_prompts(keyed[min(keyed)]), prompt


def still_settings(settings: str | None) -> str | None:
    """The still part of a ``"key=value; …"`` option: every key that is not an animation setting."""
    if not settings:
        return None
    _, rest = split_animation_options(settings)
    return "; ".join(item.strip() for item in rest) or None


def read_animation_file(content: str | bytes | None, mode: str | None = None
                        ) -> tuple[str | None, dict[str, Any], list[str]]:
    """A settings file for `/animate`: (its still settings for `build_job`, its animation values,
    notes). Reads our animation JSON (with "render"), a DD settings file (its animation keys for
    `mode`, the command's mode: see `engine.spec.ddanimation`), or any still settings file (used
    for every frame). Nothing is validated here: `build_animation` checks the values after the
    server's limits."""
    if content is None:
        return None, {}, []
    data = unwrap_run_file(read_settings(content))
    if isinstance(data.get("render"), dict):  # our own animation JSON (a result's attachment)
        values = {k: v for k, v in data.items() if k not in ("render", "schema_version")}
        return json.dumps(data["render"]), values, []
    if not any(key in data for key in (*DD_ANIMATION_KEYS, "animation_mode")):
        return json.dumps(data), {}, []
    values, report = dd_animation_values(data, mode)
    values.pop("render")
    data, _ = load_dd_file(data)  # nulls dropped, true/false in numbers read as 1/0
    still = {k: v for k, v in data.items() if k not in STILL_IGNORED_KEYS and k != "text_prompts"}
    if str(data.get("sampling_mode", "")).strip().lower() in ("ddim", "plms"):  # a DD 5.0 file
        still["sampling_mode"] = data["sampling_mode"]
    if isinstance(data.get("text_prompts"), dict):  # the earliest frame's prompts for the still part
        frames = sorted(data["text_prompts"], key=lambda key: int(key) if str(key).isdigit() else 0)
        still["text_prompts"] = {"0": data["text_prompts"][frames[0]]} if frames else {}
    elif "text_prompts" in data:
        still["text_prompts"] = data["text_prompts"]
    return json.dumps(still), values, [f"settings file: {line}" for line in report]


# ---- building ---------------------------------------------------------------------------

def build_animation(still: ParsedJob, options: AnimateOptions, *,
                    limits: JobLimits = JobLimits()) -> ParsedAnimation:
    """Merge and check the animation part over the checked still part; SpecError says what to fix."""
    still = still.without_gobig("animation frames")
    notes: list[str] = list(options.notes)
    values = dict(options.values)
    for key in PATH_KEYS:
        if values.pop(key, None):
            notes.append(f"{key} from {options.values_label} ignored: videos and images come from "
                         f"attachments only")
    typed, _ = split_animation_options(options.settings) if options.settings else ({}, [])
    for key in PATH_KEYS:
        if key in typed:
            what = "video" if key == "video_init_path" else "image"
            raise CommandError(f"{key} in the settings option: {what}s come from attachments only — "
                               f"attach it to the command", key, rule="attachments_only")
    values.update(typed)
    values.update({key: text for key, text in options.motion.items() if text})
    if options.frame_prompts is not None:
        values["text_prompts"] = options.frame_prompts
    elif options.prompt_typed and values.pop("text_prompts", None) is not None:
        notes.append(f"text_prompts from {options.values_label} replaced by the prompt option for every "
                     f"frame; write frame-keyed prompts (0: … || 60: …) to change them over time")
    if options.fps is not None:
        values["fps"] = options.fps
    for flag, key in ((options.turbo, "turbo_mode"), (options.vr, "vr_mode")):
        if flag is not None:
            values[key] = flag
    values["animation_mode"] = _mode(options, values)
    if options.init_frame:
        values["init_frame"] = options.init_frame
    if values["animation_mode"] == "Video Input":
        values["video_init_path"] = options.video
    elif options.video:
        raise CommandError(f"video: a video is used only in video mode, not {values['animation_mode']} — "
                           f"choose mode video, or leave the video out", "video", rule="video_mode")
    _settle_frames(options, values, limits, notes)
    spec = _limit_video(AnimationSpec.from_dict({**values, "render": still.spec.to_dict()}), limits, notes)
    shape = options.video_info and orientation_note(options.video_info, spec.render.width, spec.render.height)
    if shape and spec.animation_mode == "Video Input":
        notes.append(shape)
    notes = list(dict.fromkeys(still.notes + notes + [n for n in spec.notes if n not in still.notes]))
    return ParsedAnimation(spec=spec, still=still, notes=notes)


def _mode(options: AnimateOptions, values: dict[str, Any]) -> str:
    given = options.mode or values.get("animation_mode") or ("video" if options.video else "2D")
    mode = MODE_NAMES.get(str(given).strip().lower())
    if mode is None:
        raise CommandError(f"mode: {str(given)[:40]!r} is not an animation mode; use 2D, 3D or video",
                           "mode", rule="animation_mode")
    if mode == "Video Input" and not options.video:
        raise CommandError("mode: video mode needs a video — attach one with the video option "
                           "(MP4, MOV, WebM, AVI or GIF)", "video", rule="video_required")
    return mode


def _settle_frames(options: AnimateOptions, values: dict[str, Any], limits: JobLimits, notes: list[str]) -> None:
    """values["max_frames"]: what the video gives in Video Input; else the frames option, the
    file's, or the default — clamped to the server's max_frames before the engine's bound on
    total steps sees it."""
    requested = _whole(options.frames if options.frames is not None else values.get("max_frames"))
    if values["animation_mode"] == "Video Input":
        values["max_frames"] = _video_frames(options, values, requested, limits, notes)
        return
    source = ("the frames option" if options.frames is not None
              else options.values_label if "max_frames" in values else "the default")
    frames = AnimationSpec.model_fields["max_frames"].default if requested is None else requested
    if isinstance(frames, int) and frames > limits.max_frames:
        notes.append(f"frames {frames} → {limits.max_frames} (from {source}): this server allows at "
                     f"most {limits.max_frames} (max_frames); ask an admin to raise it, or ask for fewer")
        frames = limits.max_frames
    values["max_frames"] = frames


def _whole(value: Any) -> Any:
    """A frame count as the engine will read it ("5000", 5e3 -> 5000), so the server's clamp
    sees it; anything else is left for the engine to refuse with its own message."""
    if value is None:
        return None
    try:
        return check_int(value, "max_frames", 0, 2**63)
    except Invalid:
        return value


def _video_frames(options: AnimateOptions, values: dict[str, Any], requested: int | None,
                  limits: JobLimits, notes: list[str]) -> int:
    """The frames a video gives with every-nth selection, at most `requested` and the limit."""
    info = options.video_info
    if info is None:
        raise CommandError("video: the video was not read; attach it again", "video", rule="video_required")
    nth = values.get("extract_nth_frame", AnimationSpec.model_fields["extract_nth_frame"].default)
    if not isinstance(nth, int) or isinstance(nth, bool) or not 1 <= nth <= 1000:
        raise CommandError(f"extract_nth_frame: {str(nth)[:20]!r} is not a whole number in 1..1000; "
                           f"e.g. extract_nth_frame=2", "extract_nth_frame", rule="extract_nth_frame")
    requested = requested if isinstance(requested, int) and not isinstance(requested, bool) else None
    wanted = min(math.ceil(info.frames / nth), requested or info.frames)
    if wanted > limits.max_frames:
        notes.append(f"frames {wanted} → {limits.max_frames}: the video gives {wanted} frames with "
                     f"extract_nth_frame={nth}; this server allows at most {limits.max_frames} (max_frames) "
                     f"— the rest of the video is left out; raise extract_nth_frame to cover more of it")
    return check_selection(info, nth, min(wanted, limits.max_frames))


def _limit_video(spec: AnimationSpec, limits: JobLimits, notes: list[str]) -> AnimationSpec:
    """Video Input's own steps and cuts under the server's caps, as the still ones are."""
    changes: dict[str, Any] = {}
    if spec.animation_mode == "Video Input":
        if spec.video_init_steps > limits.max_steps:
            steps = max(2, limits.max_steps)
            skip = min(steps - 1, round(spec.video_init_skip_steps * steps / spec.video_init_steps))
            changes.update(video_init_steps=steps, video_init_skip_steps=skip)
            notes.append(f"video_init_steps {spec.video_init_steps} → {steps}: this server allows at most "
                         f"{steps} (max_steps) (video_init_skip_steps {spec.video_init_skip_steps} → {skip})")
        per_batch = cuts_per_step(spec.render) // spec.render.cutn_batches
        if per_batch * spec.video_init_cutn_batches > limits.max_cuts:
            batches = max(1, limits.max_cuts // per_batch)
            changes["video_init_cutn_batches"] = batches
            notes.append(f"video_init_cutn_batches {spec.video_init_cutn_batches} → {batches}: {per_batch} "
                         f"cuts × {spec.video_init_cutn_batches} batches is over this server's "
                         f"{limits.max_cuts} cuts per step (max_cuts)")
    return spec.replace(**changes) if changes else spec


# ---- telling the user -----------------------------------------------------------------------

def animation_line(spec: AnimationSpec) -> str:
    """'**2D animation** · 48 frames at 12 fps (4.0 s) · 1,968 denoising steps · zoom `0: (1.02)`'"""
    seconds = spec.max_frames / spec.fps
    parts = [f"**{spec.animation_mode} animation**" if spec.animation_mode != "Video Input"
             else "**video-input animation**",
             f"{spec.max_frames} frame{'s' if spec.max_frames != 1 else ''} at {spec.fps} fps ({seconds:.1f} s)",
             f"{spec.denoising_steps():,} denoising steps"]
    defaults = AnimationSpec.model_fields
    for name in MODE_KEYS[spec.animation_mode]:
        value = getattr(spec, name)
        if value != defaults[name].default or name == "zoom" and spec.animation_mode == "2D":
            parts.append(f"{name} `{value[:80]}`")
    if spec.turbo_mode and spec.animation_mode == "3D":
        parts.append(f"turbo every {spec.turbo_steps} frames after {spec.turbo_preroll}")
    if spec.vr_mode and spec.animation_mode == "3D":
        parts.append("VR")
    if spec.init_frame:
        parts.append("frame 0 is the given image")
    if len(spec.text_prompts) > 1:
        parts.append(f"prompts `{spec.prompt_summary()[:300]}`")
    return " · ".join(parts).replace("@", "@\u200b")


def with_animation_notes(parsed: ParsedAnimation) -> ParsedJob:
    """The still part carrying all the animation's notes, for `commands.echo.format_echo`."""
    return replace(parsed.still, notes=parsed.notes)
