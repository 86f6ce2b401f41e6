"""Disco Diffusion's animation keyframes and turbo schedule, without eval (frame-keyed prompts:
engine/spec/frame_prompts.py).

Keyframes are written as DD writes them: ``0: (1), 10: (1.05)`` — a whole frame number, a
colon and a parenthesised plain number. A bare number means ``0: (number)``, as DD retries an
unparsable string. Values are numbers only (DD 5.x also casts them with float), so a string
such as ``0: (9**9**9)`` is refused with the position of the bad keyframe.

`interpolate` reproduces DD's ``get_inbetweens``: frame 0 and the last frame take the first
and last key's values, then pandas ``Series.interpolate(method, limit_direction='both')``
fills the rest. For 'quadratic' and 'cubic' pandas calls scipy's ``interp1d(kind=...)``, which
is ``make_interp_spline(x, y, k)`` with its default knots; we implement that here with numpy:

* cubic (k=3): not-a-knot knots ``[x0]*4 + x[2:-2] + [x_last]*4`` — the first two and the last
  two intervals are each one cubic piece;
* quadratic (k=2): ``[x0]*3 + midpoints(x)[1:-1] + [x_last]*3`` — scipy's "Greville sites
  without the 2nd and 2nd-to-last" knots;

then the B-spline coefficients solve the collocation system (one equation per key) and the
spline is evaluated at every frame. Splines of order k reproduce polynomials of degree ≤ k
exactly, which the tests check. Too few keys degrade as DD does: cubic with ≤ 3 keys becomes
quadratic, quadratic with ≤ 2 keys becomes linear.
"""
from __future__ import annotations

import bisect
import math
import re

import numpy as np

from engine.errors import SpecError
from engine.spec.schedules import ascii_minus, format_number, short_repr

MAX_KEYFRAMES = 1000
MAX_FRAME_NUMBER = 100_000  # any frame number above this is a typo, never a real animation
MAX_KEYFRAME_TEXT = 50_000
EXAMPLE = "0: (1), 10: (1.05)"
METHODS = ("linear", "quadratic", "cubic")

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
FRAME_NUMBER = re.compile(r"\d+")  # a frame number key (frame_prompts reads keys the same way)
_SPACE = re.compile(r"[\s,]*")
_WS = re.compile(r"\s*")
# What math looks like (a function call, the frame variable t, an operator between numbers):
# other animation tools take such expressions; DD 5.x, and so this engine, reads plain numbers.
_MATH = re.compile(r"\b[a-z]+\s*\(|\bt\b|\d\s*[-+*/^%]\s*[\d.(t]", re.IGNORECASE)


def _fail(param: str, what: str, example: str = EXAMPLE) -> SpecError:
    return SpecError(f"{param}: {what} — write keyframes like {example}", param)


def _number_value(text: str, param: str, where: str) -> float:
    """A parenthesised value: a plain finite number (a pasted '−' counts as '-'), nothing else."""
    value = ascii_minus(text.strip())
    if not _NUMBER.fullmatch(value):
        shown = short_repr(value) if value else "an empty value"
        if _MATH.search(value):
            raise _fail(param, f"{where}: {shown} is math; keyframe values are plain numbers, as in "
                        f"DD 5.x (nothing typed is ever evaluated): give the values at a few frames "
                        f"and interp_spline fills the frames between")
        raise _fail(param, f"{where}: {shown} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise _fail(param, f"{where}: {short_repr(value)} is too large")
    return number + 0.0


def _scan(text: str, param: str) -> list[tuple[int, float, str]]:
    """(frame, value, source snippet) for each ``frame: (value)`` in order."""
    found: list[tuple[int, float, str]] = []
    pos = _SPACE.match(text).end()
    while pos < len(text):
        number = len(found) + 1
        start = pos
        frame_match = FRAME_NUMBER.match(text, pos)
        snippet, where = _quoted(text, number, start, text.find(")", pos))
        if not frame_match:
            negative = re.match(r"-\s*\d", text[pos:])
            raise _fail(param, f"{where} at character {pos + 1}: " + (
                "frames start at 0, a keyframe cannot be before it" if negative else
                "expected a frame number"))
        if len(frame_match.group()) > 6 or int(frame_match.group()) > MAX_FRAME_NUMBER:
            raise _fail(param, f"{where}: frame {short_repr(frame_match.group(), 12)} is "
                        f"beyond frame {MAX_FRAME_NUMBER}")
        frame = int(frame_match.group())
        fraction = re.match(r"\.\d*", text[frame_match.end():])
        if fraction:  # DD's pattern would read "0.5: (1)" as frame 5
            raise _fail(param, f"{where}: frame {frame}{fraction.group()} is not a whole frame; "
                        f"keyframes are at whole frames, e.g. {frame}: (…)")
        pos = _WS.match(text, frame_match.end()).end()
        if text[pos:pos + 1] != ":":
            raise _fail(param, f"{where} at character {pos + 1}: expected ':' after frame "
                        f"{frame}")
        pos = _WS.match(text, pos + 1).end()
        if text[pos:pos + 1] != "(":
            raise _fail(param, f"{where} at character {pos + 1}: expected '(' — the value goes "
                        f"in parentheses")
        close = _closing(text, pos)  # balanced, so math such as sin(t) is shown whole
        snippet, where = _quoted(text, number, start, close)
        if close < pos:
            raise _fail(param, f"{where}: the '(' at character {pos + 1} is never closed")
        value = _number_value(text[pos + 1:close], param, where)
        found.append((frame, value, snippet))
        if len(found) > MAX_KEYFRAMES:
            raise _fail(param, f"more than {MAX_KEYFRAMES} keyframes")
        pos = _SPACE.match(text, close + 1).end()
    return found


def _quoted(text: str, number: int, start: int, close: int) -> tuple[str, str]:
    """Keyframe `number` as typed (from `start` to the ')' at `close`, or a little when there is
    none), and the words that name it in an error."""
    snippet = text[start:close + 1 if close >= 0 else start + 30].strip()[:40]
    return snippet, f"keyframe {number} ({snippet!r})"


def _closing(text: str, open_at: int) -> int:
    """Where the ')' matching the '(' at `open_at` is, or -1."""
    depth = 0
    for at in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[at], 0)
        if depth == 0:
            return at
    return -1


