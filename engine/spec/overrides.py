"""``key=value`` settings as people type them: the CLI's repeated ``--set``, the bot's
``settings:`` option ("steps=150; eta=0.5"), presets and server defaults. Lines pasted from a DD
settings file read the same: ``"steps": 150, "eta": 0.5`` (``key: value``, commas between).

Values are read as literals, never evaluated: numbers, true/false, none, JSON lists and
objects, quoted text, else the bare word. Cut schedules stay text for the schedule parser
(JSON would misread ``[12]*400``). `parse_set_options` gives RenderSpec fields (still to be
validated by the spec); `split_animation_options` first takes out AnimationSpec's own.
"""
from __future__ import annotations

import json
import re
from typing import Any

from engine.errors import SpecError
from engine.spec.animation import AnimationSpec
from engine.spec.render import RenderSpec, unknown_setting_line

# DD's own names for a few settings, accepted in key=value overrides.
_ALIASES = {"set_seed": "seed", "diffusion_sampling_mode": "sampling_mode",
            "prompt": "text_prompts", "prompts": "text_prompts", "text_prompt": "text_prompts"}
# Kept as the user typed them: the schedule parser reads them (JSON would misread [12]*400).
_SCHEDULE_KEYS = {"cut_overview", "cut_innercut", "cut_ic_pow", "cut_icgray_p"}
# Free text, where a bare word such as 2024 or true is meant as text.
_TEXT_KEYS = {"text_prompts", "image_prompts", "batch_name", "init_image", "diffusion_model",
              "sampling_mode", "perlin_mode", "clip_models"}
MAX_OPTIONS = 64
MAX_OPTION_LENGTH = 20_000
_NAMES = {*RenderSpec.model_fields, *AnimationSpec.model_fields, *_ALIASES, "width_height"} - {"render"}
# A setting's name and its '=' or ':' (a line of a DD settings file is `"steps": 250,`).
_NAMED = re.compile(r"""\s*(["']?)([A-Za-z_][\w-]*)\1\s*(=|:(?!:))""")


def split_options(text: str) -> list[str]:
    """Split 'a=1; b="x;y"' on ';' and newlines outside quotes and brackets, and on a comma
    there that a setting's name follows ('steps=150, eta=0.5'). Braces around the whole text
    (a pasted JSON object) are taken off."""
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    parts, current, quote, depth = [], [], "", 0
    for at, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth = max(0, depth - 1)
        elif depth == 0 and (char in ";\n" or char == "," and _names_a_setting(text, at + 1)):
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _names_a_setting(text: str, at: int) -> bool:
    named = _NAMED.match(text, at)
    return named is not None and _setting_key(named.group(2)) in _NAMES


def _setting_key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    return _ALIASES.get(key, key)


def _key_value(option: str) -> tuple[str, str, str]:
    """(key, "=", value) of `key=value`, or of `key: value` and `"key": value,` where the key is a
    setting's name; (text, "", "") of anything else."""
    key, sep, raw = option.partition("=")
    named = _NAMED.match(option)
    if named and named.group(3) == ":" and _setting_key(named.group(2)) in _NAMES:
        key, sep, raw = named.group(2), "=", option[named.end():].strip().removesuffix(",")
    return _setting_key(key), sep, raw


def _unquote(text: str) -> str | None:
    """The text inside matching quotes, or None when `text` is not quoted."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        if text[0] == '"':
            try:
                inner = json.loads(text)
                return inner if isinstance(inner, str) else None
            except ValueError:
                return text[1:-1]
        return text[1:-1]
    return None


def _parse_value(key: str, raw: str) -> Any:
    """A JSON-ish literal: numbers, true/false, none, [lists], quoted or bare strings."""
    text = raw.strip()
    quoted = _unquote(text)
    if quoted is not None:
        return quoted
    if key in _SCHEDULE_KEYS:
        return text
    if key in _TEXT_KEYS and not text.startswith(("[", "{")):
        return text
    if text.lower() in ("none", "null"):
        return None
    return _literal(text)


def _literal(text: str) -> Any:
    """true/false, a JSON number, list or object, else the text itself (a bare word such as ddim)."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def _option_items(options: str | list[str] | tuple[str, ...]) -> list[str]:
    """The options one by one (a string is split on ';' and newlines), within the bounds."""
    if isinstance(options, str):
        if len(options) > MAX_OPTIONS * MAX_OPTION_LENGTH:
            raise SpecError(f"the settings text is {len(options)} characters long; too long")
        options = split_options(options)
    if not isinstance(options, (list, tuple)) or len(options) > MAX_OPTIONS:
        raise SpecError(f"give at most {MAX_OPTIONS} settings as key=value")
    return list(options)


def parse_set_options(options: str | list[str] | tuple[str, ...] | None) -> dict[str, Any]:
    """Parse ``key=value`` overrides into a dict of RenderSpec fields (values not yet checked).

    A single string may hold several options separated by ';' or newlines (the bot's
    ``settings:`` option); a list holds one option per item (the CLI's repeated ``--set``).
    """
    if options is None:
        return {}
    changes: dict[str, Any] = {}
    for option in _option_items(options):
        if not isinstance(option, str) or len(option) > MAX_OPTION_LENGTH:
            raise SpecError(f"each setting must be key=value text of at most "
                            f"{MAX_OPTION_LENGTH} characters")
        key, sep, raw = _key_value(option)
        if not sep or not key:
            raise SpecError(
                f"expected key=value, found {option.strip()[:60]!r} — e.g. steps=150; quote "
                f"values that contain ';' (text_prompts=\"a; b\")"
            )
        if key == "width_height":
            value = _parse_value(key, raw)
            if not (isinstance(value, list) and len(value) == 2):
                raise SpecError("width_height: expected [width, height], e.g. "
                                "width_height=[1280, 768]", "width_height")
            pairs = {"width": value[0], "height": value[1]}
        elif key in AnimationSpec.model_fields and key not in RenderSpec.model_fields:
            raise SpecError(f"{key}: an animation setting, for animations only (/animate, disco "
                            f"animate); a still image has no {key}", key)
        elif key not in RenderSpec.model_fields:
            raise SpecError(unknown_setting_line(key), key)
        else:
            pairs = {key: _parse_value(key, raw)}
        for name, value in pairs.items():
            if name in changes:
                raise SpecError(f"{name}: given twice; keep one", name)
            changes[name] = value
    return changes


def apply_overrides(spec: RenderSpec, options: str | list[str] | tuple[str, ...]) -> RenderSpec:
    """`spec` with ``key=value`` overrides applied and validated (see `parse_set_options`)."""
    return spec.replace(**parse_set_options(options))


def split_animation_options(options: str | list[str] | tuple[str, ...] | None
                            ) -> tuple[dict[str, Any], list[str]]:
    """``key=value`` options (one ';'-separated string, or a list) split into animation settings
    and the rest. Animation values are read as typed: quoted text, a JSON number, boolean or
    object, else the text itself (keyframes ``0: (1.02)``, percentages ``60%``). The rest stays
    option text for `parse_set_options`: render settings, and malformed options,
    which it explains."""
    if options is None:
        return {}, []
    fields = set(AnimationSpec.model_fields) - {"render"}
    animation: dict[str, Any] = {}
    rest: list[str] = []
    for option in _option_items(options):
        key, sep, raw = _key_value(str(option))
        if sep and key in fields:
            animation[key] = _typed_value(raw)
        else:
            rest.append(option)
    return animation, rest


def _typed_value(raw: str) -> Any:
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return _literal(text)
