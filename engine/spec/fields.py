"""What each RenderSpec setting means, what it allows, and the checks that enforce it.

Kept apart from `engine.spec.render` so that module reads as the list of settings; everything here is
plain Python. Checks raise `Invalid` (what is wrong, and optionally the fix); `engine.spec.render`
turns those into one `SpecError` with the allowed range taken from `SPEC_ALLOWED`.
"""
from __future__ import annotations

import contextvars
import difflib
import json
import re
import unicodedata
from typing import Any, Mapping

from pydantic import ValidationError

from engine.errors import SpecError
from engine.models.registry import (
    CLIP_MODEL_NAMES,
    DIFFUSION_MODEL_NAMES,
    OPENAI_CLIP_MODELS,
    diffusion_model_names,
)
from engine.spec.prompts import WeightedPrompt, parse_prompts
from engine.spec.schedules import as_finite_float, canonical_schedule, format_number, short_repr

SCHEMA_VERSION = 1
MAX_JSON_LENGTH = 1_000_000
DEFAULT_BATCH_NAME = "TimeToDisco"
MAX_BATCH_NAME = 64

DEFAULT_TEXT_PROMPTS = (
    WeightedPrompt(
        "A beautiful painting of a singular lighthouse, shining its light across a tumultuous "
        "sea of blood by greg rutkowski and thomas kinkade, Trending on artstation.",
        1.0,
    ),
    WeightedPrompt("yellow color scheme", 1.0),
)

DIFFUSION_MODELS = DIFFUSION_MODEL_NAMES
CHOICES: dict[str, tuple[str, ...]] = {
    "diffusion_model": DIFFUSION_MODELS,
    "sampling_mode": ("ddim", "plms"),
    "perlin_mode": ("mixed", "color", "gray"),
}

# ---- CLIP model names ----------------------------------------------------------------------
OPENAI_CLIP_ARCHS = tuple(name.partition("::")[0] for name in OPENAI_CLIP_MODELS)
TEST_CLIP_MODELS = ("TinyCLIP-test::none",)
CLIP_MODELS = CLIP_MODEL_NAMES + TEST_CLIP_MODELS
MAX_CLIP_MODELS = 8

# DD 5.7's checkbox names (as written in its settings files), in the order DD loads them.
DD_CLIP_FLAGS: dict[str, str] = {
    "ViTB32": "ViT-B-32::openai", "ViTB16": "ViT-B-16::openai", "ViTL14": "ViT-L-14::openai",
    "ViTL14_336px": "ViT-L-14-336::openai", "RN50": "RN50::openai", "RN50x4": "RN50x4::openai",
    "RN50x16": "RN50x16::openai", "RN50x64": "RN50x64::openai", "RN101": "RN101::openai",
    "ViTB32_laion2b_e16": "ViT-B-32::laion2b_e16",
    "ViTB32_laion400m_e31": "ViT-B-32::laion400m_e31",
    "ViTB32_laion400m_32": "ViT-B-32::laion400m_e32",  # DD's spelling lacks the 'e'
    "ViTB32quickgelu_laion400m_e31": "ViT-B-32-quickgelu::laion400m_e31",
    "ViTB32quickgelu_laion400m_e32": "ViT-B-32-quickgelu::laion400m_e32",
    "ViTB16_laion400m_e31": "ViT-B-16::laion400m_e31",
    "ViTB16_laion400m_e32": "ViT-B-16::laion400m_e32",
    "RN50_yffcc15m": "RN50::yfcc15m",  # DD's typo
    "RN50_cc12m": "RN50::cc12m",
    "RN50_quickgelu_yfcc15m": "RN50-quickgelu::yfcc15m",
    "RN50_quickgelu_cc12m": "RN50-quickgelu::cc12m",
    "RN101_yfcc15m": "RN101::yfcc15m",
    "RN101_quickgelu_yfcc15m": "RN101-quickgelu::yfcc15m",
}
# Other spellings people paste: OpenAI's own names ('ViT-B/32'), DD's typos, bare OpenAI archs.
_CLIP_LOOKUP: dict[str, str] = {name.lower(): name for name in CLIP_MODELS}
_CLIP_LOOKUP.update({flag.lower(): name for flag, name in DD_CLIP_FLAGS.items()})
_CLIP_LOOKUP.update({arch.lower(): f"{arch}::openai" for arch in OPENAI_CLIP_ARCHS})
_ARCH_ALIASES = {"vit-b/32": "ViT-B-32", "vit-b/16": "ViT-B-16", "vit-l/14": "ViT-L-14",
                 "vit-l/14@336px": "ViT-L-14-336", "vit-l-14@336px": "ViT-L-14-336"}