def _from_mapping(value: dict, param: str) -> list[tuple[int, float, str]]:
    """{frame: number} as JSON gives it ({"0": 1.0}); frames may be ints or digit strings."""
    if len(value) > MAX_KEYFRAMES:
        raise _fail(param, f"{len(value)} keyframes given; at most {MAX_KEYFRAMES}")
    found = []
    for number, (frame, item) in enumerate(value.items(), start=1):
        where = f"keyframe {number} ({short_repr(frame)}: {short_repr(item)})"
        if isinstance(frame, str) and FRAME_NUMBER.fullmatch(frame.strip()) and len(frame) < 9:
            frame = int(frame)
        if isinstance(frame, bool) or not isinstance(frame, int) or not (
                0 <= frame <= MAX_FRAME_NUMBER):
            raise _fail(param, f"{where}: the frame must be a whole number 0..{MAX_FRAME_NUMBER}")
        if isinstance(item, str):
            number_value = _number_value(item, param, where)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            number_value = _number_value(repr(float(item)) if abs(item) < 1e300 else "x",
                                         param, where)
        else:
            raise _fail(param, f"{where}: the value must be a number")
        found.append((frame, number_value, str(frame)))
    return found


def parse_keyframes(text: object, *, param: str, low: float | None = None,
                    high: float | None = None, low_open: bool = False,
                    max_frames: int | None = None,
                    notes: list[str] | None = None) -> dict[int, float]:
    """``0: (1), 10: (1.05)`` → {0: 1.0, 10: 1.05}, checked against [low, high].

    Keys at frames ≥ `max_frames` cannot affect the animation: they are dropped with a note
    (an error if no key is left). A bare number is read as ``0: (number)`` with a note.
    `notes`, when given, collects those notes.
    """
    found: list[tuple[int, float, str]]
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        text = repr(float(text)) if abs(text) < 1e300 else "x"
    if isinstance(text, dict):
        found = _from_mapping(text, param)
    elif isinstance(text, str):
        if len(text) > MAX_KEYFRAME_TEXT:
            raise _fail(param, f"the text is {len(text)} characters; at most "
                        f"{MAX_KEYFRAME_TEXT}")
        quoted = re.fullmatch(r"\s*([\"'])(.*)\1\s*", text, re.DOTALL)
        text = quoted.group(2) if quoted else text  # copied with its quotes from DD's code cell
        if not text.strip():
            raise _fail(param, "no keyframes given")
        if _NUMBER.fullmatch(text.strip()):
            found = [(0, _number_value(text, param, "the value"), text.strip())]
            if notes is not None:
                notes.append(f"{param}: {text.strip()[:30]} has no frame number; read as "
                             f"0: ({format_number(found[0][1])})")
        else:
            found = _scan(text, param)
    else:
        raise _fail(param, f"{short_repr(text)} is not keyframe text")
    keys: dict[int, float] = {}
    for number, (frame, value, snippet) in enumerate(found, start=1):
        where = f"keyframe {number} ({snippet!r})"
        if frame in keys:
            raise _fail(param, f"{where}: frame {frame} is given twice; keep one")
        _check_bounds(value, param, where, low, high, low_open)
        keys[frame] = value
    if max_frames is not None:
        beyond = sorted(frame for frame in keys if frame >= max_frames)
        if beyond and len(beyond) == len(keys):
            raise SpecError(f"{param}: every keyframe is at or after frame {max_frames}, past the "
                            f"last frame ({max_frames - 1}) — start with a frame-0 key, e.g. "
                            f"0: ({format_number(keys[beyond[0]])})", param)
        if beyond and notes is not None:
            notes.append(f"{param}: keys past the last frame ({max_frames - 1}) are ignored "
                         f"({frames_named(beyond)})")
        keys = {frame: value for frame, value in keys.items() if frame < max_frames}
    return dict(sorted(keys.items()))


