"""Reading the settings files Disco Diffusion users publish, in every convention we met.

DD 5.x's notebook writes strict JSON, but the files people share next to their images were also
edited by hand (``//`` comments, trailing commas: JSON5), written by forks and by discoart as
YAML, or trimmed to a few keys. `load_dd_file` reads all of them into one plain dict in DD 5.7's
key names, and says in report lines what it changed on the way:

* ``null`` means "not given" (DD's default applies);
* ``true``/``false`` in a numeric setting means 1/0 (``tv_scale: false``);
* discoart's names are mapped (``name_docarray``, ``cut_schedules_group``, its prompt schema).

Refused, with the key and the fix: a scalar written as keyframes or as a schedule (DD 5.7 takes
one number there), keyframes written as math expressions (never evaluated), and a file holding
no Disco Diffusion setting at all. Torch-free.
"""
from __future__ import annotations

import json
import re
from typing import Any

import json5
import yaml

from engine.errors import SpecError
from engine.models.registry import CUT_SCHEDULE_GROUPS
from engine.spec.animation import KEYFRAME_BOUNDS, AnimationSpec
from engine.spec.fields import MAX_JSON_LENGTH
from engine.spec.jsontext import MAX_NUMBER_DIGITS
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number, short_repr

LABEL = "the DD settings file"

# Settings that hold one number (DD 5.7 reads them with int() or float()).
NUMERIC_KEYS = frozenset(
    name for spec in (RenderSpec, AnimationSpec) for name, info in spec.model_fields.items()
    if info.annotation in (int, float))
# Keys only discoart writes, with what they did there; none changes the image.
DISCOART_NO_EFFECT: dict[str, str] = {
    "save_rate": "discoart's preview rate", "gif_fps": "discoart's progress GIF",
    "gif_size_ratio": "discoart's progress GIF", "image_output": "a notebook display setting",
    "on_misspelled_token": "discoart's spell checker", "text_clip_on_cpu": "a memory setting",
    "truncate_overlength_prompt": "prompts are always cut to CLIP's 77 tokens",
    "visualize_cuts": "a debugging display", "skip_event": "a Python object",
    "stop_event": "a Python object", "init_document": "a discoart document",
    "clip_models_schedules": "CLIP models cannot be scheduled here; the models run at every step",
    "name_docarray": "discoart's result name (batch_name names the outputs here)",
}
_KEYFRAMES = re.compile(r"^\s*\d+\s*:")
_LEADING_COMMENTS = re.compile(r"^(?:\s|//[^\n]*|/\*.*?\*/)*", re.DOTALL)
_EXPRESSION = re.compile(r"[A-Za-z_]")  # letters in a keyframe value: sin(t), t, pi, ...


class _DataLoader(yaml.SafeLoader):
    """yaml.safe_load's loader without aliases: a few bytes of aliases can stand for gigabytes
    once written out as JSON, and settings files never need them."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in "
                                              "settings; write the value out",
                                              self.peek_event().start_mark)
        return super().compose_node(parent, index)


_LONG_NUMBER = re.compile(rf"\d{{{MAX_NUMBER_DIGITS + 1},}}")


def read_settings(source: object, label: str = LABEL) -> dict:
    """A settings file (JSON, JSON5 or YAML text, bytes, or a dict) as a dict; SpecError else."""
    if isinstance(source, (bytes, bytearray)):
        try:
            source = bytes(source).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SpecError(f"{label} is not UTF-8 text; save it as UTF-8") from None
    if isinstance(source, str):
        if len(source) > MAX_JSON_LENGTH:
            raise SpecError(f"{label} is {len(source)} characters; at most {MAX_JSON_LENGTH}")
        long_number = _LONG_NUMBER.search(source)
        if long_number:  # Python's int() refuses past 4,300 digits, and its cost grows before that
            raise SpecError(f"{label} cannot be read: it holds a number of {len(long_number.group()):,} "
                            f"digits; settings need at most {MAX_NUMBER_DIGITS} — fix that number")
        source = _parse_text(source, label)
    if source is None:  # an empty file, or one holding only `null` or comments
        raise _empty_file(label)
    if not isinstance(source, dict):
        raise SpecError(f"{label} holds {type(source).__name__}, not settings; a settings file "
                        f'is an object of names and values, e.g. {{"steps": 250}}')
    bad = [key for key in source if not isinstance(key, str)]
    if bad:
        raise SpecError(f"{label}: setting names must be text; got {short_repr(bad[0])} "
                        f"(quote it)")
    return source


def _parse_text(text: str, label: str) -> object:
    """Strict JSON first (what DD writes), then JSON5, then YAML (safe_load: data only)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return json5.loads(text)
    except (ValueError, RecursionError, TypeError) as exc:
        if _LEADING_COMMENTS.sub("", text, count=1).startswith(("{", "[")):
            where = str(exc).removeprefix("<string>:") if isinstance(exc, ValueError) else (
                "1: nested too deeply")
            raise SpecError(f"{label} is not valid JSON or JSON5: line {where}; fix that place "
                            f"(a missing comma or quote is the usual cause)") from None
    try:
        loaded = yaml.load(text, Loader=_DataLoader)  # noqa: S506 - SafeLoader without aliases
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "not readable"
        raise SpecError(f"{label} is neither JSON nor YAML: {where}{problem}; a settings file "
                        f'is JSON ({{"steps": 250}}) or YAML (steps: 250)') from None
    except RecursionError:
        raise SpecError(f"{label} is nested too deeply to be settings") from None
    # YAML also has dates and other types JSON lacks: keep the data JSON's (dates as text).
    return json.loads(json.dumps(loaded, default=str))


