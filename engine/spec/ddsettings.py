"""Read and write Disco Diffusion 5.x ``*_settings.txt`` files.

DD writes one JSON file per run (about 110 keys) but has no loader. We read the keys that
matter for a still image, report every key we do not use, and never drop one silently:
animation and video keys are "ignored for still images", keys with no effect say why, and
keys DD never wrote are reported as unknown. Export writes the same layout DD does (so DD
users can read it) plus a few keys of ours, and importing an export gives back an equal spec.
"""
from __future__ import annotations

import re
from typing import Any

from engine import __version__
from engine.errors import ModelError, SpecError
from engine.models.registry import DIFFUSION_MODEL_NAMES, custom_model_names, get_model
from engine.spec.ddfile import DISCOART_NO_EFFECT, load_dd_file, require_dd_key
from engine.spec.fields import DD_CLIP_FLAGS, closest_name
from engine.spec.prompts import WeightedPrompt
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number, short_repr

ENGINE_NAME = "disco-discord"
MAX_UNKNOWN_REPORTED = 20

# DD keys whose meaning and name are the same as ours.
_SAME_NAME = (
    "clip_guidance_scale", "tv_scale", "range_scale", "sat_scale", "cutn_batches", "init_image",
    "init_scale", "skip_steps", "perlin_init", "perlin_mode", "skip_augs", "clamp_grad",
    "clamp_max", "fuzzy_prompt", "rand_mag", "eta", "width", "height", "diffusion_model",
    "use_secondary_model", "steps", "clip_denoised", "cut_overview", "cut_innercut", "cut_ic_pow", "cut_icgray_p",
    "use_horizontal_symmetry", "use_vertical_symmetry", "transformation_percent",
    # Not in DD's file, but DD notebook settings; we write them so a round trip is complete.
    "batch_name", "n_batches", "display_rate", "intermediate_saves", "use_checkpoint",
)

# DD's animation, video and 3D keys with the defaults DD 5.7 ships (written on export).
_ANIMATION_DEFAULTS: dict[str, Any] = {
    "animation_mode": "None", "max_frames": 10000, "interp_spline": "Linear",
    "frames_scale": 1500, "frames_skip_steps": "60%", "key_frames": True, "angle": "0:(0)",
    "zoom": "0: (1), 10: (1.05)", "translation_x": "0: (0)", "translation_y": "0: (0)",
    "translation_z": "0: (10.0)", "rotation_3d_x": "0: (0)", "rotation_3d_y": "0: (0)",
    "rotation_3d_z": "0: (0)", "midas_depth_model": "dpt_large", "midas_weight": 0.3,
    "near_plane": 200, "far_plane": 10000, "fov": 40, "padding_mode": "border",
    "sampling_mode": "bicubic", "video_init_path": "init.mp4", "extract_nth_frame": 2,
    "video_init_seed_continuity": False, "turbo_mode": False, "turbo_steps": "3",
    "turbo_preroll": 10, "video_init_steps": 100, "video_init_clip_guidance_scale": 1000,
    "video_init_tv_scale": 0.1, "video_init_range_scale": 150, "video_init_sat_scale": 300,
    "video_init_cutn_batches": 4, "video_init_skip_steps": 50, "video_init_frames_scale": 15000,
    "video_init_frames_skip_steps": "70%", "video_init_flow_warp": True,
    "video_init_flow_blend": 0.999, "video_init_check_consistency": False,
    "video_init_blend_mode": "optical flow",
}
# Other animation/video/resume keys seen in DD notebooks and forks' settings files.
_MORE_STILL_IGNORED = (
    "vr_mode", "vr_eye_angle", "vr_ipd", "persistent_frame_output_in_batch_folder",
    "force_flow_generation", "resume_run", "run_to_resume", "resume_from_frame",
    "retain_overwritten_frames", "skip_video_for_run_all", "blend", "init_frame", "last_frame",
    "fps", "start_frame", "video_init_seed", "frames_skip_steps_series",
)
# Keys that do nothing in a still render here, with the reason shown to the user.
_NO_EFFECT: dict[str, str] = {
    "diffusion_steps": "derived from steps",
    "timestep_respacing": "derived from steps",
    "randomize_class": "as in DD, no effect: DD's diffusion models are unconditional",
    "batch_size": "DD renders one image at a time",
    "cutn": "replaced by cut_overview and cut_innercut in DD 5",
    "intermediates_in_subfolder": "intermediate images always go to a partials folder",
    "steps_per_checkpoint": "derived from intermediate_saves",
    "google_drive": "a Colab setting", "save_models_to_google_drive": "a Colab setting",
    "useCPU": "the engine picks its device", "check_model_SHA": "models are always checked",
    "custom_path": "it names the author's file; diffusion_model: custom uses a model of the "
                   "config file's [models.custom] (disco models add)",
    "sharpen_preset": "DD 5.1's sharpening is not supported",
    "keep_unsharp": "DD 5.1's sharpening is not supported",
    "width_height_for_256x256_models": "used only when the diffusion model is 256x256",
    "width_height_for_512x512_models": "used only when the diffusion model is 512x512",
    "engine": "written by this engine", "engine_version": "written by this engine",
    "schema_version": "written by this engine", "model_set": "written by this engine",
    "models_sha256": "written by this engine",
    **DISCOART_NO_EFFECT,
}
# Other names DD forks and discoart gave the registered models.
_MODEL_SPELLINGS = {"PADexpanded": "pixelartdiffusion_expanded",
                    "Isometric_Diffusion_Revrart512px": "IsometricDiffusionRevrart512px"}
