"""Frame-keyed prompts for animations: ``0: a castle:1 | fog:-0.5 || 60: a city``.

Each part is ``frame: prompts`` (prompts as in engine/spec/prompts.py); parts are separated by
``||``; text without a frame number starts at frame 0. A JSON-like mapping such as
``{0: ["a castle"], 60: "a city"}`` is read by a small scanner (never evaluated), as DD's notebook
cell shows it too (``text_prompts = {`` … trailing commas … ``}``). At any frame
the prompts in force are the latest keyed at or before it, or the first ones before any key —
DD's forward fill then back fill.
"""
from __future__ import annotations

import bisect
import json
import re

from engine.errors import SpecError
from engine.spec.keyframes import FRAME_NUMBER, MAX_FRAME_NUMBER, frames_named
from engine.spec.prompts import WeightedPrompt, format_prompts, parse_prompts
from engine.spec.schedules import short_repr

MAX_PROMPT_FRAMES = 1000
MAX_PROMPT_TEXT = 200_000
PROMPT_EXAMPLE = "0: a castle:1 | fog:-0.5 || 60: a city"
_FRAME_PREFIX = re.compile(r"\s*(\d+)\s*:(.*)", re.DOTALL)
_BARE_KEY = re.compile(r"(\d+)(\s*:)")
_TRAILING_COMMA = re.compile(r",\s*[}\]]")  # Python allows one before a closing bracket; JSON does not
# DD's notebook cell pasted whole: "text_prompts = {0: [...]}"
_ASSIGNMENT = re.compile(r"\s*text_prompts\s*=\s*(?=\{)")
_DICT_TEXT = re.compile(r"(?:\s*text_prompts\s*=)?\s*\{\s*['\"]?\d+['\"]?\s*:")
# Parts are separated by "||", or in keyed text by a line break before the next "60:" (prompts
# pasted one frame per line); a trailing "||" or line break ends the text.
_PART_BREAK = re.compile(r"\|\||\n(?=[ \t]*\d+[ \t]*:)")


def is_frame_keyed(text: str) -> bool:
    """Whether prompt text is keyed by frame (``0: a castle || 60: a city``, or DD's
    ``{0: ["a castle"], 60: ["a city"]}``), not one set of prompts for every frame."""
    return "||" in text or bool(_FRAME_PREFIX.match(text)) or bool(_DICT_TEXT.match(text))


def _prompt_error(param: str, what: str) -> SpecError:
    return SpecError(f"{param}: {what} — write frame prompts like {PROMPT_EXAMPLE}", param)


def _json_ish(text: str, param: str) -> dict:
    """Read ``{0: ["a:1"], 60: "b"}``: JSON plus bare whole-number keys and 'single quotes'."""
    out: list[str] = []
    quote, last = "", ""  # last: the previous character outside strings, spaces skipped
    pos = 0
    while pos < len(text):
        char = text[pos]
        if quote:
            if char == "\\" and pos + 1 < len(text):
                nxt = text[pos + 1]
                # \' means a quote inside a single-quoted string; JSON has no such escape.
                out.append("'" if nxt == "'" else char + nxt)
                pos += 2
                continue
            if char == quote:
                out.append('"')
                quote, last = "", '"'
            else:
                out.append('\\"' if char == '"' else char)
        elif char in "\"'":
            quote = char
            out.append('"')
        elif char == "," and _TRAILING_COMMA.match(text, pos):
            pos += 1
            continue
        else:
            bare = _BARE_KEY.match(text, pos)
            if bare and last in ("{", ","):
                out.append(f'"{bare.group(1)}"{bare.group(2)}')
                pos = bare.end()
                continue
            out.append(char)
            last = last if char.isspace() else char
        pos += 1
    try:
        data = json.loads("".join(out))
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        raise _prompt_error(param, f"the {{frame: prompts}} text cannot be read ({reason})") \
            from None
    if not isinstance(data, dict):
        raise _prompt_error(param, "expected a {frame: prompts} mapping")
    return data


def _frame_number(key: object, param: str, where: str) -> int:
    if isinstance(key, str) and FRAME_NUMBER.fullmatch(key.strip()) and len(key.strip()) <= 6:
        key = int(key)
    if isinstance(key, bool) or not isinstance(key, int) or not 0 <= key <= MAX_FRAME_NUMBER:
        raise _prompt_error(param, f"{where}: {short_repr(key)} is not a frame number "
                            f"0..{MAX_FRAME_NUMBER}")
    return key