_TAG_ALIASES = {"yffcc15m": "yfcc15m", "laion400m_32": "laion400m_e32"}

# ---- documentation: description, allowed values, an example --------------------------------
_FIELDS: dict[str, tuple[str, str, str]] = {
    "text_prompts": ("what to paint: 'text:weight' prompts separated by |",
                     "1..16 prompts of up to 1000 characters, weights -100..100 not summing "
                     "to 0", "a lighthouse in a storm:2 | fog:-0.5"),
    "image_prompts": ("images that guide the result, as 'path_or_url:weight'",
                      "0..16 image paths or URLs", "https://example.com/style.png:1"),
    "width": ("image width in pixels, rounded down to a multiple of 64", "64..4096", "1280"),
    "height": ("image height in pixels, rounded down to a multiple of 64", "64..4096", "768"),
    "steps": ("diffusion steps: more is finer and slower", "2..1000 (whole number)", "250"),
    "skip_steps": ("steps skipped at the start (about half of steps with an init image)",
                   "0..steps-1 (whole number)", "10"),
    "clip_guidance_scale": ("how strongly CLIP pulls the image toward the prompts",
                            "0..10000000", "5000"),
    "tv_scale": ("smoothing (total variation) loss; 0 = off", "0..10000000", "0"),
    "range_scale": ("keeps colours in range; lower = more contrast", "0..10000000", "150"),
    "sat_scale": ("limits over-saturation; 0 = off", "0..10000000", "0"),
    "cutn_batches": ("how many times the cut schedule runs per step (better, slower)",
                     "1..64 (whole number)", "4"),
    "skip_augs": ("skip the random augmentations of the cuts", "true or false", "false"),
    "init_image": ("starting image path or URL; none = start from noise",
                   "a path or URL of up to 1000 characters, or none", "none"),
    "init_scale": ("how closely to keep to the init image", "0..10000000", "1000"),
    "diffusion_model": ("the diffusion model", "one of " + ", ".join(DIFFUSION_MODELS),
                        "512x512_diffusion_uncond_finetune_008100"),
    "use_secondary_model": ("denoise for CLIP with the small secondary model (faster)",
                            "true or false", "true"),
    "sampling_mode": ("the sampler", "ddim or plms", "ddim"),
    "clip_models": ("CLIP models that guide the image, as ARCH::TAG",
                    "1..8 different names such as ViT-B-32::openai, RN50::openai, "
                    "ViT-B-32::laion2b_e16", "ViT-B-32::openai,RN50::openai"),
    "cut_overview": ("whole-image cuts at each of the 1000 schedule positions",
                     "1000 whole numbers 0..64", "[12]*400+[4]*600"),
    "cut_innercut": ("zoomed-in cuts at each of the 1000 schedule positions",
                     "1000 whole numbers 0..64", "[4]*400+[12]*600"),
    "cut_ic_pow": ("inner-cut size power: higher = smaller cuts, finer detail",
                   "1000 numbers 0..100", "[1]*1000"),
    "cut_icgray_p": ("share of inner cuts made grey", "1000 numbers 0..1", "[0.2]*400+[0]*600"),
    "perlin_init": ("start from Perlin noise (replaces init_image)", "true or false", "false"),
    "perlin_mode": ("Perlin noise colours", "mixed, color or gray", "mixed"),
    "seed": ("random seed; none = pick one at random", "0..4294967295 or none", "42"),
    "eta": ("DDIM noise per step: 0 = none, 1 = full", "0..1", "0.8"),
    "clamp_grad": ("cap the guidance gradient", "true or false", "true"),
    "clamp_max": ("the gradient cap: higher = more contrast and vibrancy",
                  "above 0, at most 10", "0.05"),
    "clip_denoised": ("clamp the sampler's x̂₀ to [-1, 1] before each update (DD's option)",
                      "true or false", "false"),
    "fuzzy_prompt": ("add noisy copies of the prompts", "true or false", "false"),
    "rand_mag": ("noise size for fuzzy_prompt", "0..10", "0.05"),
    "use_vertical_symmetry": ("mirror one half of the image onto the other (vertical)",
                              "true or false", "false"),
    "use_horizontal_symmetry": ("mirror one half of the image onto the other (horizontal)",
                                "true or false", "false"),
    "transformation_percent": ("when symmetry is applied, as fractions of the run",
                               "0..16 numbers, each between 0 and 1 (exclusive)", "[0.09]"),
    "intermediate_saves": ("extra images saved during the run: N evenly spaced, or a list of "
                           "steps", "0..steps, or up to 100 step numbers 1..steps", "0"),
    "display_rate": ("progress preview every N steps", "1..1000 (whole number)", "20"),
    "n_batches": ("how many images to make with these settings", "1..100 (whole number)", "50"),
    "use_checkpoint": ("gradient checkpointing in the diffusion model (less memory, slower)",
                       "true or false", "true"),
    "batch_name": ("output folder name (made safe: letters, digits, space, _ . -)",
                   "1..64 characters", "TimeToDisco"),
    "gobig": ("after rendering, enlarge each image by gobig_scale: Lanczos, then every tile "
              "re-diffused with the same prompts and blended (ProgRock's GoBig)", "true or false",
              "false"),
    "gobig_scale": ("how many times larger GoBig makes the image, per side", "2..3 (whole number)", "2"),
    "gobig_overlap": ("pixels neighbouring GoBig tiles share (blended with feathered edges)",
                      "8..256 (whole number); at most half a tile is used", "64"),
    "gobig_skip_ratio": ("share of the steps each GoBig tile skips: more keeps the enlarged "
                         "image, less repaints it", "0.1..0.95", "0.6"),
    "describe": ("instead of rendering, describe init_image as a prompt: CLIP ranks mediums, "
                 "movements, artists and flavours against it (/describe)", "true or false", "false"),
    "gobig_init": ("enlarge this image instead of rendering one first (needs gobig=true)",
                   "a path of up to 1000 characters, or none", "none"),
}
SPEC_FIELDS: dict[str, str] = {name: f"{d} ({a})" for name, (d, a, _) in _FIELDS.items()}
FIELD_DOCS: Mapping[str, tuple[str, str, str]] = _FIELDS  # meaning, allowed values, an example
SPEC_ALLOWED: dict[str, str] = {name: a for name, (_, a, _) in _FIELDS.items()}
FIELD_EXAMPLES: dict[str, str] = {name: e for name, (_, _, e) in _FIELDS.items()}

