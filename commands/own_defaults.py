"""A member's own defaults (`/disco-settings defaults:` and `reset:`), Discord-free: set, removed
and shown.

They take the grammar and checks of a server's defaults (`server_rules.parse_defaults`: valid
settings only, no images, no seed) and hold no prompt (`NOT_OWN_DEFAULT`), are bounded in count (`storage.MAX_USER_DEFAULTS`), and a
new setting adds to them or replaces the same key. Together they must make a valid job, so a
set that could never queue is refused when it is typed. Where they sit among the other sources
of a job, and how they are checked again when a job reads them: commands/defaults.py.
"""
from __future__ import annotations

from typing import Any

from commands.defaults import (
    NOT_OWN_DEFAULT,
    OWN_DEFAULTS_FIX,
    bot_baseline,
    defaults_here,
    usable_own_defaults,
)
from commands.errors import CommandError
from commands.job_options import JobLimits, limit_adjustments
from commands.server_rules import check_allowed_models, defaults_text, parse_defaults
from engine.errors import SpecError
from storage import MAX_USER_DEFAULTS

ALL = "all"  # what a member types in `reset:` to remove every default of theirs
MAX_KEY_CHARS = 40  # a setting's name in `reset:`


def add_own_defaults(current: dict[str, Any], text: str) -> dict[str, Any]:
    """`current` with the settings typed in `text` added or replacing the same keys; CommandError
    names the rule and the fix."""
    typed = parse_defaults(text)
    for key in sorted(NOT_OWN_DEFAULT.keys() & typed.keys()):
        raise CommandError(f"defaults: {key} cannot be one of your defaults ({NOT_OWN_DEFAULT[key]}); "
                           f"leave it out", key, rule="defaults")
    merged = {**current, **typed}
    if len(merged) > MAX_USER_DEFAULTS:
        raise CommandError(f"defaults: {len(merged)} settings; at most {MAX_USER_DEFAULTS} (rule: "
                           f"user_defaults_count) — remove some with /disco-settings reset: first",
                           "defaults", rule="user_defaults_count")
    try:
        bot_baseline(merged)
    except SpecError as err:
        raise CommandError(f"defaults: {err} — together with your other defaults; change that one "
                           f"too, or remove it with /disco-settings reset:", err.param,
                           rule="defaults") from None
    return merged


def remove_own_default(current: dict[str, Any], name: str) -> tuple[dict[str, Any], str | None]:
    """`current` less the setting `name` (or every one, for `all`), with what was removed
    ("all your defaults", "`steps`"); None when `name` is not one of them."""
    key = name.strip().lower()[:MAX_KEY_CHARS]
    if key == ALL:
        return {}, "all your defaults"
    if key not in current:
        return current, None
    return {k: v for k, v in current.items() if k != key}, f"`{key}`"


def reset_choices(current: dict[str, Any], typed: str) -> list[str]:
    """What `reset:`'s autocomplete offers: the member's settings matching `typed`, then `all`."""
    names = [name for name in sorted(current) if typed.strip().lower() in name]
    return (names + ([ALL] if current else []))[:25]


def own_defaults_lines(stored: dict[str, Any]) -> list[str]:
    """The member's defaults as `/disco-settings` shows them, with any that a job would now
    ignore (a setting an upgrade no longer takes) named with the reason."""
    if not stored:
        return ["defaults: **none** — every job starts from the server's and channel's defaults. "
                "Add yours with `/disco-settings defaults:\"steps=150; eta=0.5\"`."]
    notes: list[str] = []
    kept = usable_own_defaults(stored, notes)
    lines = [f"defaults: {defaults_text(kept) if kept else 'none usable'} — every job of yours starts "
             f"from them, over the server's and channel's; a preset, your settings, flags and "
             f"options win over them, and each server's limits still apply; {OWN_DEFAULTS_FIX}."]
    return lines + [f"• {note}" for note in notes]


def own_defaults_here(server: dict[str, Any], own: dict[str, Any], limits: JobLimits,
                      allowed_models: tuple[str, ...] | None,
                      allowed_clip_models: tuple[str, ...] | None) -> list[str]:
    """What this server does to a job that keeps the member's defaults (`server`: its and the
    channel's defaults): its limits lower some, or it refuses a model. Said when they are set
    here; they are not refused, since they serve the member in every server."""
    if not own:
        return []
    try:
        bot_baseline({**server, **usable_own_defaults(own, [])})
    except SpecError as err:
        return [f"Here, with this server's defaults, jobs that keep them are refused: {err}"]
    baseline = bot_baseline(defaults_here(server, own))
    lines = [f"Here, this server's limits change them: {note}" for note in limit_adjustments(baseline, limits)]
    try:
        check_allowed_models(baseline, allowed_models, allowed_clip_models, own)
    except SpecError as err:
        lines.append(f"Here, jobs that keep them are refused: {err}")
    return lines
