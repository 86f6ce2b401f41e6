"""Weighted prompts in Disco Diffusion's ``text:weight`` syntax.

DD splits a prompt on its last colon and reads a float weight after it (missing weight = 1).
Unlike DD, which fed the raw string, ``:2`` included, to CLIP's tokenizer, we strip the weight
from the text. A colon followed by something that is not a number stays part of the text, so
URLs (``http://x/y.png``) and phrases (``a cat: portrait``) keep their colons.

Several prompts can be written on one line separated by ``|``:
``a lighthouse:2 | yellow:-0.5``.
"""
from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass

from engine.errors import SpecError
from engine.spec.schedules import as_finite_float, ascii_minus, format_number, short_repr

MAX_PROMPTS = 16
MAX_TEXT_LENGTH = 1000
MAX_WEIGHT = 100.0
# DD refuses weights whose sum is smaller than this in magnitude (it divides by the sum).
MIN_WEIGHT_SUM = 1e-3

_WEIGHT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
_NOT_A_NUMBER = re.compile(r"\s*[+-]?(?:inf|infinity|nan)\s*", re.IGNORECASE)
_ALLOWED_CONTROL = {"\t", "\n", "\r"}


@dataclass(frozen=True)
class WeightedPrompt:
    """One prompt: the text (or image path/URL) given to CLIP and its relative weight."""

    text: str
    weight: float = 1.0


def _check_text(text: str, param: str, number: int) -> str:
    text = text.strip()
    if not text:
        raise SpecError(
            f"{param}: prompt {number} is empty — write some words, e.g. a lighthouse:2", param
        )
    if len(text) > MAX_TEXT_LENGTH:
        raise SpecError(
            f"{param}: prompt {number} is {len(text)} characters long; at most "
            f"{MAX_TEXT_LENGTH} are allowed — shorten it (CLIP reads only ~77 tokens anyway)",
            param,
        )
    if "|" in text:
        raise SpecError(
            f"{param}: prompt {number} contains '|', which separates prompts — split it into "
            f"two prompts or remove the '|'",
            param,
        )
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if (category == "Cc" and char not in _ALLOWED_CONTROL) or category == "Cs":
            raise SpecError(
                f"{param}: prompt {number} contains the control character U+{ord(char):04X} at "
                f"position {index + 1} — remove it",
                param,
            )
    return text


def _check_weight(weight: object, param: str, number: int) -> float:
    typed = weight.strip() if isinstance(weight, str) else weight
    if isinstance(weight, bool) or not isinstance(weight, (int, float, str)):
        raise SpecError(
            f"{param}: prompt {number} has weight {short_repr(weight)}; a weight is a number "
            f"such as 2 or -0.5",
            param,
        )
    if isinstance(weight, str):
        if not _WEIGHT.fullmatch(weight):
            raise SpecError(
                f"{param}: prompt {number} has weight {short_repr(weight)}; a weight is a number "
                f"such as 2 or -0.5",
                param,
            )
        weight = float(weight)
    value = as_finite_float(weight)
    if value is None or abs(value) > MAX_WEIGHT:
        shown = short_repr(typed) if value is None else format_number(value)
        raise SpecError(
            f"{param}: prompt {number} has weight {shown}; allowed: "
            f"-{format_number(MAX_WEIGHT)}..{format_number(MAX_WEIGHT)} (only the ratios between "
            f"weights matter, so e.g. 2 and -0.5 work as well as 200 and -50)",
            param,
        )
    return value + 0.0  # turns -0.0 into 0.0 so equal prompts print the same


def parse_prompt(s: str, *, param: str = "text_prompts", number: int = 1) -> WeightedPrompt:
    """Parse one ``text:weight`` prompt; `number` (1-based) is only used in error messages."""
    if not isinstance(s, str):
        raise SpecError(
            f"{param}: prompt {number} is {type(s).__name__}; expected text such as "
            f"'a lighthouse:2'",
            param,
        )
    if len(s) > MAX_TEXT_LENGTH + 64:  # room for the weight suffix and spaces
        _check_text(s, param, number)  # raises the too-long error
    text, colon, tail = s.rpartition(":")
    if not colon:
        return WeightedPrompt(_check_text(s, param, number), 1.0)
    tail = ascii_minus(tail)  # "fog:−0.5" pasted from a web page is a negative weight, not text
    if _WEIGHT.fullmatch(tail):
        weight = _check_weight(tail, param, number)
        return WeightedPrompt(_check_text(text, param, number), weight)
    if _NOT_A_NUMBER.fullmatch(tail):
        raise SpecError(
            f"{param}: prompt {number} has weight {short_repr(tail.strip())}; the weight must be "
            f"a finite number such as 2 or -0.5",
            param,
        )
    if not tail.strip():
        raise SpecError(
            f"{param}: prompt {number} ends with ':' but no weight — write a weight after it "
            f"(e.g. {text.strip()[:40]}:2) or remove the colon",
            param,
        )
    # Not a weight (a URL or a phrase with a colon): the whole string is the text.
    return WeightedPrompt(_check_text(s, param, number), 1.0)