_CUT_BOUNDS: dict[str, dict[str, Any]] = {
    "cut_overview": {"integer": True, "low": 0, "high": 64},
    "cut_innercut": {"integer": True, "low": 0, "high": 64},
    "cut_ic_pow": {"low": 0, "high": 100},
    "cut_icgray_p": {"low": 0, "high": 1},
}


def cut_schedule_bounds(name: str) -> dict[str, Any]:
    """parse_schedule keyword arguments for one of the four cut schedules."""
    return dict(_CUT_BOUNDS[name])


class Invalid(ValueError):
    """One problem with one setting: what is wrong and (optionally) how to fix it."""

    def __init__(self, what: str, *, param: str | None = None, fix: str | None = None,
                 has_fix: bool = False):
        super().__init__(what)
        # has_fix: the message already says how to fix it (the parsers' messages do).
        self.what, self.param, self.fix, self.has_fix = what, param, fix, has_fix
        self.problems: list[Invalid] = []

    @classmethod
    def many(cls, problems: list[Invalid]) -> Invalid:
        combined = cls("; ".join(p.what for p in problems), param=problems[0].param)
        combined.problems = problems
        return combined

    @classmethod
    def from_spec_error(cls, err: SpecError, param: str | None = None) -> Invalid:
        """Wrap a parser's SpecError, whose message already says what to write instead."""
        param = param or err.param
        message = str(err)
        if param and message.startswith(f"{param}: "):
            message = message[len(param) + 2:]
        return cls(message, param=param, has_fix=True)


def spec_error(exc: ValidationError, *, examples: Mapping[str, str], allowed: Mapping[str, str],
               noun: str = "settings") -> SpecError:
    """pydantic's errors as one SpecError: a ``param: what; allowed: …; fix: …`` line each
    (the fix is the setting's example when the problem does not say one)."""
    lines: list[str] = []
    params: list[str] = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        loc = str(error["loc"][0]) if error.get("loc") else "settings"
        problems = ((cause.problems or [cause]) if isinstance(cause, Invalid)  # a built-in check:
                    else [Invalid(error.get("msg", "invalid value"), param=loc)])  # same shape
        for problem in problems:
            param = problem.param or loc
            params.append(param)
            fix = problem.fix
            if not fix and not problem.has_fix and param in examples:
                fix = f"e.g. {param}={examples[param]}"
            line = f"{param}: {problem.what}" + (f"; allowed: {allowed[param]}" if param in allowed else "")
            lines.append(line + (f"; fix: {fix}" if fix else ""))
    if len(lines) == 1:
        return SpecError(lines[0], params[0])
    body = "\n".join(f"- {line}" for line in lines)
    return SpecError(f"{len(lines)} {noun} are invalid:\n{body}",
                     params[0] if len(set(params)) == 1 else None)


