"""A server's settings as text: its limits, allowed channels and GPU time, for /disco-admin and
/disco-info; its banned words and audit log in pages that fit one message."""
from __future__ import annotations

from bot.answers import MESSAGE_LIMIT, as_typed
from storage.audit import AuditEntry
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


# A page of a list leaves room for an answer's head line (a banned word of up to 100 characters).
PAGE_ROOM = 1700
AUDIT_FOOTER_CHARS = 80  # room for "Older entries: …" under the entries


def fitting(parts: list[str], room: int, separator: str) -> int:
    """How many of `parts`, from the first, fit in `room` characters joined by `separator`."""
    used = -len(separator)
    for count, part in enumerate(parts):
        used += len(separator) + len(part)
        if used > room:
            return count
    return len(parts)


def paged(parts: list[str], page: int, separator: str, command: str) -> str:
    """Page `page` of a list too long for one message: whole parts only, then how to see the
    next page (`command`, e.g. "/preset list", takes `page:`)."""
    pages, start = [], 0
    while start < len(parts):  # a part is far shorter than a page, so each page holds one
        end = start + max(1, fitting(parts[start:], PAGE_ROOM, separator))
        pages.append(parts[start:end])
        start = end
    if page > len(pages):
        return (f"There is no page {page}; the list has {len(pages)} (`{command} page:{len(pages)}` "
                f"is the last)")
    text = separator.join(pages[page - 1])
    if len(pages) > 1:
        text += f"\nPage {page} of {len(pages)}" + (
            f"; next: `{command} page:{page + 1}`" if page < len(pages) else "")
    return text


def words_page(words: list[str], page: int) -> str:
    """One page of the banned words (already as code spans)."""
    if not words:
        return "No banned words."
    return f"Banned words ({len(words)}): " + paged(words, page, ", ", "/disco-admin banned-words list")


def subject_text(scope: str, subject_id: str | None) -> str:
    """Whom a GPU-time budget applies to."""
    return {"user": f"<@{subject_id}>", "role": f"<@&{subject_id}>",
            "member": "every member (default)", "guild": "the whole server"}[scope]


def audit_line(entry: AuditEntry) -> str:
    """One audit entry: id, when, who (no actor: the bot itself), what, on what, details."""
    who = f"<@{entry.actor_id}>" if entry.actor_id else "the bot"
    detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()))
    line = (f"`#{entry.id}` <t:{int(entry.at)}:R> {who} **{entry.action}**"
            f"{' ' + as_typed(entry.target) if entry.target else ''}"
            f"{' (' + as_typed(detail) + ')' if detail else ''}")
    return line[:300]


def audit_page(lines: list[str], ids: list[int], more: bool) -> str:
    """Whole entry lines, newest first, as many as fit one message; then, when older entries
    exist (`more`, or lines left out), the command that shows them."""
    shown = lines[:max(1, fitting(lines, MESSAGE_LIMIT - AUDIT_FOOTER_CHARS, "\n"))]
    if not more and len(shown) == len(lines):
        return "\n".join(shown)
    return "\n".join(shown) + f"\nOlder entries: `/disco-admin audit before:{ids[len(shown) - 1]}`"