def _from_item(item: object, param: str, number: int) -> list[WeightedPrompt]:
    if isinstance(item, WeightedPrompt):
        item = {"text": item.text, "weight": item.weight}
    if isinstance(item, dict):
        unknown = sorted(short_repr(key) for key in item if key not in ("text", "weight"))
        if unknown or "text" not in item:
            raise SpecError(
                f"{param}: prompt {number} must look like "
                + '{"text": "a lighthouse", "weight": 2}'
                + (f"; unknown keys: {', '.join(unknown)[:80]}" if unknown
                   else "; 'text' is missing"),
                param,
            )
        text = item["text"]
        if not isinstance(text, str):
            raise SpecError(f"{param}: prompt {number} has a text that is not a string", param)
        weight = _check_weight(item.get("weight", 1.0), param, number)
        return [WeightedPrompt(_check_text(text, param, number), weight)]
    if isinstance(item, str):
        return _from_line(item, param, number)
    raise SpecError(
        f"{param}: prompt {number} is {type(item).__name__}; expected text such as "
        f"'a lighthouse:2' or {{\"text\": ..., \"weight\": ...}}",
        param,
    )


def _from_line(line: str, param: str, first_number: int) -> list[WeightedPrompt]:
    """Split one line on '|' and parse each part."""
    if len(line) > MAX_PROMPTS * (MAX_TEXT_LENGTH + 64):
        raise SpecError(
            f"{param}: the prompts are {len(line)} characters long; at most {MAX_PROMPTS} "
            f"prompts of {MAX_TEXT_LENGTH} characters are allowed",
            param,
        )
    parts = line.split("|")
    _check_count(first_number - 1 + len(parts), param)
    blank = next((index for index, part in enumerate(parts) if not part.strip()), None)
    if len(parts) > 1 and blank is not None:  # "||spoiler||", "a | | b", "a |": say why it is empty
        raise SpecError(
            f"{param}: prompt {first_number + blank} is empty: '|' separates prompts, so '||' or a "
            f"'|' at either end leaves an empty one — remove that '|' or write words there",
            param,
        )
    return [
        parse_prompt(part, param=param, number=first_number + index)
        for index, part in enumerate(parts)
    ]


def _check_count(count: int, param: str) -> None:
    if count > MAX_PROMPTS:
        raise SpecError(
            f"{param}: {count} prompts given; at most {MAX_PROMPTS} are allowed — merge or drop "
            f"some",
            param,
        )


def parse_prompts(value: object, *, param: str = "text_prompts") -> list[WeightedPrompt]:
    """Parse prompts given as a '|'-separated string, or a list of strings, dicts or prompts."""
    if value is None:
        return []
    if isinstance(value, str):
        return [] if not value.strip() else _from_line(value, param, 1)
    if isinstance(value, (WeightedPrompt, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise SpecError(
            f"{param}: expected prompts such as 'a lighthouse:2 | yellow:-0.5' or a list of "
            f"them; got {type(value).__name__}",
            param,
        )
    _check_count(len(value), param)
    prompts: list[WeightedPrompt] = []
    for item in value:
        prompts.extend(_from_item(item, param, len(prompts) + 1))
        _check_count(len(prompts), param)
    return prompts


def normalized_weights(
    prompts: list[WeightedPrompt], *, param: str = "text_prompts"
) -> list[float]:
    """Weights divided by |Σw|, as DD does; a sum too close to zero is an error, as in DD."""
    total = math.fsum(prompt.weight for prompt in prompts)
    if abs(total) < MIN_WEIGHT_SUM:
        raise SpecError(_zero_sum_message(prompts, total, param), param)
    return [prompt.weight / abs(total) for prompt in prompts]


def _zero_sum_message(prompts: list[WeightedPrompt], total: float, param: str) -> str:
    if not prompts:
        return f"{param}: there are no prompts — give at least one, e.g. a lighthouse"
    listed = _shorten(format_prompts(prompts, always_weight=True))
    positives = [i for i, prompt in enumerate(prompts) if prompt.weight > 0]
    if positives:
        # Raising the largest positive weight by 1 makes the sum about 1.
        best = max(positives, key=lambda i: prompts[i].weight)
        fixed = list(prompts)
        fixed[best] = WeightedPrompt(prompts[best].text, prompts[best].weight + 1.0 - total)
        suggestion = "raise a positive weight: " + _shorten(
            format_prompts(fixed, always_weight=True)
        )
    else:
        fixed = [WeightedPrompt(prompts[0].text, 1.0)] + list(prompts[1:])
        suggestion = "give a prompt a positive weight: " + _shorten(
            format_prompts(fixed, always_weight=True)
        )
    return (
        f"{param}: the weights sum to {format_number(round(total, 6))} ({listed}); DD divides "
        f"by their sum, so make it non-zero — e.g. {suggestion}"
    )


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_prompt(prompt: WeightedPrompt, *, always_weight: bool = False) -> str:
    """``text:weight``; weight 1 is left out unless the text would then be misread."""
    if not always_weight and prompt.weight == 1.0:
        reread = parse_prompt_quietly(prompt.text)
        if reread == prompt:
            return prompt.text
    return f"{prompt.text}:{format_number(prompt.weight)}"


def parse_prompt_quietly(text: str) -> WeightedPrompt | None:
    """parse_prompt, or None where it would raise (used to test how a text would be re-read)."""
    try:
        return parse_prompt(text)
    except SpecError:
        return None


def format_prompts(prompts: list[WeightedPrompt], *, always_weight: bool = False) -> str:
    """The ``a:2 | b:-0.5`` form, which `parse_prompts` reads back to the same prompts."""
    return " | ".join(format_prompt(prompt, always_weight=always_weight) for prompt in prompts)