# ---- notes: validators report adjustments to the RenderSpec being built ---------------------
_NOTES: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("spec_notes",
                                                                          default=None)


def set_notes_sink(notes: list[str]) -> contextvars.Token:
    return _NOTES.set(notes)


def reset_notes_sink(token: contextvars.Token) -> None:
    _NOTES.reset(token)


def add_note(text: str) -> None:
    """Record a harmless adjustment for the spec being validated (RenderSpec or AnimationSpec)."""
    sink = _NOTES.get()
    if sink is not None:
        sink.append(text)


def closest_name(name: str, candidates: list[str]) -> str | None:
    """The candidate the user probably meant: one the name begins, else the closest spelling."""
    lowered = name[:100].strip().lower()  # bounded: difflib's cost grows with the length
    prefixed = [c for c in candidates if lowered and c.lower().startswith(lowered)]
    if prefixed:
        return min(prefixed, key=len)
    matches = difflib.get_close_matches(lowered, [c.lower() for c in candidates], n=1,
                                        cutoff=0.6)
    if not matches:
        return None
    return next(c for c in candidates if c.lower() == matches[0])


# ---- checks: each takes the raw value and the field name, returns the clean value ------------
_WHOLE_TEXT = re.compile(r"\s*[+-]?\d{1,30}\s*")
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def check_flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise Invalid(f"{short_repr(value)} is not true or false")


def _number(value: object, kind: str = "a number") -> float:
    """Any finite number, given as a number or as text; bools are refused."""
    given = value
    if isinstance(value, str) and _NUMBER_TEXT.fullmatch(value):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(f"{short_repr(value)} is not {kind}")
    number = as_finite_float(value)
    if number is None:  # the value as given: "1e400" read as a float would show as inf
        raise Invalid(f"{short_repr(given)} is not a finite number (too large, or nan)")
    return number


def check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, str) and _WHOLE_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        whole = value
    else:
        number = _number(value, "a whole number")
        if not number.is_integer():
            raise Invalid(f"{short_repr(value)} is not a whole number")
        whole = int(number)
    if not low <= whole <= high:
        side = "below the minimum" if whole < low else "above the maximum"
        raise Invalid(f"{short_repr(whole)} is {side}")
    return whole


def check_float(value: object, name: str, low: float, high: float, low_open: bool) -> float:
    number = _number(value)
    if number > high:
        raise Invalid(f"{format_number(number)} is above the maximum")
    if number < low or (low_open and number == low):
        raise Invalid(f"{format_number(number)} is "
                      + (f"not above {format_number(low)}" if low_open else "below the minimum"))
    return number + 0.0


MIN_SIDE, MAX_SIDE = 64, 4096  # width and height, in pixels


def check_side(value: object, name: str) -> int:
    side = check_int(value, name, MIN_SIDE, MAX_SIDE)
    if side % 64:
        add_note(f"{name} {side} is not a multiple of 64: using {side // 64 * 64}")
    return side // 64 * 64


def choices_of(name: str) -> tuple[str, ...]:
    """The allowed values of a choice setting; diffusion models include the custom ones this
    process registered from the config file (engine/models/custom.py)."""
    return diffusion_model_names() if name == "diffusion_model" else CHOICES[name]


def check_choice(value: object, name: str) -> str:
    choices = choices_of(name)
    if isinstance(value, str):
        text = value.strip()
        for choice in choices:
            if text.lower() == choice.lower():
                return choice
        guess = closest_name(text, list(choices))
        raise Invalid(f"{short_repr(value)} is not known"
                      + (f" (did you mean '{guess}'?)" if guess else ""))
    raise Invalid(f"{short_repr(value)} is not a name")


def check_prompts(value: object, name: str) -> list[WeightedPrompt]:
    try:
        return parse_prompts(value, param=name)
    except SpecError as err:
        raise Invalid.from_spec_error(err, name) from None


def check_schedule(value: object, name: str, bounds: dict[str, Any]) -> str:
    try:
        return canonical_schedule(value, param=name, **bounds)
    except SpecError as err:
        raise Invalid.from_spec_error(err, name) from None


def check_seed(value: object, name: str) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in
                         ("", "none", "null", "random", "random_seed")):
        return None
    return check_int(value, name, 0, 2**32 - 1)


def _check_text_chars(text: str) -> None:
    for index, char in enumerate(text):
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise Invalid(f"contains the control character U+{ord(char):04X} at position "
                          f"{index + 1}", fix="remove it")