_STILL_IGNORED = frozenset(_ANIMATION_DEFAULTS) | frozenset(_MORE_STILL_IGNORED)
STILL_IGNORED_KEYS = _STILL_IGNORED  # keys a still import sets aside (animation, video, our own)
_KNOWN_KEYS = (set(_SAME_NAME) | _STILL_IGNORED | set(_NO_EFFECT) | set(DD_CLIP_FLAGS)
               | {"text_prompts", "image_prompts", "seed", "set_seed", "diffusion_sampling_mode",
                  "width_height", "clip_models"})



def _frame_zero(key: str, value: object, report: list[str]) -> object:
    """DD keys prompts by animation frame ({"0": [...], "100": [...]}); stills use frame 0."""
    if not isinstance(value, dict):
        return value  # already a list or a '|' string
    frames: dict[int, object] = {}
    for frame, prompts in value.items():
        if isinstance(frame, int) and not isinstance(frame, bool) and abs(frame) < 10**9:
            frame = str(frame)
        text = frame.strip() if isinstance(frame, str) else ""
        if not re.fullmatch(r"-?[0-9]{1,9}", text):
            raise SpecError(f"{key}: frame {short_repr(frame)} is not a frame number; DD writes "
                            f'{key} as {{"0": ["a lighthouse:2", ...]}}', key)
        frames[int(text)] = prompts
    if not frames:
        return []
    first = 0 if 0 in frames else min(frames)
    if first != 0:
        report.append(f"{key}: no frame 0; using frame {first}")
    others = sorted(frame for frame in frames if frame != first)
    if others:
        shown = ", ".join(str(frame) for frame in others[:10])
        shown += ", …" if len(others) > 10 else ""
        report.append(f"{key}: frames {shown} ignored; still images use frame {first}")
    return frames[first]


def _is_word(value: object, *words: str) -> bool:
    return isinstance(value, str) and value.strip().lower() in words


def _seed(data: dict) -> tuple[str, object]:
    key = "seed" if "seed" in data else "set_seed"
    value = data.get(key)
    if isinstance(value, str) and value.strip().lower() in ("random_seed", "random", ""):
        return key, None
    return key, value


def _clip_models(data: dict, report: list[str]) -> list[str] | None:
    """clip_models from our own key, else from DD's checkboxes; None keeps the default."""
    flags = {key: data[key] for key in DD_CLIP_FLAGS if key in data}
    for key, value in flags.items():
        if not isinstance(value, bool) and value not in (0, 1):
            raise SpecError(f"{key}: {short_repr(value)} is not true or false; DD's CLIP "
                            f"checkboxes are true or false", key)
    from_flags = [DD_CLIP_FLAGS[key] for key in DD_CLIP_FLAGS if flags.get(key)]
    if "clip_models" in data:
        if flags and from_flags != data["clip_models"]:
            report.append("DD's CLIP checkboxes (ViTB32, RN50, ...) ignored: clip_models is given")
        return data["clip_models"]
    if not flags:
        return None
    if not from_flags:
        raise SpecError(f"{', '.join(flags)}: no CLIP model is switched on; set at least one "
                        f"to true (DD's default: ViTB32, ViTB16 and RN50)", next(iter(flags)))
    return from_flags


def _size(data: dict, values: dict[str, Any], report: list[str]) -> str | None:
    """width/height from DD's width_height list, or from the per-model-size pair DD would use
    for this model; the key used, if any."""
    if "width" in data or "height" in data:  # what DD itself writes
        if "width_height" in data:
            report.append("width_height: ignored (width and height are given)")
        return None
    key = "width_height"
    if key not in data:
        small = is_256_class(values.get("diffusion_model"))
        key = "width_height_for_256x256_models" if small else "width_height_for_512x512_models"
        if key not in data:
            return None
    pair = data[key]
    if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
        raise SpecError(f"{key}: expected [width, height], e.g. [1280, 768]; got "
                        f"{short_repr(pair)}", key)
    values["width"], values["height"] = pair
    if key != "width_height":
        report.append(f"{key}: gave the size {pair[0]}x{pair[1]} (DD's size for this model)")
    return key