def _split_text(text: str, param: str) -> dict[int, object]:
    """``0: a | b || 60: c`` (or one part a line) → {0: 'a | b', 60: 'c'}; the first part
    may omit '0:'."""
    parts: dict[int, object] = {}
    pieces = _PART_BREAK.split(text) if _FRAME_PREFIX.match(text) else text.split("||")
    if len(pieces) > 1 and not pieces[-1].strip():
        pieces.pop()
    if len(pieces) > MAX_PROMPT_FRAMES:
        raise _prompt_error(param, f"{len(pieces)} frames given; at most {MAX_PROMPT_FRAMES}")
    for number, piece in enumerate(pieces, start=1):
        match = _FRAME_PREFIX.fullmatch(piece)
        if match:
            frame = _frame_number(match.group(1), param, f"part {number}")
            body = match.group(2)
        elif number == 1:
            frame, body = 0, piece  # no frame number: the prompts start at frame 0
        else:
            raise _prompt_error(param, f"part {number} ({piece.strip()[:30]!r}) has no frame "
                                f"number; start it with e.g. '60:'")
        if frame in parts:
            raise _prompt_error(param, f"part {number}: frame {frame} is given twice; keep one")
        parts[frame] = body
    return parts


def parse_frame_prompts(value: object, *, max_frames: int | None = None,
                        param: str = "text_prompts",
                        notes: list[str] | None = None) -> dict[int, list[WeightedPrompt]]:
    """Prompts keyed by the frame they start at: {0: [WeightedPrompt, ...], 60: [...]}.

    Accepts ``0: a:1 | b || 60: c`` text, ``{0: [...], "60": "c"}`` (a dict or its text) and a
    plain prompt list or text (= frame 0). Frames past `max_frames` are dropped with a note.
    """
    if isinstance(value, str) and len(value) > MAX_PROMPT_TEXT:
        raise _prompt_error(param, f"the text is {len(value)} characters; at most "
                            f"{MAX_PROMPT_TEXT}")
    if isinstance(value, str) and (assigned := _ASSIGNMENT.match(value)):
        value = value[assigned.end():]
    if isinstance(value, str) and value.lstrip().startswith("{"):
        value = _json_ish(value, param)
    if isinstance(value, str):
        raw = _split_text(value, param)
    elif isinstance(value, dict):
        if len(value) > MAX_PROMPT_FRAMES:
            raise _prompt_error(param, f"{len(value)} frames given; at most {MAX_PROMPT_FRAMES}")
        raw = {}
        for number, (key, item) in enumerate(value.items(), start=1):
            frame = _frame_number(key, param, f"entry {number}")
            if frame in raw:
                raise _prompt_error(param, f"frame {frame} is given twice; keep one")
            raw[frame] = item
    elif value is None or isinstance(value, (list, tuple)):
        raw = {0: value}
    else:
        raise _prompt_error(param, f"{short_repr(value)} is not prompts")
    frames: dict[int, list[WeightedPrompt]] = {}
    for frame, item in sorted(raw.items()):
        try:
            prompts = parse_prompts(item, param=param)
        except SpecError as err:
            raise SpecError(f"{param}: frame {frame}: {str(err).removeprefix(param + ': ')}",
                            param) from None
        if not prompts:
            raise _prompt_error(param, f"frame {frame} has no prompts")
        frames[frame] = prompts
    if not frames:
        raise _prompt_error(param, "no prompts given")
    if max_frames is not None:
        beyond = [frame for frame in frames if frame >= max_frames]
        if len(beyond) == len(frames):
            raise _prompt_error(param, f"every prompt starts at or after frame {max_frames}, "
                                f"past the last frame; start one at frame 0")
        if beyond and notes is not None:
            notes.append(f"{param}: prompts starting past the last frame ({max_frames - 1}) are "
                         f"ignored ({frames_named(beyond)})")
        frames = {frame: p for frame, p in frames.items() if frame < max_frames}
    return frames


def prompts_at(frame_prompts: dict[int, list[WeightedPrompt]], frame: int) -> list[WeightedPrompt]:
    """The prompts in force at `frame`: the latest key at or before it, else the first key
    (DD's pandas ffill() then bfill())."""
    keys = sorted(frame_prompts)
    index = bisect.bisect_right(keys, frame) - 1
    return list(frame_prompts[keys[max(index, 0)]])


def format_frame_prompts(frame_prompts: dict[int, list[WeightedPrompt]]) -> str:
    """The ``0: a:2 | b || 60: c`` text, which `parse_frame_prompts` reads back."""
    return " || ".join(f"{frame}: {format_prompts(prompts)}"
                       for frame, prompts in sorted(frame_prompts.items()))
