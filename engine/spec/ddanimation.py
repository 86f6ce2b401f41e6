"""Disco Diffusion animation settings files: import into `AnimationSpec` values, and export.

DD 5.7's ``save_settings`` writes every animation key (2D, 3D and video alike) but never
``animation_mode``, so the mode comes from the command (``--mode``, /animate's mode), else from
the file's ``animation_mode`` (forks write it), else it is inferred from the motion the file
sets (3D keys away from DD's defaults → 3D, else 2D), with a note either way. Keys the mode
does not use are set aside with a note and never checked: DD ignores them too (a 3D file's
``zoom: "0: (0)"`` is harmless there). Video Input files from before DD 5.7 have no
``video_init_*`` overrides; DD then rendered every frame with the main settings, and so do we.

`export_dd_animation` writes DD 5.7's layout plus ``animation_mode``, so importing an export
gives back the same animation.
"""
from __future__ import annotations

from typing import Any

from engine.errors import SpecError
from engine.spec import keyframes as kf
from engine.spec.animation import KEYFRAME_BOUNDS, MODE_NAMES, AnimationSpec
from engine.spec.ddfile import load_dd_file
from engine.spec.ddsettings import dd_prompt, export_dd_settings, import_dd_data, plain
from engine.spec.schedules import short_repr

# DD keys read into AnimationSpec as they are (same name, same meaning); init_frame is ours.
DD_ANIMATION_KEYS = tuple(name for name in AnimationSpec.model_fields
                          if name not in ("render", "text_prompts", "sampling_mode", "init_frame"))
_MOTION_2D = ("angle", "zoom")
_CAMERA_3D = ("translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z",
              "midas_depth_model", "midas_weight", "near_plane", "far_plane", "fov",
              "padding_mode", "sampling_mode", "turbo_mode", "turbo_steps", "turbo_preroll",
              "vr_mode", "vr_eye_angle", "vr_ipd")
_MOTION_SHARED = ("translation_x", "translation_y", "key_frames", "interp_spline",
                  "frames_scale", "frames_skip_steps")
_EVERY_MODE = ("video_init_blend_mode",)  # DD's 'linear' video blend applies in every mode
VIDEO_OVERRIDES = {  # DD 5.7's per-mode overrides -> the main setting they replace
    "video_init_steps": "steps", "video_init_clip_guidance_scale": "clip_guidance_scale",
    "video_init_tv_scale": "tv_scale", "video_init_range_scale": "range_scale",
    "video_init_sat_scale": "sat_scale", "video_init_cutn_batches": "cutn_batches",
    "video_init_skip_steps": "skip_steps", "video_init_frames_scale": "frames_scale",
    "video_init_frames_skip_steps": "frames_skip_steps",
}
_VIDEO = ("video_init_path", "extract_nth_frame", "video_init_seed_continuity",
          "video_init_flow_warp", "video_init_flow_blend", "video_init_check_consistency", "force_flow_generation", *VIDEO_OVERRIDES)
USED_BY_MODE = {
    "2D": frozenset(_MOTION_2D + _MOTION_SHARED + _EVERY_MODE),
    "3D": frozenset(_CAMERA_3D + _MOTION_SHARED + _EVERY_MODE),
    "Video Input": frozenset(_VIDEO + _EVERY_MODE),
}
_MODE_KEYS = frozenset(_MOTION_2D + _CAMERA_3D + _MOTION_SHARED + _VIDEO)
_DD_DEFAULT_MOTION = {"translation_z": {0: 10.0}, "rotation_3d_x": {0: 0.0},
                      "rotation_3d_y": {0: 0.0}, "rotation_3d_z": {0: 0.0}}
_STILL_LINES = ("ignored for still images", "animation_mode ", "text_prompts: frames ",
                "text_prompts: no frame 0")
NO_EFFECT = {"video_init_check_consistency": "no effect: DD 5.7 never implemented it either",
             "force_flow_generation": "no effect: optical flow is computed when it is needed"}


