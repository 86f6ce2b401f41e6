"""JSON text from users (settings files, stored specs, studies), read in one place.

`json.loads` turns a 5,000-digit integer into Python's "Exceeds the limit (4300 digits)"
ValueError and deep nesting into a RecursionError; here every failure is a `SpecError` that says
which text is wrong and how. No setting needs more than `MAX_NUMBER_DIGITS` digits (a seed has 10).
"""
from __future__ import annotations

import json
from typing import Any

from engine.errors import SpecError

MAX_NUMBER_DIGITS = 30


class _NumberTooLong(Exception):
    def __init__(self, digits: int):
        super().__init__(digits)
        self.digits = digits


def _bounded_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_NUMBER_DIGITS:
        raise _NumberTooLong(digits)  # before int(): its cost grows with the digits
    return int(literal)


def read_json(text: str, what: str) -> Any:
    """`text` parsed as JSON; a SpecError starting with `what` ("the settings file") otherwise."""
    try:
        return json.loads(text, parse_int=_bounded_int)
    except _NumberTooLong as exc:
        raise SpecError(f"{what} cannot be read: it holds a number of {exc.digits:,} digits; "
                        f"settings need at most {MAX_NUMBER_DIGITS} — fix that number") from None
    except json.JSONDecodeError as exc:
        raise SpecError(f"{what} is not valid JSON: line {exc.lineno}, column {exc.colno}: "
                        f"{exc.msg}") from None
    except RecursionError:
        raise SpecError(f"{what} cannot be read: its lists or objects are nested too deeply; "
                        f"a settings file needs only a few levels") from None
