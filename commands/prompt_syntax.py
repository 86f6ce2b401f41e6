"""The `/disco` prompt string: weighted prompts, `--no`, and inline `--flag value` settings.

Two prompt syntaxes, one per prompt (mixing them is refused, since `a:2::3` has no single
sensible reading):

- Disco Diffusion: ``a lighthouse:2 | storm:-0.5`` (parsed by `engine.spec.prompts`).
- Midjourney multi-prompts: ``a lighthouse::2 storm::-0.5``; text before each ``::`` is one
  prompt, the number right after it its weight; a bare ``::`` or a trailing segment means
  weight 1. As in Midjourney, the weights must add up to more than 0.

``--no red sky, fog`` adds each comma-separated item as a negative prompt. Together the items
weigh `NO_SHARE` (-0.5) times the sum of the positive weights, split evenly. With one prompt
of weight 1 and one item that is exactly Midjourney's ``X::-0.5``; a long ``--no text, blur,
watermark`` list still cannot cancel the prompt. With either syntax, a prompt that uses --no (and
any Midjourney-style prompt) must keep a positive total, or DD would steer away from
everything; the error says how much weight the main prompt needs.

Flags start at the first word that begins with ``--`` (or an em/en dash, which phones type
for ``--``) and run to the end: ``--seed 42 --steps 250 --ar 16:9 --set eta=0.5``. Every
setting of `RenderSpec` is also a flag (``--eta 0.5``); values with spaces go in quotes
(``--no "red sky"``). Values are checked later, with the rest of the job, by `RenderSpec`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from commands.errors import CommandError
from commands.sizes import parse_ratio, size_choice
from engine.spec.fields import choices_of, closest_name, is_no_value
from engine.spec.prompts import MAX_PROMPTS, MAX_WEIGHT, MIN_WEIGHT_SUM, WeightedPrompt, format_prompts, parse_prompts
from engine.spec.overrides import parse_set_options
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number

MAX_PROMPT_CHARS = 2000  # far above CLIP's ~77 tokens per prompt; bounds all the work below
NO_SHARE = -0.5  # all --no items together, relative to the positive weights

# Short flags and other spellings -> RenderSpec field (or one of the special keys below).
FLAG_ALIASES: dict[str, str] = {
    "seed": "seed", "set_seed": "seed", "steps": "steps",
    "w": "width", "width": "width", "h": "height", "height": "height",
    "cgs": "clip_guidance_scale", "cutn": "cutn_batches", "skip": "skip_steps",
    "n": "n_batches", "images": "n_batches", "model": "diffusion_model",
    "sampler": "sampling_mode", "diffusion_sampling_mode": "sampling_mode",
    "ar": "aspect_ratio", "aspect": "aspect_ratio", "aspect_ratio": "aspect_ratio",
    "size": "size", "no": "no", "set": "set",
}
# Where images come from attachments only: a path typed here could read the bot's own files.
# Each with the way to give that image instead.
ATTACHMENT_ONLY = {"init_image": "attach it with the init_image option",
                   "image_prompts": "attach it with the image_prompt option",
                   "gobig_init": "use the ⬆ button under a result, or right-click a posted image → Apps → "
                                 "Enlarge (GoBig) (or gobig=true to enlarge a new render)"}
# Midjourney parameters with no DD counterpart: say so, and name the nearest DD knob.
MIDJOURNEY_ONLY: dict[str, str] = {
    "chaos": "try another --seed for variety", "c": "try another --seed for variety",
    "stylize": "the closest DD knob is --cgs (clip_guidance_scale)",
    "s": "the closest DD knob is --cgs (clip_guidance_scale)",
    "q": "the closest DD knob is --steps", "quality": "the closest DD knob is --steps",
    "v": "pick a DD model with --model", "version": "pick a DD model with --model",
    "niji": "pick a DD model with --model", "iw": "attach images with the image_prompt option",
    "tile": "DD has no tiling mode", "raw": "DD has no style modes",
    "style": "DD has no style modes",
    "weird": "DD has no such setting", "stop": "use fewer --steps",
    "repeat": "use --n for more images", "r": "use --n for more images",
    "fast": "this bot has one queue", "relax": "this bot has one queue",
    "turbo": "this bot has one queue", "sref": "attach images with the image_prompt option",
    "cref": "attach images with the image_prompt option",
}
_BOOL_FIELDS = {name for name, info in RenderSpec.model_fields.items()
                if isinstance(info.default, bool)}
KNOWN_FLAGS = sorted(set(FLAG_ALIASES) | set(RenderSpec.model_fields) - {"text_prompts"})

_FLAG_START = re.compile(r"(?:^|(?<=\s))(?:--|[\u2014\u2013])(?=[A-Za-z][A-Za-z0-9_-]*(?:[=\s]|$))")
# Any name _FLAG_START accepts is a flag, however long: an unknown one is refused by name
# rather than read as a value of the flag before it.
_FLAG = re.compile(r"(?:--|[\u2014\u2013])([A-Za-z][A-Za-z0-9_-]*)(?:=(.*))?", re.DOTALL)
_QUOTES = "\"\u201c\u201d"
# One dash before a flag's name and a value ("a lighthouse -steps 150") is a flag missing a
# dash; elsewhere a dash is prompt text ("ice -cold" stays a prompt), and so is one before a
# flag that is also a plain word ("a city -set in the future").
_WORDS = {"set", "images", "size", "aspect", "model"}
_ONE_DASH = re.compile(r"(?:^|(?<=\s))-(%s)(?==\S|\s+[^\s-])" % "|".join(
    re.escape(name) for name in sorted(set(KNOWN_FLAGS) - _WORDS, key=len, reverse=True)), re.IGNORECASE)
_MJ_WEIGHT = re.compile(r"::(?:([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?![\w.]))?")
_DD_WEIGHT_END = re.compile(r":\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*$")


@dataclass
class ParsedPrompt:
    """What the prompt string asked for.

    `prompts`: the weighted prompts written before the flags (empty when there are none);
    `no_items`: the `--no` texts; `negatives`: those items weighted (see `add_negatives`;
    empty until there are prompts to weigh them against); `flags`: RenderSpec fields (values as
    typed, checked later) plus ``aspect_ratio`` (across, down) and ``size`` (a choice name);
    `flag_names`: for each key, the flag that set it (for messages); `syntax`: "dd",
    "midjourney" or "none".
    """

    prompts: list[WeightedPrompt] = field(default_factory=list)
    no_items: list[str] = field(default_factory=list)
    negatives: list[WeightedPrompt] = field(default_factory=list)
    flags: dict[str, Any] = field(default_factory=dict)
    flag_names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    syntax: str = "none"

    @property
    def all_prompts(self) -> list[WeightedPrompt]:
        return self.prompts + self.negatives


def parse_prompt_text(text: str) -> ParsedPrompt:
    """Parse a `/disco` prompt string; SpecError (or CommandError) names the rule and the fix."""
    if not isinstance(text, str):
        raise CommandError("prompt: expected text", "prompt", rule="prompt_length")
    if len(text) > MAX_PROMPT_CHARS:
        raise CommandError(
            f"prompt: {len(text)} characters; at most {MAX_PROMPT_CHARS} are allowed — shorten "
            f"it (CLIP reads only about 77 tokens per prompt), or move settings to the "
            f"settings option", "prompt", rule="prompt_length")
    parsed = ParsedPrompt()
    text, one_dash = _ONE_DASH.subn(r"--\1", text)
    if one_dash:
        parsed.notes.append("read -name before a value as the flag --name")
    start = _FLAG_START.search(text)
    prompt_part, flag_part = (text[:start.start()], text[start.start():]) if start else (text, "")
    if re.search(r"(?:^|\s)[\u2014\u2013][A-Za-z]", flag_part):
        parsed.notes.append("read each long dash (—) before a flag name as --")
    _parse_prompts(prompt_part, parsed)
    _parse_flags(flag_part, parsed)
    if parsed.prompts and (parsed.no_items or parsed.syntax == "midjourney"):
        combined = add_negatives(parsed.prompts, parsed.no_items, parsed.syntax)
        parsed.prompts, parsed.negatives = combined[:len(parsed.prompts)], combined[len(parsed.prompts):]
    if len(parsed.prompts) + len(parsed.no_items) > MAX_PROMPTS:
        raise CommandError(
            f"prompt: {len(parsed.prompts) + len(parsed.no_items)} prompts (--no items included); "
            f"at most {MAX_PROMPTS} are allowed — merge or drop some", "text_prompts",
            rule="max_prompts")
    return parsed


# ---- prompts --------------------------------------------------------------------------------

def _parse_prompts(text: str, parsed: ParsedPrompt) -> None:
    if not text.strip():
        return
    if "::" in text:
        if "|" in text:
            raise _mixed("'::' (Midjourney) and '|' (Disco Diffusion)")
        parsed.prompts = _midjourney_prompts(text)
        parsed.syntax = "midjourney"
    else:
        parsed.prompts = parse_prompts(text, param="text_prompts")
        parsed.syntax = "dd"


def _mixed(what: str) -> CommandError:
    return CommandError(
        f"prompt: mixes {what} weights; pick one syntax — 'a lighthouse:2 | storm:-0.5' or "
        f"'a lighthouse::2 storm::-0.5'", "text_prompts", rule="prompt_syntax")


def _midjourney_prompts(text: str) -> list[WeightedPrompt]:
    """'a::2 b::-0.5 c' -> a (2), b (-0.5), c (1); each '::' closes the text before it."""
    items: list[dict[str, Any]] = []
    position = 0
    for match in _MJ_WEIGHT.finditer(text):
        segment = text[position:match.start()]
        weight = match.group(1)
        if not segment.strip():
            shown = match.group(0)
            raise CommandError(
                f"prompt: '{shown}' has no text before it — write the words first, e.g. "
                f"'a lighthouse{shown}'", "text_prompts", rule="prompt_syntax")
        items.append({"text": _mj_text(segment), "weight": float(weight) if weight else 1.0})
        position = match.end()
    tail = text[position:]
    if tail.strip():
        items.append({"text": _mj_text(tail), "weight": 1.0})
    return parse_prompts(items, param="text_prompts")


def _mj_text(segment: str) -> str:
    if _DD_WEIGHT_END.search(segment):
        raise _mixed("':N' (Disco Diffusion) and '::N' (Midjourney)")
    return segment.strip()


def add_negatives(prompts: list[WeightedPrompt], no_items: list[str],
                  syntax: str = "dd") -> list[WeightedPrompt]:
    """`prompts` followed by the --no items, which share `NO_SHARE` × the positive weights.

    Where an item's share would be over `MAX_WEIGHT` (a:100 | b:100 --no c), every weight is
    scaled down alike: only the ratios matter to DD, and no weight the user never typed is
    refused."""
    positive = math.fsum(p.weight for p in prompts if p.weight > 0)
    share = NO_SHARE * positive / len(no_items) if no_items else 0.0
    scale = min(1.0, MAX_WEIGHT / abs(share)) if share else 1.0
    if scale < 1.0:
        prompts = [WeightedPrompt(p.text, round(p.weight * scale, 6) + 0.0) for p in prompts]
    negatives = [WeightedPrompt(text, round(share * scale, 6) + 0.0) for text in no_items]
    check_positive_total(prompts, negatives, syntax)
    return prompts + negatives


def check_positive_total(prompts: list[WeightedPrompt], negatives: list[WeightedPrompt],
                         syntax: str = "dd") -> None:
    """Refuse weights (prompts + --no items) whose total is not above 0, saying what to raise."""
    everything = prompts + negatives
    total = math.fsum(p.weight for p in everything)
    if total >= MIN_WEIGHT_SUM:
        return
    rule = "with --no" if negatives else "in Midjourney syntax"
    listed = format_prompts(everything, always_weight=True)
    listed = listed if len(listed) <= 200 else listed[:199] + "…"
    positives = [p for p in prompts if p.weight > 0]
    if positives:
        main = max(positives, key=lambda p: p.weight)
        needed = main.weight - total + 1.0
        sep = "::" if syntax == "midjourney" else ":"
        fix = (f"give the main prompt more weight, e.g. '{main.text[:40]}{sep}"
               f"{format_number(round(needed, 3))}'" + (", or drop some --no items" if negatives
                                                         else ""))
    else:
        fix = "add a prompt with a positive weight (--no only pulls away from what you ask for)"
    raise CommandError(
        f"prompt: the weights add up to {format_number(round(total, 6))} ({listed}); {rule} "
        f"the total must stay above 0 — {fix}", "text_prompts", rule="prompt_weights")


# ---- flags ----------------------------------------------------------------------------------

def _tokens(text: str) -> list[tuple[str, bool]]:
    """Split on spaces, keeping "double quoted" (also “curly”) parts whole, as a shell does:
    ``--no="red sky"`` is one token. (token, whether it started with a quote)."""
    tokens: list[tuple[str, bool]] = []
    index, end = 0, len(text)
    while index < end:
        if text[index].isspace():
            index += 1
            continue
        starts_quoted, parts = text[index] in _QUOTES, []
        while index < end and not text[index].isspace():
            if text[index] in _QUOTES:
                close = next((i for i in range(index + 1, end) if text[i] in _QUOTES), -1)
                if close < 0:
                    raise CommandError(f"prompt: the quote at {text[index:index + 20]!r} is never "
                                       f"closed — add the closing \"", "prompt",
                                       rule="prompt_syntax")
                parts.append(text[index + 1:close])
                index = close + 1
            else:
                parts.append(text[index])
                index += 1
        tokens.append(("".join(parts), starts_quoted))
    return tokens


def _parse_flags(text: str, parsed: ParsedPrompt) -> None:
    groups: list[tuple[str, list[tuple[str, bool]]]] = []
    for token, quoted in _tokens(text):
        match = None if quoted else _FLAG.fullmatch(token)
        if match:
            groups.append((match.group(1), []))
            if match.group(2) is not None:  # --name=value
                groups[-1][1].append((match.group(2), False))
        else:
            groups[-1][1].append((token, quoted))  # text always starts with a flag
    for name, values in groups:
        _apply_flag(name, values, parsed)


def _apply_flag(written: str, values: list[tuple[str, bool]], parsed: ParsedPrompt) -> None:
    name = written.lower().replace("-", "_")
    flag = f"--{written}"
    key = FLAG_ALIASES.get(name, name)
    if key == "no":
        # Commas separate items, as in Midjourney; a quoted value is one item, commas and all.
        loose = " ".join(v for v, quoted in values if not quoted).split(",")
        items = [i.strip() for i in loose + [v for v, quoted in values if quoted] if i.strip()]
        if not items:
            raise CommandError("--no needs what to leave out, e.g. --no red sky, fog", "no",
                               rule="prompt_syntax")
        checked = parse_prompts([{"text": t, "weight": 1} for t in items], param="text_prompts")
        parsed.no_items += [p.text for p in checked]
        return
    if key not in FLAG_ALIASES.values() and key not in RenderSpec.model_fields:
        raise _unknown_flag(written, name)
    if key == "text_prompts":
        raise CommandError(f"{flag}: write the prompts before the flags, e.g. 'a lighthouse:2 | "
                           f"storm --steps 150'", key, rule="prompt_syntax")
    if not values and key in _BOOL_FIELDS:
        values = [("true", False)]  # a bare switch: --skip_augs
    if len(values) != 1:
        raise _value_count(flag, key, values)
    value = values[0][0]
    if key == "set":
        changes = parse_set_options(value)
        for field_name, field_value in changes.items():
            _store(parsed, field_name, field_value, f"--set {field_name}")
    elif key == "aspect_ratio":
        _store(parsed, key, parse_ratio(value), flag)
    elif key == "size":
        size_choice(value)  # checked now: the error lists the choices
        _store(parsed, key, value.strip().lower(), flag)
    else:
        if key == "diffusion_model":
            value = resolve_model_name(value)
        (field_name, field_value), = parse_set_options([f"{key}={value}"]).items()
        _store(parsed, field_name, field_value, flag)


def _store(parsed: ParsedPrompt, key: str, value: Any, flag: str) -> None:
    if key in ATTACHMENT_ONLY and value != [] and not is_no_value(value):
        raise CommandError(
            f"{flag}: images come from attachments only — {ATTACHMENT_ONLY[key]} (a typed path or "
            f"URL could point anywhere)", key, rule="attachments_only")
    if key in parsed.flags:
        raise CommandError(f"{flag}: {key} is already set by {parsed.flag_names[key]}; keep one",
                           key, rule="prompt_syntax")
    parsed.flags[key] = value
    parsed.flag_names[key] = flag


def _value_count(flag: str, key: str, values: list[tuple[str, bool]]) -> CommandError:
    example = {"seed": "42", "aspect_ratio": "16:9", "set": "eta=0.5", "size": "portrait"}
    if not values:
        return CommandError(f"{flag} needs a value, e.g. {flag} {example.get(key, '150')}", key,
                            rule="prompt_syntax")
    extra = " ".join(v for v, _ in values[1:])
    return CommandError(
        f"{flag} takes one value, but '{extra[:60]}' follows '{values[0][0][:40]}' — flags go "
        f"after the prompt text; quote a value that has spaces (--no \"red sky\")", key,
        rule="prompt_syntax")


def _unknown_flag(written: str, name: str) -> CommandError:
    if name in MIDJOURNEY_ONLY:
        return CommandError(
            f"--{written} is a Midjourney parameter; this bot runs Disco Diffusion, which has no "
            f"such setting — remove it ({MIDJOURNEY_ONLY[name]})", name, rule="unknown_flag")
    guess = closest_name(name, KNOWN_FLAGS)
    hint = f"did you mean --{guess}?" if guess else "e.g. --steps 150, --ar 16:9, --seed 42"
    return CommandError(
        f"--{written[:40]}: unknown flag; {hint} (every setting name also works as a flag, "
        f"e.g. --eta 0.5)", name, rule="unknown_flag")


def resolve_model_name(value: str) -> str:
    """A diffusion model from a unique prefix ('portrait' -> portrait_generator_v001)."""
    text = str(value).strip().lower()
    models = choices_of("diffusion_model")
    exact = [m for m in models if m.lower() == text]
    starts = [m for m in models if text and m.lower().startswith(text)]
    found = exact or starts
    return found[0] if len(found) == 1 else str(value)  # RenderSpec explains anything else

