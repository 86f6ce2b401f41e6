"""Safe parser for Disco Diffusion's cut schedules, such as ``[12]*400+[4]*600``.

DD ``eval``-s these strings into 1000-entry Python lists, one entry per position on its
1000-step axis. We accept the same notation through a small hand-written parser instead:

    schedule := term ('+' term)*
    term     := '[' value (',' value)* ']' ('*' count)?
    value    := number | True | False
    count    := whole number, at most 1000

A bare number (or a string holding one) means a constant schedule, and a list or tuple of
exactly 1000 numbers is accepted as is. Sizes are checked before anything is expanded, so a
hostile input such as ``[0]*9**9**9`` fails at once with bounded memory. Every error is a
`SpecError` naming the parameter, the 1-based character position and the fix.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence

from engine.errors import SpecError

SCHEDULE_LENGTH = 1000
# Long enough for the canonical form of any 1000-entry schedule (about 25 characters an entry
# at worst), short enough that parsing stays instant.
MAX_TEXT_LENGTH = 32_000
EXAMPLE = "[12]*400+[4]*600"

Number = float | int

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WHOLE = re.compile(r"\d+")
_SPACE = re.compile(r"\s*")


def format_number(value: float | int | bool) -> str:
    """Shortest stable text for a number: whole floats drop their '.0', others use repr."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def short_repr(value: object, limit: int = 40) -> str:
    """A bounded, never-failing description of any value, for error messages."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a whole number of about {int(value.bit_length() * 0.30103)} digits"
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + "…"
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real error
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit] + "…"


# Minus signs that text pasted from web pages, word processors and chat apps brings in place of '-'.
_TYPOGRAPHIC_MINUS = str.maketrans({"\u2212": "-", "\u2013": "-", "\u2012": "-", "\ufe63": "-",
                                    "\uff0d": "-"})


def ascii_minus(text: str) -> str:
    """`text` with typographic minus signs (−, –, …) as '-', so "−0.5" reads as the number it shows."""
    return text.translate(_TYPOGRAPHIC_MINUS)


def as_finite_float(value: object) -> float | None:
    """float(value) for an int/float/bool, or None if it is not finite (or too big for a float)."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _snippet(text: str, pos: int) -> str:
    """The text found at a position, cut short so error messages stay readable."""
    rest = text[pos:]
    if not rest:
        return "the end of the schedule"
    return repr(rest if len(rest) <= 12 else rest[:12] + "…")


class _Parser:
    """Recursive-descent parser over one schedule string; positions are 0-based internally."""

    def __init__(self, text: str, param: str):
        self.text = text
        self.param = param
        self.pos = 0

    def fail(self, pos: int, expected: str) -> SpecError:
        found = _snippet(self.text, pos)
        return SpecError(
            f"{self.param}: at position {pos + 1}: expected {expected}, found {found} — "
            f"write schedules like {EXAMPLE} ({SCHEDULE_LENGTH} entries in all)",
            self.param,
        )

    def skip_space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str, expected: str) -> None:
        if self.peek() != char:
            raise self.fail(self.pos, expected)
        self.pos += 1

    def value(self) -> Number:
        self.skip_space()
        for word, number in (("True", 1), ("False", 0)):
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return number
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            raise self.fail(self.pos, "a number (such as 12 or 0.2) or True/False")
        literal = match.group()
        self.pos = match.end()
        if re.fullmatch(r"[+-]?\d{1,18}", literal):
            return int(literal)  # longer digit strings go through float, so never a huge int
        number = float(literal)
        if not math.isfinite(number):
            raise SpecError(
                f"{self.param}: at position {match.start() + 1}: the number {literal} is too "
                f"large to be used — every entry must be a finite number",
                self.param,
            )
        return number

    def count(self) -> int:
        self.skip_space()
        start = self.pos
        match = _WHOLE.match(self.text, start)
        end_of_number = match.end() if match else start
        if not match or self.text[end_of_number : end_of_number + 1] in (".", "e", "E", "*"):
            # Show everything up to the next '+', so '9**9' or '4.5' is quoted whole.
            plus = self.text.find("+", start)
            found = self.text[start : plus if plus >= 0 else len(self.text)].strip()
            shown = repr(found[:12] + ("…" if len(found) > 12 else "")) if found else "nothing"
            raise SpecError(
                f"{self.param}: at position {start + 1}: expected a whole number after '*', "
                f"found {shown} — write schedules like {EXAMPLE} "
                f"({SCHEDULE_LENGTH} entries in all)",
                self.param,
            )
        digits = match.group()
        self.pos = match.end()
        # Leading zeros dropped and the length compared first, so neither 10,000 digits nor
        # 10,000 zeros ever reach int() (Python refuses over 4300 digits).
        value = digits.lstrip("0") or "0"
        if len(value) > 4 or int(value) > SCHEDULE_LENGTH:
            raise SpecError(
                f"{self.param}: at position {start + 1}: the count {digits[:20]}"
                f"{'…' if len(digits) > 20 else ''} is too large — a schedule has "
                f"{SCHEDULE_LENGTH} entries in all, e.g. {EXAMPLE}",
                self.param,
            )
        return int(value)

    def parse(self) -> list[tuple[tuple[Number, ...], int]]:
        """Return the terms as (values, count) pairs, with the total length checked."""
        terms: list[tuple[tuple[Number, ...], int]] = []
        total = 0
        while True:
            self.skip_space()
            term_start = self.pos
            self.expect("[", "'[' to start a list such as [12]")
            values = [self.value()]
            while self.peek() == ",":
                self.pos += 1
                if self.peek() == "]":  # a trailing comma, as Python allows
                    break
                values.append(self.value())
            self.expect("]", "',' or ']' after a value")
            count = 1
            if self.peek() == "*":
                self.pos += 1
                count = self.count()
            total += len(values) * count
            if total > SCHEDULE_LENGTH:
                raise SpecError(
                    f"{self.param}: the schedule already has {total} entries at the term "
                    f"starting at position {term_start + 1}; it needs exactly "
                    f"{SCHEDULE_LENGTH} — e.g. {EXAMPLE}",
                    self.param,
                )
            terms.append((tuple(values), count))
            if self.peek() == "":
                return terms
            self.expect("+", "'+' between terms or the end of the schedule")