def load_dd_file(source: object, label: str = LABEL) -> tuple[dict[str, Any], list[str]]:
    """A DD settings file as a dict in DD 5.7's key names, plus what changed on the way."""
    data = dict(read_settings(source, label))
    report: list[str] = []
    _drop_nulls(data, report)
    _discoart(data, report)
    for key in sorted(NUMERIC_KEYS & set(data)):
        value = data[key]
        if isinstance(value, bool):
            data[key] = int(value)
            report.append(f"{key}: {str(value).lower()} read as {int(value)}")
        elif isinstance(value, str):
            _refuse_scalar_schedule(key, value)
    for key in KEYFRAME_BOUNDS:
        value = data.get(key)
        if isinstance(value, str) and _EXPRESSION.search(value):
            raise SpecError(f"{key}: {short_repr(value)} is a math expression; expressions are "
                            f"never evaluated here, and DD 5.7 takes numbers — fix: give values "
                            f"at key frames, e.g. {key}=\"0: (1), 30: (1.02)\"", key)
    return data, report


def require_dd_key(data: dict, known: frozenset[str] | set[str], label: str = LABEL) -> None:
    """Refuse a file in which no key is a Disco Diffusion setting (it would render DD's
    default lighthouse)."""
    if data and not any(key in known for key in data):
        shown = ", ".join(short_repr(key) for key in list(data)[:5])
        raise SpecError(f"{label} holds no Disco Diffusion setting (its keys: {shown}); fix: "
                        f"give a DD *_settings.txt, a discoart YAML config or this engine's "
                        f"settings JSON, e.g. {{\"text_prompts\": {{\"0\": [\"a lighthouse\"]}}, "
                        f"\"steps\": 250}}")
    if not data:
        raise _empty_file(label)


def _empty_file(label: str) -> SpecError:
    return SpecError(f"{label} is empty; fix: give at least one setting, e.g. "
                     f"{{\"text_prompts\": {{\"0\": [\"a lighthouse\"]}}}}")


def _drop_nulls(data: dict, report: list[str]) -> None:
    nulls = [key for key, value in data.items() if value is None]
    for key in nulls:
        del data[key]
    # DD writes init_image and video_init_path as null when they are not used: no news.
    shown = [key for key in nulls if key not in ("init_image", "video_init_path", "seed")]
    if shown:
        report.append("null values read as not given (the defaults apply): "
                      + ", ".join(shown[:20]) + (", …" if len(shown) > 20 else ""))


def _refuse_scalar_schedule(key: str, value: str) -> None:
    """A one-number setting written as keyframes (a fork's syntax) or as a discoart schedule."""
    text = value.strip()
    example = format_number(_default(key))
    if _KEYFRAMES.match(text):
        raise SpecError(f"{key}: {short_repr(value)} is keyframed, which DD 5.7 never supported "
                        f"for {key} — fix: one number, e.g. {key}={example}", key)
    if text.startswith("[") or "*" in text:
        raise SpecError(f"{key}: {short_repr(value)} is a schedule (a discoart feature); DD 5.7 "
                        f"takes one number for {key}, and schedule expressions are never "
                        f"evaluated here — fix: one number, e.g. {key}={example}", key)


def _default(key: str) -> Any:
    for spec in (RenderSpec, AnimationSpec):
        if key in spec.model_fields:
            return spec.model_fields[key].default
    return 0


def _discoart(data: dict, report: list[str]) -> None:
    """discoart's names and shapes in DD's terms."""
    group = data.pop("cut_schedules_group", None)
    if group is not None:
        if not isinstance(group, str) or group not in CUT_SCHEDULE_GROUPS:
            raise SpecError(f"cut_schedules_group: {short_repr(group)} is not known; allowed: "
                            f"{', '.join(CUT_SCHEDULE_GROUPS)} — fix: one of those, or give "
                            f"cut_overview and cut_innercut yourself", "cut_schedules_group")
        taken = [key for key in CUT_SCHEDULE_GROUPS[group] if key not in data]
        data.update({key: CUT_SCHEDULE_GROUPS[group][key] for key in taken})
        report.append(f"cut_schedules_group {group}: gave " + (", ".join(taken) or "nothing")
                      + (" (the file's own schedules kept)" if len(taken) < 4 else ""))
    prompts = data.get("text_prompts")
    if isinstance(prompts, dict) and "prompts" in prompts:  # discoart's prompt schema v1
        data["text_prompts"] = _schema_prompts(prompts["prompts"])
        report.append("text_prompts: read from discoart's prompt schema (text and weight)")
    if "seed" in data and isinstance(data["seed"], bool):
        raise SpecError(f"seed: {data['seed']} is not a seed — fix: a whole number, or leave "
                        f"it out for a random one", "seed")


def _schema_prompts(items: object) -> list[str]:
    if not isinstance(items, list):
        raise SpecError("text_prompts: discoart's 'prompts' must be a list of {text, weight} — "
                        "fix: e.g. prompts: [{text: a lighthouse, weight: 1}]", "text_prompts")
    prompts = []
    for item in items[:64]:
        if isinstance(item, str):
            prompts.append(item)
            continue
        if not isinstance(item, dict) or not isinstance(item.get("text"), str):
            raise SpecError(f"text_prompts: {short_repr(item)} has no text — fix: "
                            f"{{text: a lighthouse, weight: 1}}", "text_prompts")
        weight = item.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise SpecError(f"text_prompts: the weight {short_repr(weight)} of "
                            f"{short_repr(item['text'])} is not one number (weight schedules "
                            f"are a discoart feature) — fix: e.g. weight: 1", "text_prompts")
        prompts.append(f"{item['text']}:{format_number(float(weight))}")
    return prompts