def dd_animation_values(source: object, mode: str | None = None
                        ) -> tuple[dict[str, Any], list[str]]:
    """The AnimationSpec values a DD settings file holds (not validated yet; "render" is its
    still part) + report lines. `mode` is the command's choice (2D, 3D, video), which wins."""
    data, report = load_dd_file(source)
    render, still_report = import_dd_data(data, [])
    report += [line for line in still_report if not line.startswith(_STILL_LINES)]
    chosen = _mode(data, mode, report)
    unused = sorted(key for key in data if key in _MODE_KEYS and key not in USED_BY_MODE[chosen]
                    and not (key == "sampling_mode" and _is_sampler(data[key])))
    if unused:
        report.append(f"not used in {chosen} mode, so ignored and not checked: "
                      + ", ".join(unused))
    for key in sorted(set(data) & set(NO_EFFECT) - set(unused)):
        report.append(f"{key}: {NO_EFFECT[key]}")
    others = [key for line in still_report if line.startswith(_STILL_LINES[0])
              for key in line.partition(": ")[2].split(", ")
              if key not in DD_ANIMATION_KEYS and key not in _MODE_KEYS
              and key not in ("animation_mode", "max_frames", "fps")]
    if others:
        report.append("ignored (not used by this engine's animations): " + ", ".join(others))
    values: dict[str, Any] = {"render": render, "animation_mode": chosen}
    values.update({key: data[key] for key in (*DD_ANIMATION_KEYS, "sampling_mode")
                   if key in data and key not in unused and key != "animation_mode"})
    if _is_sampler(values.get("sampling_mode")):  # DD 5.0: the diffusion sampler
        values.pop("sampling_mode")
    if "text_prompts" in data:
        values["text_prompts"] = data["text_prompts"]
    if chosen == "Video Input" and not any(key in data for key in VIDEO_OVERRIDES):
        _main_settings_per_frame(values, render, data, report)
    return values, report


def import_dd_animation(source: object, mode: str | None = None
                        ) -> tuple[AnimationSpec, list[str]]:
    """A validated AnimationSpec from a DD settings file, plus report lines."""
    values, report = dd_animation_values(source, mode)
    spec = AnimationSpec.from_dict(values)
    return spec, report + [note for note in spec.notes if note not in report]


def _is_sampler(value: object) -> bool:
    return isinstance(value, str) and value.strip().lower() in ("ddim", "plms")


def _mode(data: dict, command: str | None, report: list[str]) -> str:
    """The command's mode, else the file's animation_mode, else one inferred from its motion."""
    written = data.get("animation_mode")
    if isinstance(written, str) and written.strip().lower() == "none":
        written = None
    if command is not None:
        chosen = _mode_name(command, "mode")
        if written is not None and _mode_name(written, "animation_mode") != chosen:
            report.append(f"animation_mode {short_repr(written)} in the file replaced by "
                          f"{chosen} from the command")
        return chosen
    if written is not None:
        return _mode_name(written, "animation_mode")
    inferred, reason = _infer_mode(data)
    report.append(f"animation_mode: not in the file (DD's save_settings never writes it); "
                  f"using {inferred} ({reason}) — give the mode to choose another")
    return inferred


def _mode_name(text: object, param: str) -> str:
    name = MODE_NAMES.get(str(text).strip().lower())
    if name is None:
        raise SpecError(f"{param}: {short_repr(text)} is not an animation mode — fix: 2D, 3D or "
                        f"Video Input", param)
    return name


def _infer_mode(data: dict) -> tuple[str, str]:
    for key in ("turbo_mode", "vr_mode"):
        if data.get(key) is True:
            return "3D", f"{key} is on"
    for key, default in _DD_DEFAULT_MOTION.items():
        if key in data and _keys(data[key], key) not in (default, None):
            return "3D", f"{key} moves the camera"
    return "2D", "no 3D camera motion in the file"


def _keys(value: object, name: str) -> dict[int, float] | None:
    try:
        return kf.parse_keyframes(value, param=name, **_bounds(name))
    except SpecError:
        return None


def _bounds(name: str) -> dict[str, Any]:
    low, high, low_open = KEYFRAME_BOUNDS[name]
    return {"low": low, "high": high, "low_open": low_open}


def _main_settings_per_frame(values: dict[str, Any], render, data: dict,
                             report: list[str]) -> None:
    """A Video Input file without video_init_* keys: DD before 5.7 used the main settings."""
    for override, main in VIDEO_OVERRIDES.items():
        if main in ("frames_scale", "frames_skip_steps"):
            value = data.get(main, AnimationSpec.model_fields[main].default)
        else:
            value = getattr(render, main)
        values[override] = value
    shown = ", ".join(f"{main} {plain(values[override])}" for override, main in
                      list(VIDEO_OVERRIDES.items())[:4])
    report.append(f"no video_init_* settings (a file from before DD 5.7): every frame uses the "
                  f"main settings, as DD then did ({shown}, …)")


def export_dd_animation(spec: AnimationSpec, *, seed: int | None = None) -> dict[str, Any]:
    """The animation in DD 5.7's file layout, plus animation_mode (DD's own files lack it)."""
    out = export_dd_settings(spec.render, seed=seed)
    out["text_prompts"] = {str(frame): [dd_prompt(p) for p in prompts]
                           for frame, prompts in sorted(spec.text_prompts.items())}
    for key in (*DD_ANIMATION_KEYS, "sampling_mode"):
        out[key] = plain(getattr(spec, key))
    if out["video_init_path"] is None:
        out["video_init_path"] = "init.mp4"  # DD's default; not used outside Video Input
    return out
