"""What the bot says back: the echo of a queued job, refusals, and a copyable recipe.

The echo fits one Discord message (`DISCORD_LIMIT` characters): queue position and ETA (as
``<t:UNIX:R>`` timestamps, which Discord counts down without edits), the prompts with their
weights and share, the images, the non-default settings, and every note (clamps, overrides,
roundings) with its reason. When everything does not fit, each section keeps its first lines
within a fixed share of the message and says how many it left out.

User text is shown in code spans with backticks swapped out and ``@`` defused, so a prompt
cannot ping @everyone or break the formatting; the bot should still send with no allowed
mentions.

The recipe is ``/disco prompt:… settings:…``: the prompts in DD syntax plus every setting
that differs from the bot's defaults (and the server's, when given), so pasting it back gives
the same spec. Images are not part of it: attach them again. When the prompts would not read
back the same from the prompt option, they go into the settings as a JSON list instead.
"""
from __future__ import annotations

import json
import re
from typing import Any

from commands.defaults import baseline_for
from commands.job_options import ParsedJob
from commands.prompt_syntax import parse_prompt_text
from engine.errors import SpecError
from engine.spec.prompts import WeightedPrompt, format_prompts, normalized_weights
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number

DISCORD_LIMIT = 2000
LINE_LIMIT = 300
# Each section's relative share of the message when everything does not fit.
SECTION_SHARE = {"header": 200, "prompts": 650, "settings": 450, "notes": 700}
# What Discord reads as markup: these anywhere, ">" (a quote) only where a line starts, so that
# <#channel> and <@user> mentions stay whole.
_MARKDOWN = re.compile(r"([\\*_~`|\[]|^>)")
_SAFE_WORD = re.compile(r"[A-Za-z0-9_.\-]+(?: [A-Za-z0-9_.\-]+)*")


# ---- echo -----------------------------------------------------------------------------------

