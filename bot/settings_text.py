"""A server's settings as text: its limits, allowed channels and GPU time, for /disco-admin and
/disco-info."""
from __future__ import annotations

from storage.guilds import DEFAULT_LIMITS, LIMIT_NAMES, GuildSettings


def seconds_text(seconds: float) -> str:
    whole = f"{seconds:,.1f}" if 0 < seconds < 10 else f"{seconds:,.0f}"  # 0.4, not 0
    return f"{whole} GPU-s ({seconds / 60:,.1f} min)"


def limits_text(settings: GuildSettings) -> str:
    """One line per limit; a changed one shows its default too."""
    lines = []
    for name in LIMIT_NAMES:
        value, default = getattr(settings.limits, name), getattr(DEFAULT_LIMITS, name)
        lines.append(f"`{name}` = {value:,}" + ("" if value == default else f" (default {default:,})"))
    return "\n".join(lines)


def channels_text(settings: GuildSettings) -> str:
    if not settings.allowed_channel_ids:
        return "Jobs are allowed in every channel"
    return "Jobs are allowed only in " + ", ".join(f"<#{c}>" for c in sorted(settings.allowed_channel_ids))