def _check_bounds(value: float, param: str, where: str, low: float | None,
                  high: float | None, low_open: bool) -> None:
    too_low = low is not None and (value < low or (low_open and value == low))
    too_high = high is not None and value > high
    if too_low or too_high:
        low_text = "-∞" if low is None else format_number(low)
        high_text = "∞" if high is None else format_number(high)
        bracket = "(" if low_open else "["
        raise SpecError(f"{param}: {where}: {format_number(value)} is out of range; allowed: "
                        f"{bracket}{low_text}, {high_text}] — use a value in that range",
                        param)


def format_keyframes(keys: dict[int, float]) -> str:
    """The canonical ``0: (1), 10: (1.05)`` text, frames in order."""
    return ", ".join(f"{frame}: ({format_number(value)})" for frame, value in sorted(keys.items()))


# ---- interpolation --------------------------------------------------------------------------

def effective_method(method: str, key_count: int) -> str:
    """DD's degrade rule: cubic needs ≥ 4 keys (else quadratic), quadratic ≥ 3 (else linear)."""
    method = method.lower()
    if method not in METHODS:
        raise SpecError(f"interp_spline: {short_repr(method)} is not known; allowed: Linear, "
                        f"Quadratic, Cubic — e.g. interp_spline=Linear", "interp_spline")
    if method == "cubic" and key_count <= 3:
        method = "quadratic"
    if method == "quadratic" and key_count <= 2:
        method = "linear"
    return method


def _knots(x: np.ndarray, k: int) -> np.ndarray:
    """scipy make_interp_spline's default knots for k = 2 and k = 3 (see module docstring)."""
    if k == 2:
        inner = ((x[1:] + x[:-1]) / 2.0)[1:-1]
    else:
        inner = x[2:-2]
    return np.concatenate([np.repeat(x[0], k + 1), inner, np.repeat(x[-1], k + 1)])


def _basis(t: np.ndarray, k: int, n_coef: int, x: float) -> tuple[int, list[float]]:
    """The k+1 B-splines that are non-zero at x: (index of the first, their values).

    The Cox–de Boor triangle; x equal to the last knot belongs to the last interval.
    """
    span = min(max(bisect.bisect_right(t, x) - 1, k), n_coef - 1)
    values = [1.0] + [0.0] * k
    left = [0.0] * (k + 1)
    right = [0.0] * (k + 1)
    for j in range(1, k + 1):
        left[j] = x - t[span + 1 - j]
        right[j] = t[span + j] - x
        saved = 0.0
        for r in range(j):
            term = values[r] / (right[r + 1] + left[j - r])
            values[r] = saved + right[r + 1] * term
            saved = left[j - r] * term
        values[j] = saved
    return span - k, values


def _spline(xs: list[int], ys: list[float], k: int, frames: int) -> list[float]:
    """Interpolating B-spline of degree k through (xs, ys), evaluated at 0..frames-1."""
    x = np.asarray(xs, dtype=float)
    t = _knots(x, k)
    n = len(xs)
    matrix = np.zeros((n, n))
    for row, point in enumerate(x):
        first, values = _basis(t, k, n, float(point))
        matrix[row, first:first + k + 1] = values
    coef = np.linalg.solve(matrix, np.asarray(ys, dtype=float))
    out = []
    for frame in range(frames):
        first, values = _basis(t, k, n, float(frame))
        out.append(float(np.dot(values, coef[first:first + k + 1])))
    return out