def _clip(text: str, limit: int = LINE_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def code_span(text: str, limit: int = 120) -> str:
    """User text as an inline code span that cannot close early or mention anyone."""
    cleaned = " ".join(text.split()).replace("`", "ˋ").replace("@", "@\u200b")
    return f"`{_clip(cleaned, limit) or ' '}`"


def _plain(text: str) -> str:
    """User-influenced text outside code spans: markdown characters escaped, @ defused."""
    return _MARKDOWN.sub(r"\\\1", " ".join(text.split())).replace("@", "@\u200b")


def _weight(value: float) -> str:
    return format_number(value).replace("-", "−")


def _prompt_lines(job: ParsedJob) -> list[str]:
    prompts = job.prompts + job.image_prompts
    try:
        shares = normalized_weights(prompts)
    except SpecError:  # a zero sum is allowed when CLIP guidance is off
        shares = [None] * len(prompts)
    lines = []
    for index, (prompt, share) in enumerate(zip(prompts, shares)):
        text = prompt.text.rsplit("/", 1)[-1] if index >= len(job.prompts) else prompt.text
        kind = "image " if index >= len(job.prompts) else ""
        used = f" → {_weight(round(share, 3))}" if share is not None else ""
        lines.append(f"• {kind}{code_span(text)} {_weight(prompt.weight)}{used}")
    return lines


def _settings_lines(job: ParsedJob) -> list[str]:
    spec = job.spec
    first = (f"{spec.width}×{spec.height} · steps {spec.steps} · seed {spec.seed}"
             + (" (random)" if job.seed_was_random else ""))
    if spec.init_image:
        first += f" · init image {code_span(spec.init_image.rsplit('/', 1)[-1], 60)}"
    if spec.gobig:
        first += f" · GoBig {spec.gobig_scale}× → {spec.width * spec.gobig_scale}×{spec.height * spec.gobig_scale}"
    lines = [first]
    for key, value in job.non_defaults.items():
        if key in ("width", "height", "steps"):
            continue
        lines.append(f"{_plain(key)} = {code_span(_format_value(key, value), 80)}")
    return lines


def _section(title: str | None, lines: list[str], budget: int | None) -> str:
    """Title plus as many lines as fit in `budget` characters, then '… N more'."""
    out = [title] if title else []
    used = len(title or "")
    for index, line in enumerate(lines):
        line = _clip(line)
        rest = len(lines) - index - 1
        reserve = len(f"\n… {rest} more") if rest else 0
        if budget is not None and used + len(line) + 1 + reserve > budget:
            out.append(f"… {len(lines) - index} more")
            break
        out.append(line)
        used += len(line) + 1
    return "\n".join(out)


NO_ENGINE = "waits for an engine: none that can run it is up now (admins: `/disco-admin workers`)"


def queue_place(position: int, *, starts_at: float | None = None, finishes_at: float | None = None,
                workers: int | None = None) -> str:
    """Where a queued job stands ("#3 in line · starts <t:…:R> · done <t:…:R>"), shared by the
    echo, the progress message and /queue. `workers`: the live workers that can run it; with
    none, an ETA would be a promise nobody keeps, so the line says what it waits for instead."""
    words = ["next in line" if position <= 1 else f"#{position} in line"]
    if workers == 0:
        words.append(NO_ENGINE)
    else:
        words += [f"{word} <t:{int(at)}:R>" for word, at in (("starts", starts_at), ("done", finishes_at))
                  if at is not None]
    return " · ".join(words)


def format_echo(job: ParsedJob, *, position: int | None = None, starts_at: float | None = None,
                finishes_at: float | None = None, workers: int | None = None, job_id: str | None = None,
                limit: int = DISCORD_LIMIT) -> str:
    """The message confirming a queued job; at most `limit` characters."""
    head = ["**Queued**" + (f" `{_clip(job_id, 40)}`" if job_id else "")]
    if position is not None:
        head.append(queue_place(position, starts_at=starts_at, finishes_at=finishes_at, workers=workers))
    if job.spec.describe:  # nothing is painted: its placeholder prompt, settings and their notes are noise
        return _clip(" · ".join(head) + f"\nDescribing the image with {', '.join(job.spec.clip_models)}; the "
                     f"prompt it reads is posted here, with ▶ to paint it.", limit)
    parts = {
        "header": ([" · ".join(head)], None),
        "prompts": (_prompt_lines(job), "**Prompts** (weight → after DD divides by the sum)"),
        "settings": (_settings_lines(job), "**Settings**"),
        "notes": ([f"• {_plain(note)}" for note in job.notes], "**Notes**"),
    }
    full = [_section(title, lines, None) for lines, title in parts.values() if lines]
    text = "\n".join(full)
    if len(text) <= limit:
        return text
    # Each section gets its share; what short sections leave goes to the long ones.
    scale = (limit - len(parts)) / sum(SECTION_SHARE[name] for name in parts)
    budget = {name: SECTION_SHARE[name] * scale for name in parts}
    needed = {name: len(_section(title, lines, None)) for name, (lines, title) in parts.items()}
    spare = sum(budget[n] - needed[n] for n in parts if needed[n] <= budget[n])
    over = [n for n in parts if needed[n] > budget[n]]
    for name in over:
        budget[name] += spare * SECTION_SHARE[name] / sum(SECTION_SHARE[n] for n in over)
    fitted = [_section(title, lines, int(budget[name]))
              for name, (lines, title) in parts.items() if lines]
    return "\n".join(fitted)[:limit]


def format_refusal(error: Exception, *, limit: int = DISCORD_LIMIT) -> str:
    """A refusal for Discord: the engine's/our message, which names the rule and the fix."""
    if isinstance(error, SpecError):  # CommandError included
        body = "\n".join(_plain(line) for line in str(error).splitlines())
    else:
        body = "something went wrong while reading the request"
    return _clip("**Not queued:** " + body, limit)


# ---- recipe ---------------------------------------------------------------------------------

def _json_string(text: str) -> str:
    """A JSON string with quotes, backslashes, ':' and ';' as \\uXXXX escapes: the settings
    splitter does not know JSON's \\" escape, and no 'settings:' can appear in a recipe."""
    escaped = "".join(f"\\u{ord(c):04x}" if c in '"\\:;' or ord(c) < 32 or c in "\u2028\u2029"
                      else c for c in text)
    return f'"{escaped}"'


def _json_prompts(prompts: list[WeightedPrompt]) -> str:
    items = [f'{{"text": {_json_string(p.text)}, "weight": {format_number(p.weight)}}}'
             for p in prompts]
    return "[" + ", ".join(items) + "]"


def _format_value(key: str, value: Any) -> str:
    """`value` as `parse_set_options` reads it back to the same setting."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    if key.startswith("cut_") or (_SAFE_WORD.fullmatch(text)
                                  and text.lower() not in ("none", "null", "true", "false")):
        return text
    return _json_string(text)


def _prompt_reads_back(text: str, prompts: list[WeightedPrompt]) -> bool:
    if not prompts or "settings:" in text.lower() or any(ord(c) < 32 for c in text):
        return False
    try:
        parsed = parse_prompt_text(text)
    except SpecError:
        return False
    return parsed.prompts == list(prompts) and not parsed.flags and not parsed.no_items


def recipe_options(spec: RenderSpec, *, defaults: dict[str, Any] | None = None,
                   shared: dict[str, Any] | None = None) -> dict[str, str]:
    """The `/disco` options (prompt, settings) that give `spec` back to a member whose jobs start
    from `defaults`; images not included. `shared`: other defaults it must also hold against (a
    recipe the clicker may share: the server's and channel's, without their own), so a setting
    either would change is written out."""
    bases = [baseline_for(spec, defaults)] + ([baseline_for(spec, shared)] if shared is not None else [])
    data = spec.to_dict()
    prompt = format_prompts(spec.text_prompts)
    settings: list[str] = []
    if not _prompt_reads_back(prompt, spec.text_prompts):
        prompt = ""
        settings.append(f"text_prompts={_json_prompts(spec.text_prompts)}")
    for key in RenderSpec.model_fields:
        if key in ("text_prompts", "image_prompts", "init_image", "gobig_init") or all(
                data[key] == base[key] for base in bases):
            continue
        settings.append(f"{key}={_format_value(key, data[key])}")
    options = {"prompt": prompt} if prompt else {}
    if settings:
        options["settings"] = "; ".join(settings)
    return options


def recipe(spec: RenderSpec, *, defaults: dict[str, Any] | None = None,
           shared: dict[str, Any] | None = None) -> str:
    """``/disco prompt:… settings:…`` for `spec` (see `recipe_options`)."""
    options = recipe_options(spec, defaults=defaults, shared=shared)
    return " ".join(["/disco"] + [f"{name}:{value}" for name, value in options.items()])

