"""What each setting a job takes means, for the people who type them: every still setting
(RenderSpec) and every animation setting (AnimationSpec), with what it does, the values it
allows and its default, so `/disco-help setting:` can answer "what is cut_ic_pow?" in Discord.

The still settings' words are engine.spec.fields' table, the one refusals quote; the animation
settings' words are below, their allowed values the spec's own bounds. A test checks that every
field of both specs has its entry, so a setting added to a spec without words fails the suite.
"""
from __future__ import annotations

from dataclasses import dataclass

from engine.spec import animation, fields
from engine.spec.animation import AnimationSpec
from engine.spec.fields import closest_name
from engine.spec.prompts import WeightedPrompt
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number

# Settings that are not the user's to type: the per-frame still settings (they are the still
# settings themselves) and the path fields the bot fills from attachments.
_NOT_SETTINGS = {"render"}

# The animation settings in our words (DD 5.7's notebook is the authority on what they do).
_ANIMATION_WORDS: dict[str, str] = {
    "animation_mode": "the kind of animation: 2D (pan, zoom, rotate the flat image), 3D (a camera "
                      "moving through the image's estimated depth) or Video Input (repaint a video)",
    "max_frames": "how many frames to render",
    "key_frames": "read the motion settings as keyframes ('frame: (value)'); false = one number each",
    "interp_spline": "how values between keyframes are filled in",
    "angle": "2D: degrees the image turns each frame",
    "zoom": "2D: how much the image grows each frame (1 = none, 1.05 = 5% per frame)",
    "translation_x": "pixels the image moves sideways each frame (2D), or the camera's sideways "
                     "move (3D)",
    "translation_y": "pixels the image moves up or down each frame (2D), or the camera's (3D)",
    "translation_z": "3D: the camera's move forward (positive) or back each frame",
    "rotation_3d_x": "3D: degrees the camera tilts up or down each frame",
    "rotation_3d_y": "3D: degrees the camera turns left or right each frame",
    "rotation_3d_z": "3D: degrees the camera rolls each frame",
    "text_prompts": "the prompts, optionally by frame: '0: a castle | 60: a city' changes the "
                    "prompt at frame 60",
    "frames_scale": "how closely each frame keeps to the previous one (its init_scale)",
    "frames_skip_steps": "share of each later frame's steps skipped: more keeps frames alike, "
                         "less repaints them",
    "midas_depth_model": "3D: the depth model (MiDaS DPT-Large)",
    "midas_weight": "3D: MiDaS's share of the depth estimate (kept for DD settings files; with "
                    "MiDaS alone it has no effect)",
    "near_plane": "3D: the camera's near clipping distance",
    "far_plane": "3D: the camera's far clipping distance",
    "fov": "3D: the camera's field of view in degrees",
    "padding_mode": "3D: how the edges revealed by a camera move are filled",
    "sampling_mode": "3D: how pixels are resampled when the frame is warped",
    "turbo_mode": "3D: diffuse only every turbo_steps-th frame and warp the ones between "
                  "(2-4x faster, often smoother)",
    "turbo_steps": "3D turbo: diffuse one frame in this many",
    "turbo_preroll": "3D turbo: frames diffused one by one before turbo starts",
    "vr_mode": "3D: also render left and right eye frames, as a side-by-side VR180 MP4",
    "vr_eye_angle": "3D VR: degrees each eye turns inward",
    "vr_ipd": "3D VR: distance between the eyes",
    "video_init_path": "Video Input: the video to repaint (on Discord, the video attachment)",
    "init_frame": "an image used as frame 0 exactly as it is (the 🎞 button under a still)",
    "extract_nth_frame": "Video Input: render every n-th frame of the video",
    "video_init_seed_continuity": "Video Input: keep one seed for every frame (less flicker)",
    "video_init_flow_warp": "Video Input: carry the last output along the video's motion "
                            "(optical flow)",
    "video_init_flow_blend": "Video Input: 0 = the raw video frame, 1 = the previous output "
                             "warped along the motion",
    "video_init_blend_mode": "Video Input: how the previous output is blended into the next frame",
    "video_init_steps": "Video Input: diffusion steps of each frame",
    "video_init_clip_guidance_scale": "Video Input: clip_guidance_scale of each frame",
    "video_init_tv_scale": "Video Input: tv_scale of each frame",
    "video_init_range_scale": "Video Input: range_scale of each frame",
    "video_init_sat_scale": "Video Input: sat_scale of each frame",
    "video_init_cutn_batches": "Video Input: cutn_batches of each frame",
    "video_init_skip_steps": "Video Input: skip_steps of the first frame",
    "video_init_frames_scale": "Video Input: frames_scale of each later frame",
    "video_init_frames_skip_steps": "Video Input: frames_skip_steps of each later frame",
    "fps": "frames per second of the MP4",
}


@dataclass(frozen=True)
class SettingHelp:
    name: str
    animation: bool  # an animation setting (/animate), else a still setting (every job)
    meaning: str
    allowed: str
    default: str


def setting_names() -> list[str]:
    """Every setting's name once: the still settings, then the animation settings."""
    return list(dict.fromkeys([*RenderSpec.model_fields, *_animation_fields()]))


def setting_help(name: str) -> tuple[SettingHelp, ...]:
    """The help of the setting called `name` (any case): one entry, or two where a still and an
    animation setting share the name (sampling_mode); empty if there is no such setting."""
    name = name.strip().lower()
    found = []
    if name in RenderSpec.model_fields:
        meaning, allowed, _ = fields.FIELD_DOCS[name]
        found.append(SettingHelp(name, False, meaning, allowed, _shown(RenderSpec.model_fields[name].default)))
    if name in _animation_fields() and not (name == "text_prompts" and found):  # one prompt syntax
        found.append(SettingHelp(name, True, _ANIMATION_WORDS[name], _animation_allowed(name),
                                 _shown(AnimationSpec.model_fields[name].default)))
    return tuple(found)


def _animation_fields() -> list[str]:
    return [name for name in AnimationSpec.model_fields if name not in _NOT_SETTINGS]


def closest_setting(name: str) -> str | None:
    """The setting someone probably meant by `name`."""
    return closest_name(name, setting_names())


def _animation_allowed(name: str) -> str:
    default = AnimationSpec.model_fields[name].default
    if name in animation.ALLOWED:
        return animation.ALLOWED[name]
    if name in animation.KEYFRAME_BOUNDS:
        low, high, low_open = animation.KEYFRAME_BOUNDS[name]
        low_text, high_text = format_number(low), format_number(high)
        each = f"above {low_text}, at most {high_text}" if low_open else f"{low_text}..{high_text}"
        return f"keyframes such as '0: (1), 10: (1.05)', each value {each}"
    if isinstance(default, bool):
        return "true or false"
    if isinstance(default, str) and default.endswith("%"):
        return "0%..99% of the steps (whole percent)"
    if name == "text_prompts":
        return "prompts as for stills, optionally keyed by frame"
    return "a file (on Discord, an attachment)"


def _shown(value: object) -> str:
    """A default as people type it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, (tuple, list)):
        if value and isinstance(value[0], WeightedPrompt):
            return " | ".join(f"{p.text}:{format_number(p.weight)}" for p in value)
        return ", ".join(_shown(item) for item in value) or "none"
    return str(value)
