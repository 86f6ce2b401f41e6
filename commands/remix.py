"""The ✏️ remix form: what its five text fields show, and how what comes back becomes options.

A Discord modal has at most five inputs and they are free text, where a slash option would have
had Discord check the type. So each field is read here (a whole number, a number, a size) and a
field that is not what it should be is refused with the rule and the fix; the values then go
into `DiscoOptions` and through `build_job` like a typed `/rerun`: the spec's bounds, the guild's
limits and every refusal are the same ones.

A field left as shown is not an option, so a flag typed into the new prompt wins over it
(the seed field aside: it keeps the job's seed). An unchanged prompt field keeps the job's prompts exactly (a prompt the prompt syntax cannot
write back, e.g. a JSON list, is shown as text but not parsed again); an empty seed field means
a new random seed. Discord-free: the bot builds the modal from `REMIX_FIELDS`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from commands.echo import recipe_options
from commands.errors import CommandError
from commands.sizes import SIZE_CHOICES
from engine.spec.fields import SPEC_ALLOWED
from engine.spec.prompts import format_prompts
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number

PROMPT_FIELD_MAX = 1500  # the same cap as /disco's prompt option (bot.params.Prompt)
_SIZE = re.compile(r"\s*(\d{1,5})\s*[x×X*]\s*(\d{1,5})\s*")


@dataclass(frozen=True)
class RemixField:
    key: str
    label: str          # ≤ 45 characters (Discord's label cap)
    max_length: int     # Discord enforces it in the form; `remix_options` checks it again
    placeholder: str    # ≤ 100 characters
    paragraph: bool = False
    required: bool = True


REMIX_FIELDS = (
    RemixField("prompt", "Prompt", PROMPT_FIELD_MAX, 'e.g. "a lighthouse:2 | yellow:-0.5"', paragraph=True),
    RemixField("steps", "Steps", 5, f"steps: {SPEC_ALLOWED['steps']}"[:100]),
    RemixField("size", "Size (width x height, or a named size)", 24, "e.g. 1280x768 (multiples of 64) or square"),
    RemixField("seed", "Seed (empty: a new random seed)", 10, f"seed: {SPEC_ALLOWED['seed']}"[:100], required=False),
    RemixField("clip_guidance_scale", "CLIP guidance scale", 12,
               f"clip_guidance_scale: {SPEC_ALLOWED['clip_guidance_scale']}"[:100]),
)
FIELD_KEYS = tuple(field.key for field in REMIX_FIELDS)


def remix_defaults(spec: RenderSpec, defaults: dict[str, Any] | None = None) -> dict[str, str]:
    """The form pre-filled with `spec`: its prompt and most used settings."""
    prompt = recipe_options(spec, defaults=defaults).get("prompt") or format_prompts(spec.text_prompts)
    return {"prompt": prompt[:PROMPT_FIELD_MAX], "steps": str(spec.steps), "size": f"{spec.width}x{spec.height}",
            "seed": "" if spec.seed is None else str(spec.seed),
            "clip_guidance_scale": format_number(spec.clip_guidance_scale)}


def remix_options(values: dict[str, str], shown: dict[str, str]) -> dict[str, Any]:
    """The submitted form as `DiscoOptions` fields (for `bot.queueing.rerun_options`); `shown` is
    what the form was pre-filled with. Raises CommandError naming the field, the rule and the fix."""
    check_fields(REMIX_FIELDS, values, empty_fix="fill it in, or close the form to keep the job as it is")
    options: dict[str, Any] = {
        "steps": _whole(values["steps"], "steps"),
        "clip_guidance_scale": _number(values["clip_guidance_scale"], "clip_guidance_scale"),
        "seed": _whole(values["seed"], "seed") if values.get("seed", "").strip() else None,
        **_size(values["size"]),
    }
    # A field left as shown is the job's own value, which the re-run keeps anyway; as an option
    # it would beat a flag typed into the new prompt (`--steps 150`, `--ar 16:9`). The seed
    # stays: a re-run draws a new one unless it is given.
    for key, option_keys in (("steps", ("steps",)), ("clip_guidance_scale", ("clip_guidance_scale",)),
                             ("size", ("width", "height", "size"))):
        if values[key].strip() == shown.get(key, "").strip():
            for option_key in option_keys:
                options.pop(option_key, None)
    prompt = values["prompt"].strip()
    if prompt != shown.get("prompt", "").strip():
        options["prompt"] = prompt
    return options


def check_fields(form: tuple[RemixField, ...], values: dict[str, str], *, empty_fix: str,
                 rule: str = "remix_field") -> None:
    """Each field of a submitted form within its length, the required ones filled in (Discord
    enforces both in the form; a forged submit is checked here). `empty_fix`: what to do
    instead; `rule`: the start of the rules' names (`<rule>_length`, `<rule>_required`)."""
    for field in form:
        text = values.get(field.key, "")
        if len(text) > field.max_length:
            raise CommandError(f"{field.key}: {len(text)} characters; at most {field.max_length} "
                               f"(rule: {rule}_length) — shorten it", field.key, rule=f"{rule}_length")
        if field.required and not text.strip():
            raise CommandError(f"{field.key} is empty (rule: {rule}_required); {empty_fix}", field.key,
                               rule=f"{rule}_required")


def _whole(text: str, key: str) -> int:
    try:
        return int(text.strip().replace("_", "").replace(",", ""))
    except ValueError:
        raise CommandError(f"{key}: {text.strip()[:20]!r} is not a whole number (rule: remix_field_number); "
                           f"give {SPEC_ALLOWED[key]}", key, rule="remix_field_number") from None


def _number(text: str, key: str) -> float:
    try:
        value = float(text.strip().replace("_", "").replace(",", ""))
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise CommandError(f"{key}: {text.strip()[:20]!r} is not a number (rule: remix_field_number); "
                           f"give {SPEC_ALLOWED[key]}", key, rule="remix_field_number")
    return value


def _size(text: str) -> dict[str, Any]:
    """`WIDTHxHEIGHT` as width and height, or a named size (the /disco size choices)."""
    match = _SIZE.fullmatch(text)
    if match:
        return {"width": int(match.group(1)), "height": int(match.group(2))}
    name = text.strip().lower()
    if name in SIZE_CHOICES:
        return {"size": name}
    raise CommandError(f"size: {text.strip()[:24]!r} is neither WIDTHxHEIGHT nor a named size (rule: "
                       f"remix_field_size); give e.g. 1280x768 or one of {', '.join(SIZE_CHOICES)}",
                       "size", rule="remix_field_size")
