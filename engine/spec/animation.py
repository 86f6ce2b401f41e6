"""The validated settings of one Disco Diffusion animation: `AnimationSpec`.

An animation is a still-image `RenderSpec` (`render`, the per-frame settings) plus DD 5.7's
animation settings: 2D/3D camera keyframes, frame-keyed prompts, turbo, VR and video input.
Conventions are RenderSpec's: frozen, unknown keys refused, every problem reported in one
`SpecError` (``param: what; allowed: …; fix: …``), canonical JSON, and `notes` for harmless
adjustments. `text_prompts` keyed by frame replaces `render.text_prompts`; when it is not
given, the render's prompts start at frame 0.

Choices: depth is MiDaS DPT-Large only (AdaBins is not available), so `midas_weight` is kept
for settings compatibility and has no effect. Turbo and VR exist only in 3D and are errors
elsewhere; video input needs `video_init_path`. `MAX_TOTAL_STEPS` caps the denoising steps of
a whole animation (frame 0 plus every diffused later frame) at 100 000 — e.g. 1000 frames at
100 steps — so one request cannot occupy the GPU for days. DD ignores
video_init_frames_skip_steps (DD issue #134); we use it. `init_frame` is our addition: an
image used as frame 0 exactly as it is (DD always diffuses frame 0), so a finished still can
start an animation; it is a local path, which the bot fills only from its own files.
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, ValidationError, model_validator

from engine.errors import SpecError
from engine.spec import frame_prompts as fp, keyframes as kf
from engine.spec.fields import (
    SCHEMA_VERSION,
    CanonicalJSON,
    Invalid,
    add_note,
    check_flag,
    check_float,
    check_init_image,
    check_int,
    closest_name,
    reset_notes_sink,
    set_notes_sink,
    spec_error,
)
from engine.spec.jsontext import read_json
from engine.spec.prompts import WeightedPrompt, normalized_weights
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number, short_repr

MAX_FRAMES = 10_000
MAX_TOTAL_STEPS = 100_000
SCALE = 1e7
ANIMATION_NAMES_HINT = ("animation settings are Disco Diffusion 5.x's names, e.g. max_frames, zoom, "
                        "angle, translation_x, frames_scale, frames_skip_steps, turbo_mode")

# name: (low, high, low_open) for each keyframed setting.
KEYFRAME_BOUNDS: dict[str, tuple[float, float, bool]] = {
    "angle": (-360, 360, False), "zoom": (0, 10, True),
    "translation_x": (-1000, 1000, False), "translation_y": (-1000, 1000, False),
    "translation_z": (-1000, 1000, False), "rotation_3d_x": (-360, 360, False),
    "rotation_3d_y": (-360, 360, False), "rotation_3d_z": (-360, 360, False),
}
MODE_KEYS = {"2D": ("angle", "zoom", "translation_x", "translation_y"),  # the motion each mode uses
             "3D": ("translation_x", "translation_y", "translation_z", "rotation_3d_x",
                    "rotation_3d_y", "rotation_3d_z"), "Video Input": ()}
# What people type for a mode (the CLI's --mode, /animate's mode) -> animation_mode.
MODE_NAMES = {"2d": "2D", "3d": "3D", "video": "Video Input", "video input": "Video Input"}
CHOICES: dict[str, tuple[str, ...]] = {
    "animation_mode": ("2D", "3D", "Video Input"), "interp_spline": ("Linear", "Quadratic", "Cubic"),
    "midas_depth_model": ("dpt_large",), "padding_mode": ("border", "reflection", "zeros"),
    "sampling_mode": ("bicubic", "bilinear", "nearest"),
    "video_init_blend_mode": ("None", "linear", "optical flow"),
}
# Allowed values shown in error lines (keyframes, prompts and render explain themselves).
ALLOWED: dict[str, str] = {
    **{name: "one of " + ", ".join(choices) for name, choices in CHOICES.items()},
    "max_frames": f"1..{MAX_FRAMES}", "frames_scale": "0..10000000", "midas_weight": "0..1",
    "near_plane": "above 0, below far_plane", "far_plane": "above near_plane, at most 1000000",
    "fov": "1..179 degrees", "turbo_steps": "2..6", "turbo_preroll": "0..1000",
    "vr_eye_angle": "0..90 degrees", "vr_ipd": "0..100", "extract_nth_frame": "1..1000",
    "video_init_flow_blend": "0..1", "fps": "1..60", "video_init_steps": "2..1000",
    "video_init_skip_steps": "0..999", "video_init_cutn_batches": "1..64",
    "video_init_frames_scale": "0..10000000", "video_init_clip_guidance_scale": "0..10000000",
    "video_init_tv_scale": "0..10000000", "video_init_range_scale": "0..10000000",
    "video_init_sat_scale": "0..10000000",
}


def _v(check, *args) -> BeforeValidator:
    return BeforeValidator(lambda value, info: check(value, info.field_name, *args))


def _check_choice(value: object, name: str) -> str:
    text = value.strip() if isinstance(value, str) else None
    for choice in CHOICES[name]:
        if text is not None and text.lower() == choice.lower():
            return choice
    guess = closest_name(text, list(CHOICES[name])) if text else None
    raise Invalid(f"{short_repr(value)} is not known"
                  + (f" (did you mean '{guess}'?)" if guess else ""))


def _check_keyframes(value: object, name: str) -> str:
    low, high, low_open = KEYFRAME_BOUNDS[name]
    notes: list[str] = []
    try:
        keys = kf.parse_keyframes(value, param=name, low=low, high=high, low_open=low_open,
                                  notes=notes)
    except SpecError as err:
        raise Invalid.from_spec_error(err, name) from None
    for note in notes:
        add_note(note)
    return kf.format_keyframes(keys)


def _check_prompts(value: object, name: str) -> dict[int, list[WeightedPrompt]] | None:
    if value is None:
        return None
    try:
        return fp.parse_frame_prompts(value, param=name)
    except SpecError as err:
        raise Invalid.from_spec_error(err, name) from None


def _check_render(value: object, name: str) -> RenderSpec:
    if isinstance(value, RenderSpec):
        return value
    try:
        return RenderSpec.from_dict(value)
    except SpecError as err:
        raise Invalid(f"{err}", param=name, has_fix=True) from None


def _check_percent(value: object, name: str) -> str:
    try:
        return f"{kf.parse_percent(value, param=name)}%"
    except SpecError as err:
        raise Invalid.from_spec_error(err, name) from None


def _check_video_path(value: object, name: str) -> str | None:
    path = check_init_image(value, name)
    if path is not None and "://" in path:
        raise Invalid(f"{short_repr(path)} is a URL", fix="download the video and give the "
                      "path of the local file")
    return path


def _int(low: int, high: int):
    return Annotated[int, _v(check_int, low, high)]


def _float(low: float, high: float, low_open: bool = False):
    return Annotated[float, _v(check_float, low, high, low_open)]


Flag = Annotated[bool, _v(check_flag)]
Keys = Annotated[str, _v(_check_keyframes)]
Choice = Annotated[str, _v(_check_choice)]
Percent = Annotated[str, _v(_check_percent)]


class AnimationSpec(CanonicalJSON, BaseModel):
    """Every setting of one animation, validated. Immutable: use `replace`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    render: Annotated[RenderSpec, _v(_check_render)] = RenderSpec()
    animation_mode: Choice = "2D"
    max_frames: _int(1, MAX_FRAMES) = 100  # DD's 10000 is far past MAX_TOTAL_STEPS
    key_frames: Flag = True
    interp_spline: Choice = "Linear"
    angle: Keys = "0: (0)"
    zoom: Keys = "0: (1), 10: (1.05)"
    translation_x: Keys = "0: (0)"
    translation_y: Keys = "0: (0)"
    translation_z: Keys = "0: (10)"
    rotation_3d_x: Keys = "0: (0)"
    rotation_3d_y: Keys = "0: (0)"
    rotation_3d_z: Keys = "0: (0)"
    text_prompts: Annotated[dict[int, list[WeightedPrompt]] | None, _v(_check_prompts)] = None
    frames_scale: _float(0, SCALE) = 1500.0
    frames_skip_steps: Percent = "60%"
    midas_depth_model: Choice = "dpt_large"
    midas_weight: _float(0, 1) = 0.3  # no effect: AdaBins is not available (see docstring)
    near_plane: _float(0, 1e6, True) = 200.0
    far_plane: _float(0, 1e6, True) = 10000.0
    fov: _float(1, 179) = 40.0
    padding_mode: Choice = "border"
    sampling_mode: Choice = "bicubic"
    turbo_mode: Flag = False
    turbo_steps: _int(2, 6) = 3
    turbo_preroll: _int(0, 1000) = 10
    vr_mode: Flag = False
    vr_eye_angle: _float(0, 90) = 0.5
    vr_ipd: _float(0, 100) = 5.0
    video_init_path: Annotated[str | None, _v(_check_video_path)] = None
    init_frame: Annotated[str | None, _v(check_init_image)] = None
    extract_nth_frame: _int(1, 1000) = 2
    video_init_seed_continuity: Flag = False
    video_init_flow_warp: Flag = True
    video_init_flow_blend: _float(0, 1) = 0.999
    video_init_blend_mode: Choice = "optical flow"
    video_init_steps: _int(2, 1000) = 100
    video_init_clip_guidance_scale: _float(0, SCALE) = 1000.0
    video_init_tv_scale: _float(0, SCALE) = 0.1
    video_init_range_scale: _float(0, SCALE) = 150.0
    video_init_sat_scale: _float(0, SCALE) = 300.0
    video_init_cutn_batches: _int(1, 64) = 4
    video_init_skip_steps: _int(0, 999) = 50
    video_init_frames_scale: _float(0, SCALE) = 15000.0
    video_init_frames_skip_steps: Percent = "70%"
    fps: _int(1, 60) = 12

    _notes: tuple[str, ...] = PrivateAttr(default=())

    def __init__(self, **data: Any):
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise spec_error(exc, examples=type_defaults(), allowed=ALLOWED,
                             noun="animation settings") from None

    @model_validator(mode="wrap")
    @classmethod
    def _collect_notes(cls, data: Any, handler):
        notes: list[str] = []
        token = set_notes_sink(notes)  # the same sink the shared field checks write to
        try:
            spec = handler(data)
        finally:
            reset_notes_sink(token)
        spec._notes = tuple(dict.fromkeys(tuple(notes) + spec._notes))
        return spec

    @model_validator(mode="after")
    def _check_together(self) -> AnimationSpec:
        """Rules involving several fields; every problem is reported at once."""
        problems: list[Invalid] = []
        notes: list[str] = list(self.render.notes)
        if self.text_prompts is None:
            self.__dict__["text_prompts"] = {0: list(self.render.text_prompts)}
        mode = self.animation_mode
        for flag, what in (("turbo_mode", "turbo"), ("vr_mode", "VR")):
            if getattr(self, flag) and mode != "3D":
                problems.append(Invalid(f"{what} works only in 3D animation, not {mode}",
                                        param=flag, fix=f"set animation_mode=3D or {flag}=false"))
        if mode == "Video Input" and self.video_init_path is None:
            problems.append(Invalid("Video Input mode needs a video", param="video_init_path",
                                    fix="give video_init_path=path/to/video.mp4, or use "
                                    "animation_mode=2D or 3D"))
        if self.init_frame is not None and mode == "Video Input":
            problems.append(Invalid("Video Input takes its first frame from the video",
                                    param="init_frame", fix="leave init_frame out, or use "
                                    "animation_mode=2D or 3D"))
        if self.near_plane >= self.far_plane:
            problems.append(Invalid(f"near_plane {self.near_plane:g} is not below far_plane "
                                    f"{self.far_plane:g}", param="near_plane",
                                    fix="e.g. near_plane=200, far_plane=10000"))
        if mode == "Video Input" and self.video_init_skip_steps >= self.video_init_steps:
            problems.append(Invalid(f"{self.video_init_skip_steps} skipped steps leave nothing "
                                    f"to do with video_init_steps={self.video_init_steps}",
                                    param="video_init_skip_steps",
                                    fix=f"e.g. video_init_skip_steps={self.video_init_steps // 2}"))
        if "midas_weight" in self.model_fields_set and mode == "3D":
            notes.append("midas_weight: no effect: AdaBins' weights are no longer published, so "
                         "depth is MiDaS alone")
        if self.turbo_mode and mode == "3D" and all(
                kf.turbo_schedule(self.max_frames, self.turbo_steps, self.turbo_preroll)):
            notes.append(f"turbo_mode: no effect: turbo starts after turbo_preroll={self.turbo_preroll} "
                         f"frames and this animation has {self.max_frames}, so every frame is "
                         f"diffused; lower turbo_preroll (e.g. turbo_preroll=1) to save time")
        problems.extend(self._frame_problems(notes))
        if not problems:
            problems.extend(self._work_problems())
        self._notes = tuple(dict.fromkeys(self._notes + tuple(notes)))
        if problems:
            raise Invalid.many(problems)
        return self

    def _frame_problems(self, notes: list[str]) -> list[Invalid]:
        """Keys and prompts past the last frame, keys unused in this mode, prompt weights."""
        problems: list[Invalid] = []
        for name in KEYFRAME_BOUNDS:
            keys = kf.parse_keyframes(getattr(self, name), param=name)
            given = getattr(self, name) != type(self).model_fields[name].default
            try:  # notes only about what the user wrote, not DD's default zoom's frame 10
                kf.parse_keyframes(getattr(self, name), param=name, max_frames=self.max_frames,
                                   notes=notes if given else [])
            except SpecError as err:
                problems.append(Invalid.from_spec_error(err, name))
            if name not in MODE_KEYS[self.animation_mode] and given:
                notes.append(f"{name}: not used in {self.animation_mode} mode")
            elif self.key_frames and self.interp_spline != "Linear" and not problems:
                inside = {frame: value for frame, value in keys.items() if frame < self.max_frames}
                err = kf.inbetween_problem(self.series(name), inside, kf.effective_method(
                    self.interp_spline, len(inside)), param=name, **dict(zip(
                        ("low", "high", "low_open"), KEYFRAME_BOUNDS[name])))
                problems.extend([Invalid.from_spec_error(err, name)] if err else [])
            elif not self.key_frames and len(keys) > 1:
                notes.append(f"{name}: key_frames is off, so only the first value "
                             f"({kf.format_keyframes(dict([next(iter(keys.items()))]))}) is used")
        frames = self.text_prompts
        beyond = [frame for frame in frames if frame >= self.max_frames]
        if len(beyond) == len(frames):
            problems.append(Invalid(f"every prompt starts at or after frame {self.max_frames}, "
                                    f"past the last frame", param="text_prompts",
                                    fix="start the prompts at frame 0, e.g. 0: a castle"))
        elif beyond:
            notes.append(f"text_prompts: prompts starting past the last frame ({self.max_frames - 1}) "
                         f"are ignored ({kf.frames_named(beyond)})")
        if self.render.clip_guidance_scale > 0:
            for frame, prompts in frames.items():
                try:
                    normalized_weights(prompts, param="text_prompts")
                except SpecError as err:
                    message = str(err).removeprefix("text_prompts: ")
                    problems.append(Invalid(f"frame {frame}: {message}", param="text_prompts",
                                            has_fix=True))
        return problems

    def _work_problems(self) -> list[Invalid]:
        """The total denoising steps must stay under MAX_TOTAL_STEPS."""
        try:
            total = self.denoising_steps()
            first = self.frame_render_spec(0)
            later = self.frame_render_spec(1) if self.max_frames > 1 else None
        except SpecError as err:  # e.g. a video_init_* override the render cannot take
            return [Invalid(f"the frames' settings are invalid: {err}", param=err.param or
                            "render", has_fix=True)]
        if total <= MAX_TOTAL_STEPS:
            return []
        per_frame = max(1, (later or first).steps - (later or first).skip_steps)
        fit = max(1, MAX_TOTAL_STEPS // per_frame)
        return [Invalid(f"{self.max_frames} frames need {total} denoising steps in all; at most "
                        f"{MAX_TOTAL_STEPS}", param="max_frames",
                        fix=f"lower max_frames to about {fit}, lower steps, raise "
                        f"frames_skip_steps, or use turbo_mode in 3D")]

    # ---- reading -------------------------------------------------------------------------

    @property
    def notes(self) -> tuple[str, ...]:
        """Adjustments and warnings from validation (render's included); not in the JSON."""
        return self._notes

    def series(self, name: str) -> list[float]:
        """A keyframed setting's value at every frame (DD's get_inbetweens)."""
        if name not in KEYFRAME_BOUNDS:
            raise SpecError(f"{short_repr(name)} is not a keyframed setting; allowed: "
                            + ", ".join(KEYFRAME_BOUNDS), name)
        keys = kf.parse_keyframes(getattr(self, name), param=name, max_frames=self.max_frames)
        if not self.key_frames:
            return [next(iter(keys.values()))] * self.max_frames
        return kf.interpolate(keys, self.max_frames, self.interp_spline.lower(), param=name)

    def prompts_at(self, frame: int) -> list[WeightedPrompt]:
        """The prompts in force at `frame` (forward fill, then back fill, as DD)."""
        return fp.prompts_at(self.text_prompts, frame)

    def diffused_frames(self) -> list[bool]:
        """True for each frame that runs diffusion: all of them unless 3D turbo is on, and not
        frame 0 when `init_frame` gives it."""
        if self.turbo_mode and self.animation_mode == "3D":
            frames = kf.turbo_schedule(self.max_frames, self.turbo_steps, self.turbo_preroll)
        else:
            frames = [True] * self.max_frames
        if self.init_frame is not None:
            frames[0] = False
        return frames

    def denoising_steps(self) -> int:
        """Sampler steps the whole animation runs: frame 0 (unless `init_frame` gives it) plus
        every later diffused frame; what its GPU time is roughly proportional to."""
        diffused = self.diffused_frames()
        first = self.frame_render_spec(0)
        total = first.steps - first.skip_steps if diffused[0] else 0
        if self.max_frames > 1:
            later = self.frame_render_spec(1)
            total += sum(diffused[1:]) * (later.steps - later.skip_steps)
        return total

    def frame_render_spec(self, frame: int, *, init_image: str | None = None,
                          seed: int | None = None) -> RenderSpec:
        """The still settings DD uses for `frame`.

        Frame 0 is the base render (in Video Input mode with the video_init_* overrides);
        later frames start from `init_image` (the warped previous frame, which the animator
        supplies) with init_scale=frames_scale, skip_steps=frames_skip_steps of steps and
        seed + frame — the same seed on every frame with video_init_seed_continuity.
        `seed` is the resolved base seed when render.seed is None (random).
        """
        if not 0 <= frame < self.max_frames:
            raise SpecError(f"frame: {frame} is outside 0..{self.max_frames - 1}", "frame")
        base = self.render
        changes: dict[str, Any] = {"text_prompts": self.prompts_at(frame), "n_batches": 1}
        scale, percent = self.frames_scale, self.frames_skip_steps
        if self.animation_mode == "Video Input":
            changes.update(
                steps=self.video_init_steps, skip_steps=self.video_init_skip_steps,
                clip_guidance_scale=self.video_init_clip_guidance_scale,
                tv_scale=self.video_init_tv_scale, range_scale=self.video_init_range_scale,
                sat_scale=self.video_init_sat_scale, cutn_batches=self.video_init_cutn_batches)
            scale, percent = self.video_init_frames_scale, self.video_init_frames_skip_steps
        base_seed = base.seed if base.seed is not None else seed
        if frame > 0:
            steps = changes.get("steps", base.steps)
            changes.update(init_scale=scale, skip_steps=kf.frames_skip_steps(steps, percent))
            continuity = self.animation_mode == "Video Input" and self.video_init_seed_continuity
            if base_seed is not None and not continuity:
                base_seed = (base_seed + frame) % 2**32
        if init_image is not None or frame > 0:
            changes["init_image"] = init_image
        changes["seed"] = base_seed
        return base.replace(**changes)

    # ---- canonical form -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; prompts as {"frame": [{"text", "weight"}]}."""
        data: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name == "render":
                value = value.to_dict()
            elif name == "text_prompts":
                value = {str(frame): [{"text": p.text, "weight": p.weight + 0.0} for p in ps]
                         for frame, ps in sorted(value.items())}
            elif isinstance(value, float):
                value = value + 0.0
            data[name] = value
        return data

    def prompt_summary(self) -> str:
        """``0: a:2 | b || 60: c`` for logs and Discord messages."""
        return fp.format_frame_prompts(self.text_prompts)

    @classmethod
    def from_dict(cls, data: object) -> AnimationSpec:
        """Validate a plain dict; unknown keys are errors with suggestions."""
        if not isinstance(data, dict) or any(not isinstance(key, str) for key in data):
            raise SpecError("animation settings must be a mapping of names to values")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION or isinstance(version, bool):
            raise SpecError(f"schema_version: this engine reads version {SCHEMA_VERSION} "
                            f"settings; remove the key or set it to {SCHEMA_VERSION}",
                            "schema_version")
        unknown = [key for key in data if key not in cls.model_fields]
        if unknown:
            lines = []
            for key in unknown[:10]:
                guess = closest_name(key, list(cls.model_fields))
                in_render = key in RenderSpec.model_fields
                hint = (f"it belongs in render (render={{'{key}': ...}})" if in_render else
                        f"did you mean '{guess}'?" if guess else ANIMATION_NAMES_HINT)
                lines.append(f"{key[:60]}: unknown animation setting; {hint}")
            raise SpecError("\n".join(lines), unknown[0] if len(unknown) == 1 else None)
        return cls(**data)

    @classmethod
    def from_json(cls, text: str | bytes) -> AnimationSpec:
        """Parse and validate JSON text; any problem is a SpecError."""
        try:
            if isinstance(text, (bytes, bytearray)):
                text = bytes(text).decode("utf-8")
            if not isinstance(text, str) or len(text) > 2_000_000:
                raise SpecError("expected JSON text of at most 2000000 characters")
        except UnicodeDecodeError:
            raise SpecError("the animation settings are not UTF-8 text") from None
        return cls.from_dict(read_json(text, "the animation settings"))

    def replace(self, **changes: Any) -> AnimationSpec:
        """A new spec with `changes` applied, validated again as a whole."""
        return type(self).from_dict({**self.to_dict(), **changes})


def type_defaults() -> dict[str, str]:
    """Each plain setting's default as text, used as the example in error fixes."""
    return {name: format_number(field.default) if isinstance(field.default, float) else
            str(field.default) for name, field in AnimationSpec.model_fields.items()
            if name not in ("render", "text_prompts") and field.default is not None}


def unwrap_run_file(data: dict) -> dict:
    """`disco animate`'s own animation.json ({"animation": {...}, "base_seed": N}) as the
    animation dict it wraps, the seed the run settled on put in its render; other dicts as they
    are. So that file can be given back wherever an animation's settings are read."""
    inner = data.get("animation")
    if not isinstance(inner, dict) or set(data) - {"animation", "base_seed"}:
        return data
    render = inner.get("render")
    if isinstance(render, dict) and render.get("seed") is None and data.get("base_seed") is not None:
        inner = {**inner, "render": {**render, "seed": data["base_seed"]}}
    return inner