def interpolate(keys: dict[int, float], frames: int, method: str = "linear", *,
                notes: list[str] | None = None, param: str = "keyframes") -> list[float]:
    """A value for every frame 0..frames-1, as DD's get_inbetweens computes it.

    Keys at frames ≥ `frames` are ignored. Before the first key and after the last the values
    hold constant (DD pins frame 0 and the last frame to the first and last keys).
    """
    if frames < 1:
        raise SpecError(f"{param}: {frames} frames; an animation has at least 1 frame", param)
    inside = {frame: value for frame, value in sorted(keys.items()) if 0 <= frame < frames}
    if not inside:
        raise SpecError(f"{param}: no keyframe inside frames 0..{frames - 1} — add one, e.g. "
                        f"0: (1)", param)
    wanted = method.lower()
    method = effective_method(wanted, len(inside))
    if method != wanted and notes is not None:
        notes.append(f"{param}: {len(inside)} keyframes are too few for {wanted} "
                     f"interpolation; using {method} (as DD does)")
    points = dict(inside)
    points.setdefault(0, inside[min(inside)])
    points.setdefault(frames - 1, inside[max(inside)])
    xs, ys = list(points), list(points.values())
    order = sorted(range(len(xs)), key=xs.__getitem__)
    xs, ys = [xs[i] for i in order], [ys[i] for i in order]
    if len(xs) == 1:
        return [ys[0]] * frames
    if method == "linear":
        return [float(v) for v in np.interp(np.arange(frames), xs, ys)]
    return _spline(xs, ys, 2 if method == "quadratic" else 3, frames)


def inbetween_problem(values: list[float], keys: dict[int, float], method: str, *, param: str,
                      low: float, high: float, low_open: bool) -> SpecError | None:
    """The first in-between outside [low, high] as a SpecError, else None. Quadratic and cubic
    curves overshoot their keys, most past the last key, where DD pins the last frame to the last
    key's value: "0: (1), 2: (1.5), 4: (0.5)" over 12 frames reaches zoom -0.36 at frame 7."""
    bad = next(((frame, value) for frame, value in enumerate(values) if (value < low or value > high
                or (low_open and value == low))), None)
    if bad is None:
        return None
    frame, value = bad
    last = len(values) - 1
    add = "" if last in keys else (f", or add a keyframe at the last frame, e.g. {last}: "
                                   f"({format_number(keys[max(keys)])})")
    bracket = "(" if low_open else "["
    return SpecError(f"{param}: the {method.lower()} in-betweens of {format_keyframes(keys)[:80]} reach "
                     f"{format_number(round(value, 4))} at frame {frame}, out of range; allowed: "
                     f"{bracket}{format_number(low)}, {format_number(high)}] — use interp_spline=Linear"
                     f"{add}", param)


# ---- turbo and frames_skip_steps ------------------------------------------------------------

def turbo_schedule(max_frames: int, turbo_steps: int, turbo_preroll: int) -> list[bool]:
    """True where a frame is diffused: every frame before the preroll ends, then every
    turbo_steps-th frame (frame % turbo_steps == 0), as DD's 3D turbo does."""
    if turbo_steps < 1:
        raise SpecError("turbo_steps: must be at least 1 — e.g. turbo_steps=3", "turbo_steps")
    return [frame < turbo_preroll or frame % turbo_steps == 0 for frame in range(max_frames)]


def turbo_blend_weight(frame: int, turbo_steps: int) -> float:
    """Weight of the newer warped chain on a skipped frame: ((frame % steps) + 1) / steps."""
    return ((frame % turbo_steps) + 1) / turbo_steps


_PERCENT = re.compile(r"\s*(\d{1,3})\s*%?\s*")


def parse_percent(value: object, *, param: str = "frames_skip_steps") -> int:
    """'60%' (or 60, or '60') → 60; whole percentages 0..99 as DD reads them."""
    if isinstance(value, int) and not isinstance(value, bool):
        percent = value
    elif isinstance(value, str) and _PERCENT.fullmatch(value):
        percent = int(_PERCENT.fullmatch(value).group(1))
    else:
        raise SpecError(f"{param}: {short_repr(value)} is not a whole percentage; allowed: "
                        f"0%..99% — e.g. {param}=60%", param)
    if not 0 <= percent <= 99:
        raise SpecError(f"{param}: {percent}% is out of range; allowed: 0%..99% (some steps "
                        f"must remain) — e.g. {param}=60%", param)
    return percent


def frames_skip_steps(steps: int, value: object, *, param: str = "frames_skip_steps") -> int:
    """Steps skipped on frames after the first: floor(steps × percent / 100), as DD computes."""
    return steps * parse_percent(value, param=param) // 100


def frames_named(frames: list[int]) -> str:
    """'frame 5', or 'frames 5, 7' (the first five, then '…'), for notes."""
    shown = ", ".join(map(str, frames[:5])) + (", …" if len(frames) > 5 else "")
    return f"frame{'s' if len(frames) > 1 else ''} {shown}"