def _suggest_total_fix(terms: list[tuple[tuple[Number, ...], int]], total: int) -> str:
    """A corrected schedule made by stretching the last term, or DD's default as a fallback."""
    values, count = terms[-1]
    missing = SCHEDULE_LENGTH - total
    if missing % len(values) == 0 and count + missing // len(values) >= 0:
        fixed = terms[:-1] + [(values, count + missing // len(values))]
        expanded: list[Number] = []
        for vals, n in fixed:
            expanded.extend(vals * n)
        return format_schedule(expanded)
    return EXAMPLE


def _parse_text(text: str, param: str) -> list[Number]:
    if len(text) > MAX_TEXT_LENGTH:
        raise SpecError(
            f"{param}: the schedule is {len(text)} characters long; at most {MAX_TEXT_LENGTH} "
            f"are allowed — write runs of equal values as [v]*n, e.g. {EXAMPLE}",
            param,
        )
    stripped = text.strip()
    if not stripped:
        raise SpecError(
            f"{param}: the schedule is empty — write e.g. {EXAMPLE} "
            f"({SCHEDULE_LENGTH} entries in all) or a single number for a constant",
            param,
        )
    if _NUMBER.fullmatch(stripped) or stripped in ("True", "False"):
        return [_Parser(stripped, param).value()] * SCHEDULE_LENGTH
    terms = _Parser(text, param).parse()
    total = sum(len(values) * count for values, count in terms)
    if total != SCHEDULE_LENGTH:
        raise SpecError(
            f"{param}: the schedule has {total} entries; it needs exactly {SCHEDULE_LENGTH} "
            f"— e.g. {_suggest_total_fix(terms, total)}",
            param,
        )
    expanded: list[Number] = []
    for values, count in terms:
        expanded.extend(values * count)
    return expanded


def _raw_values(value: object, param: str) -> list[Number]:
    """Turn any accepted input form into a list of 1000 plain numbers (not yet range-checked)."""
    if isinstance(value, str):
        return _parse_text(value, param)
    if isinstance(value, (bool, int, float)):
        return [value] * SCHEDULE_LENGTH
    if isinstance(value, (list, tuple)):
        if len(value) != SCHEDULE_LENGTH:
            raise SpecError(
                f"{param}: the list has {len(value)} entries; it needs exactly "
                f"{SCHEDULE_LENGTH} — or write a schedule string such as {EXAMPLE}",
                param,
            )
        for index, item in enumerate(value):
            if not isinstance(item, (bool, int, float)):
                raise SpecError(
                    f"{param}: entry {index + 1} is {short_repr(item)}; every "
                    f"entry must be a number",
                    param,
                )
        return list(value)
    raise SpecError(
        f"{param}: expected a schedule string such as {EXAMPLE}, a number, or a list of "
        f"{SCHEDULE_LENGTH} numbers; got {type(value).__name__}",
        param,
    )


class _LazyRange:
    """Formats as 'entries 1..400' (the run of equal values around an index, 1-based).

    Lazy because it is only needed for an error message, and scanning runs for every entry
    of a valid schedule would cost O(n²).
    """

    def __init__(self, values: Sequence[Number], index: int):
        self.values, self.index = values, index

    def __format__(self, spec: str) -> str:
        values, index = self.values, self.index
        start = end = index
        while start > 0 and values[start - 1] == values[index]:
            start -= 1
        while end + 1 < len(values) and values[end + 1] == values[index]:
            end += 1
        return f"entry {start + 1}" if start == end else f"entries {start + 1}..{end + 1}"


def parse_schedule(
    value: object,
    *,
    param: str,
    integer: bool = False,
    boolean: bool = False,
    low: float | None = None,
    high: float | None = None,
) -> tuple:
    """Parse `value` into a tuple of exactly SCHEDULE_LENGTH entries.

    integer=True: entries must be whole numbers and come back as ints (cut counts).
    boolean=True: entries must be 0/1/True/False and come back as bools.
    Otherwise entries come back as floats. `low`/`high` are inclusive bounds.
    """
    if isinstance(value, str):
        # Every spec validation parses its schedules, and the same few texts (DD's defaults)
        # come back all the time: remember the results (tuples, so sharing them is safe).
        return _parse_schedule_text(value, param, integer, boolean, low, high)
    return _parse_schedule(value, param, integer, boolean, low, high)


@functools.lru_cache(maxsize=512)
def _parse_schedule_text(value: str, param: str, integer: bool, boolean: bool, low: float | None,
                         high: float | None) -> tuple:
    return _parse_schedule(value, param, integer, boolean, low, high)


def _parse_schedule(value: object, param: str, integer: bool, boolean: bool, low: float | None,
                    high: float | None) -> tuple:
    raw = _raw_values(value, param)
    result: list = []
    for index, item in enumerate(raw):
        where = _LazyRange(raw, index)
        number = as_finite_float(item)
        if number is None:
            raise SpecError(
                f"{param}: at {where} the value is not a finite number (too large or nan)", param
            )
        if boolean and number not in (0.0, 1.0):
            raise SpecError(
                f"{param}: at {where} the value is {format_number(item)}; this schedule is "
                f"on/off, so each entry must be True or False (1 or 0), "
                f"e.g. [True]*400+[False]*600",
                param,
            )
        if integer and not number.is_integer():
            raise SpecError(
                f"{param}: at {where} the value is {format_number(item)}; this schedule "
                f"counts cuts, so each entry must be a whole number, e.g. {EXAMPLE}",
                param,
            )
        if low is not None and number < low:
            raise SpecError(
                f"{param}: at {where} the value is {format_number(item)}, below the minimum "
                f"{format_number(low)}; allowed: {_allowed(low, high)}",
                param,
            )
        if high is not None and number > high:
            raise SpecError(
                f"{param}: at {where} the value is {format_number(item)}, above the maximum "
                f"{format_number(high)}; allowed: {_allowed(low, high)}",
                param,
            )
        if boolean:
            result.append(number == 1.0)
        elif integer:
            result.append(int(number))
        else:
            result.append(number + 0.0)  # '+ 0.0' turns -0.0 into 0.0 for stable output
    return tuple(result)


def _allowed(low: float | None, high: float | None) -> str:
    low_text = "-∞" if low is None else format_number(low)
    high_text = "∞" if high is None else format_number(high)
    return f"{low_text}..{high_text} at every position"


def format_schedule(values: Sequence[Number]) -> str:
    """Canonical run-length form: ``[12]*400+[4]*600``; a constant reads ``[5]*1000``.

    Runs of one value are gathered into a single list (``[1,2,3]``) so even a schedule whose
    every entry differs stays short enough to parse back.
    """
    if not values:
        raise ValueError("format_schedule needs at least one value")
    runs: list[list] = []  # [value, length]
    for item in values:
        if runs and item == runs[-1][0] and type(item) is type(runs[-1][0]):
            runs[-1][1] += 1
        else:
            runs.append([item, 1])
    parts: list[str] = []
    singles: list[str] = []
    for value, length in runs:
        if length == 1:
            singles.append(format_number(value))
            continue
        if singles:
            parts.append("[" + ",".join(singles) + "]")
            singles = []
        parts.append(f"[{format_number(value)}]*{length}")
    if singles:
        parts.append("[" + ",".join(singles) + "]")
    return "+".join(parts)


def canonical_schedule(value: object, **kwargs) -> str:
    """Parse with `parse_schedule`'s keyword arguments, then format canonically."""
    return format_schedule(parse_schedule(value, **kwargs))


def schedule_index(t_int: int) -> int:
    """DD's position on the 1000-step axis for a model timestep: t_int = int(t) + 1, 1..1000."""
    if not 1 <= t_int <= SCHEDULE_LENGTH:
        raise ValueError(f"t_int must be in 1..{SCHEDULE_LENGTH}, got {t_int}")
    return SCHEDULE_LENGTH - t_int