def is_no_value(value: object) -> bool:
    """None, or text that says none (a settings file's `image_prompts=none`), for the image
    settings: read as "no image", never as a file named `none`."""
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null"))


def check_image_prompts(value: object, name: str) -> list[WeightedPrompt]:
    return [] if is_no_value(value) else check_prompts(value, name)


def check_init_image(value: object, name: str) -> str | None:
    if is_no_value(value):
        return None
    if not isinstance(value, str):
        raise Invalid(f"{short_repr(value)} is not a path or URL")
    text = value.strip()
    if len(text) > 1000:
        raise Invalid(f"the path is {len(text)} characters long")
    _check_text_chars(text)
    return text


def canonical_clip_model(name: str) -> str:
    """'ViT-B/32', 'ViTB32', 'vit-b-32' ... -> 'ViT-B-32::openai'; Invalid if unknown."""
    text = name.strip()
    found = _CLIP_LOOKUP.get(text.lower())
    if found is None:
        arch, _, tag = text.partition("::")
        arch = _ARCH_ALIASES.get(arch.strip().lower(), arch.strip())
        tag = _TAG_ALIASES.get(tag.strip().lower(), tag.strip()) or "openai"
        found = _CLIP_LOOKUP.get(f"{arch}::{tag}".lower())
    if found is None:
        guess = closest_name(text, list(CLIP_MODELS))
        raise Invalid(f"unknown CLIP model {short_repr(text)}"
                      + (f" (did you mean '{guess}'?)" if guess else ""),
                      fix="use names from: " + ", ".join(CLIP_MODELS))
    return found


def check_clip_models(value: object, name: str) -> list[str]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[,|\s]+", value) if part]
    if not isinstance(value, (list, tuple)):
        raise Invalid(f"{short_repr(value)} is not a list of model names")
    if not 1 <= len(value) <= MAX_CLIP_MODELS:
        raise Invalid(f"{len(value)} models given")
    models: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise Invalid(f"{short_repr(item)} is not a model name")
        model = canonical_clip_model(item)
        if model in models:
            raise Invalid(f"{model} is listed twice", fix="list each model once")
        models.append(model)
    return models


def check_transformation_percent(value: object, name: str) -> list[float]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if len(items) > 16:
        raise Invalid(f"{len(items)} values given")
    result = []
    for item in items:
        number = _number(item)
        if not 0 < number < 1:
            raise Invalid(f"{format_number(number)} is not between 0 and 1",
                          fix="e.g. transformation_percent=[0.09] (9% into the run)")
        result.append(number + 0.0)
    return result


def check_intermediate_saves(value: object, name: str) -> int | list[int]:
    if not isinstance(value, (list, tuple)):
        return check_int(value, name, 0, 1000)
    if len(value) > 100:
        raise Invalid(f"{len(value)} steps listed")
    steps = sorted({check_int(item, name, 1, 1000) for item in value})
    return steps if steps else 0  # an empty list and 0 both mean "no intermediate saves"


_RESERVED_NAMES = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                   *(f"lpt{i}" for i in range(10))}


def safe_batch_name(name: str) -> str:
    """Keep [A-Za-z0-9 _.-], no leading dots, no '..', no separators, at most 64 characters."""
    # 'café' -> 'cafe': decompose accents and drop the combining marks; other symbols -> '_'.
    letters = "".join(c for c in unicodedata.normalize("NFKD", name)
                      if unicodedata.category(c) != "Mn")
    text = re.sub(r"[^A-Za-z0-9 _.\-]", "_", letters)
    text = re.sub(r"\.{2,}", ".", text)
    text = re.sub(r"_{2,}", "_", text)
    text = text.strip(" ._-")[:MAX_BATCH_NAME].rstrip(" .")
    if text.split(".")[0].lower() in _RESERVED_NAMES:  # names Windows cannot create
        text = f"{text}_"
    return text or DEFAULT_BATCH_NAME


def check_batch_name(value: object, name: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value) if value.bit_length() < 200 else ""
    if not isinstance(value, str):
        raise Invalid(f"{short_repr(value)} is not text")
    safe = safe_batch_name(value[:10_000])
    if safe != value:
        add_note(f"batch_name {short_repr(value)} changed to {safe!r} so it is a safe folder name")
    return safe


class CanonicalJSON:
    """Canonical JSON and settings equality for the spec models (mixed in before BaseModel):
    sorted keys, no NaN, stable float text, so equal specs give equal bytes; notes and caches
    are not settings, so they do not take part in equality."""

    def to_json(self, *, indent: int | None = None) -> str:
        separators = (",", ":") if indent is None else (",", ": ")
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False,
                          allow_nan=False, indent=indent, separators=separators)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())