def _model_name(name: str, data: dict, report: list[str]) -> str:
    """DD's and discoart's spellings of a diffusion model (discoart matches file-name prefixes,
    e.g. portrait_generator_v001_ema_0.9999_1MM); 'custom' is refused with the fix."""
    text = name.strip()
    if text.lower() == "custom":
        return _custom_model(data.get("custom_path"), report)
    known = _MODEL_SPELLINGS.get(text) or next(
        (model for model in sorted(DIFFUSION_MODEL_NAMES, key=len, reverse=True)
         if text != model and text.startswith(model)), None)
    if known is None:
        return text
    report.append(f"diffusion_model {short_repr(text)} read as {known}")
    return known


def _custom_model(custom_path: object, report: list[str]) -> str:
    """DD's 'custom': the configured custom model `custom_path` names (its name or file name),
    else the only one configured; otherwise refused with the choices or how to add one."""
    names = custom_model_names()
    where = f" (custom_path {short_repr(custom_path)})" if custom_path else ""
    if isinstance(custom_path, str) and custom_path.strip():
        stem = re.split(r"[\\/]", custom_path.strip())[-1]
        for name in names:
            entry = get_model(name)
            if stem in (name, entry.filename, f"{name}.pt", f"{name}.pth"):
                report.append(f"diffusion_model 'custom'{where} read as the configured {name}")
                return name
    if len(names) == 1:
        report.append(f"diffusion_model 'custom'{where} read as {names[0]}, the one custom model "
                      f"configured")
        return names[0]
    if names:
        raise SpecError(f"diffusion_model: 'custom'{where} could be any of the configured custom "
                        f"models {', '.join(names)} — fix: set diffusion_model to one of them",
                        "diffusion_model")
    raise SpecError(f"diffusion_model: 'custom' is a model file on the author's machine{where}; "
                    f"no custom model is configured here — fix: add it with `disco models add "
                    f"NAME --url URL --sha256 HEX` (a [models.custom.NAME] table in the config "
                    f"file), or set diffusion_model to one of {', '.join(DIFFUSION_MODEL_NAMES)}",
                    "diffusion_model")


def is_256_class(model: object) -> bool:
    """Whether DD sizes this diffusion model with width_height_for_256x256_models."""
    try:
        entry = get_model(str(model)) if model else None
    except ModelError:
        return False
    return entry is not None and entry.config.get("image_size") == 256


def import_dd_settings(source: object) -> tuple[RenderSpec, list[str]]:
    """A RenderSpec from a DD 5.x settings file (JSON, JSON5 or YAML text, bytes or a dict),
    plus report lines naming every value that changed on the way."""
    data, report = load_dd_file(source)
    return import_dd_data(data, report)


def import_dd_data(data: dict, report: list[str]) -> tuple[RenderSpec, list[str]]:
    """`import_dd_settings` for a dict `load_dd_file` has read (report: what it said)."""
    require_dd_key(data, _KNOWN_KEYS)
    report = list(report)
    values: dict[str, Any] = {key: data[key] for key in _SAME_NAME if key in data}
    if isinstance(data.get("diffusion_model"), str):
        values["diffusion_model"] = _model_name(data["diffusion_model"], data, report)
    origin: dict[str, str] = {}  # our setting -> the DD key it came from, where names differ
    for key in ("text_prompts", "image_prompts"):
        if key in data:
            values[key] = _frame_zero(key, data[key], report)
    if "seed" in data or "set_seed" in data:
        key, values["seed"] = _seed(data)
        origin["seed"] = key
        if "seed" in data and "set_seed" in data:
            report.append("set_seed: ignored (seed, the seed the run used, is given)")
    if "diffusion_sampling_mode" in data:
        values["sampling_mode"] = data["diffusion_sampling_mode"]
        origin["sampling_mode"] = "diffusion_sampling_mode"
    elif _is_word(data.get("sampling_mode"), "ddim", "plms"):
        # Before DD 5.1 'sampling_mode' named the diffusion sampler (later the 3D resampler).
        values["sampling_mode"] = data["sampling_mode"]
        report.append("sampling_mode: read as the diffusion sampler (a DD 5.0 file)")
    size_key = _size(data, values, report)
    models = _clip_models(data, report)
    if models is not None:
        values["clip_models"] = models
    if "animation_mode" in data and not _is_word(data["animation_mode"], "none"):
        report.append(f"animation_mode {short_repr(data['animation_mode'])}: this engine renders "
                      f"still images; frame 0's prompts are used")
    report.extend(_unused_keys({k: v for k, v in data.items() if k != size_key}, values))
    try:
        spec = RenderSpec.from_dict(values)
    except SpecError as err:
        raise _with_dd_names(err, origin) from None
    return spec, report + list(spec.notes)


def _unused_keys(data: dict, values: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    ignored = sorted(key for key in data if key in _STILL_IGNORED
                     and not (key == "sampling_mode" and "sampling_mode" in values
                              and "diffusion_sampling_mode" not in data))
    if ignored:
        lines.append("ignored for still images (animation and video settings): "
                     + ", ".join(ignored))
    for key in data:
        if key in _NO_EFFECT and key not in ("engine", "engine_version", "schema_version"):
            lines.append(f"{key}: ignored ({_NO_EFFECT[key]})")
    unknown = [key for key in data if key not in _KNOWN_KEYS]
    for key in unknown[:MAX_UNKNOWN_REPORTED]:
        guess = closest_name(key, sorted(_KNOWN_KEYS))
        hint = f" (did you mean '{guess}'?)" if guess else ""
        lines.append(f"{key[:60]}: unknown key, not a Disco Diffusion 5.x setting; "
                     f"not used{hint}")
    if len(unknown) > MAX_UNKNOWN_REPORTED:
        lines.append(f"… and {len(unknown) - MAX_UNKNOWN_REPORTED} more unknown keys, not used")
    return lines


def _with_dd_names(err: SpecError, origin: dict[str, str]) -> SpecError:
    """Point at the DD key the user wrote when our name for it differs."""
    message = str(err)
    renamed = [f"{ours} is '{dd}' in the DD file" for ours, dd in origin.items()
               if dd != ours and f"{ours}:" in message]
    if renamed:
        message += " (" + "; ".join(renamed) + ")"
    param = origin.get(err.param, err.param) if err.param else None
    return SpecError(f"in the DD settings: {message}", param)


def dd_prompt(prompt: WeightedPrompt) -> str:
    """DD's 'text:weight'; the weight is always written when the text has a colon of its own."""
    if prompt.weight == 1.0 and ":" not in prompt.text:
        return prompt.text
    return f"{prompt.text}:{format_number(prompt.weight)}"


def _dd_diffusion_steps(steps: int) -> int:
    """DD's derived base schedule length: the largest multiple of steps not above 1000."""
    return (1000 // steps) * steps if steps < 1000 else steps


def plain(value: object) -> object:
    """Whole floats as ints (DD's files say 5000, not 5000.0); other values unchanged."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return int(value)
    return value


def export_dd_settings(spec: RenderSpec, *, seed: int | None = None) -> dict[str, Any]:
    """The settings in DD 5.7's file layout, plus clip_models and a few keys of ours.

    `seed` is the seed actually used (for a spec whose seed is None = random).
    """
    used_seed = seed if seed is not None else spec.seed
    out: dict[str, Any] = {
        "text_prompts": {"0": [dd_prompt(p) for p in spec.text_prompts]},
        "image_prompts": {"0": [dd_prompt(p) for p in spec.image_prompts]}
        if spec.image_prompts else {},
    }
    for key in ("clip_guidance_scale", "tv_scale", "range_scale", "sat_scale", "cutn_batches",
                "init_image", "init_scale", "skip_steps", "perlin_init", "perlin_mode",
                "skip_augs"):
        out[key] = plain(getattr(spec, key))
    out.update(randomize_class=True, clip_denoised=spec.clip_denoised, clamp_grad=spec.clamp_grad,
               clamp_max=spec.clamp_max,
               seed=used_seed if used_seed is not None else "random_seed",
               fuzzy_prompt=spec.fuzzy_prompt, rand_mag=spec.rand_mag, eta=spec.eta,
               width=spec.width, height=spec.height, diffusion_model=spec.diffusion_model,
               use_secondary_model=spec.use_secondary_model, steps=spec.steps,
               diffusion_steps=_dd_diffusion_steps(spec.steps),
               diffusion_sampling_mode=spec.sampling_mode)
    out.update({flag: name in spec.clip_models for flag, name in DD_CLIP_FLAGS.items()})
    for key in ("cut_overview", "cut_innercut", "cut_ic_pow", "cut_icgray_p",
                "use_horizontal_symmetry", "use_vertical_symmetry", "transformation_percent"):
        out[key] = getattr(spec, key)
    out.update({key: value for key, value in _ANIMATION_DEFAULTS.items() if key not in out})
    out.update(clip_models=list(spec.clip_models), batch_name=spec.batch_name,
               n_batches=spec.n_batches, display_rate=spec.display_rate,
               intermediate_saves=spec.intermediate_saves, use_checkpoint=spec.use_checkpoint,
               engine=ENGINE_NAME, engine_version=__version__)
    return out
