"""Usage statistics (storage/stats.py) as text: for `/disco-admin stats` (one server, members
as mentions, cut to one Discord message) and for `disco stats` (every server and the totals,
member ids, nothing cut). Discord-free: the bot and the CLI format the same figures here.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from storage.stats import STILL_OPEN, Report, Stats

MAX_FAILURE_CODES = 8  # the rest are counted in one "n more" entry
STATE_ORDER = ("succeeded", "failed", "dead", "cancelled", STILL_OPEN)


@dataclass(frozen=True)
class Style:
    """How a medium names a member and a moment."""

    member: Callable[[str], str]
    moment: Callable[[float], str]


DISCORD = Style(member=lambda user_id: f"<@{user_id}>", moment=lambda t: f"<t:{int(t)}:f>")
TERMINAL = Style(member=lambda user_id: f"user {user_id}",
                 moment=lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def duration_text(seconds: float | None) -> str:
    """12 s, 4.5 s, 3.2 min, 1.5 h (and "–" for no sample)."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s" if 0 < seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:,.1f} h"


def share_text(part: float, whole: float) -> str:
    """A part of a whole in percent: "38%", "<1%" for a sliver, "–" when there is no whole."""
    if whole <= 0:
        return "–"
    percent = 100 * max(0.0, part) / whole
    return "<1%" if 0 < percent < 0.5 else f"{percent:.0f}%"


def counts_text(counts: dict[str, int], order: tuple[str, ...] = ()) -> str:
    names = [n for n in order if n in counts] + [n for n in counts if n not in order]
    return " · ".join(f"{counts[n]:,} {n}" for n in names)


# A job kind counted ("3 still images", "1 study"): "still" alone reads like "still open".
KIND_WORDS = {"still": ("still image", "still images"), "animation": ("animation", "animations"),
              "study": ("study", "studies")}


def kinds_text(counts: dict[str, int]) -> str:
    return " · ".join(f"{count:,} {KIND_WORDS.get(kind, (kind, kind))[count != 1]}" for kind, count in counts.items())


def failures_text(failures: dict[str, int]) -> str:
    shown = [f"`{code}` ×{count:,}" for code, count in list(failures.items())[:MAX_FAILURE_CODES]]
    rest = len(failures) - MAX_FAILURE_CODES
    return " · ".join(shown) + (f" · {rest} more codes" if rest > 0 else "")


def figure_lines(stats: Stats) -> list[str]:
    """Every figure but the members, one line each."""
    lines = [f"**Jobs:** {stats.jobs:,} — {kinds_text(stats.by_kind)}",
             f"**Outcome:** {counts_text(stats.by_state, STATE_ORDER)}"]
    refunded = f" ({duration_text(stats.refunded_seconds)} refunded)" if stats.refunded_seconds else ""
    lines.append(f"**GPU time charged:** {duration_text(stats.gpu_seconds)}{refunded}")
    if stats.wait.count:
        lines.append(f"**Queue wait:** median {duration_text(stats.wait.median)}, 90th percentile "
                     f"{duration_text(stats.wait.p90)} ({stats.wait.count:,} jobs started)")
    if stats.render.count:
        lines.append(f"**Render time:** median {duration_text(stats.render.median)} per job "
                     f"({stats.render.count:,} succeeded)")
    lines.append(f"**Failures:** {failures_text(stats.failures)}" if stats.failures else "**Failures:** none")
    lines.append(f"**Retried:** {stats.retried:,} job(s) needed more than one attempt")
    if stats.costliest:
        lines.append("**Costliest settings:** " + "; ".join(
            f"{c.kind} {c.width}×{c.height}, {c.steps} steps: {duration_text(c.gpu_seconds)} over "
            f"{c.jobs:,} job(s)" for c in stats.costliest[:3]))
    return lines


def member_lines(stats: Stats, style: Style) -> list[str]:
    return [f"{rank}. {style.member(m.user_id)} — {duration_text(m.gpu_seconds)} "
            f"({share_text(m.gpu_seconds, stats.gpu_seconds)}), {m.jobs:,} job(s)"
            for rank, m in enumerate(stats.top_members, 1)]


def stats_text(stats: Stats, style: Style = DISCORD, limit: int | None = None) -> str:
    """One server's (or the total's) figures; `limit`: at most that many characters, members
    dropped from the bottom (then the figures' last lines) with a note saying what was cut."""
    head = f"**Usage in the last {stats.days} day(s)** (since {style.moment(stats.since)})"
    if stats.empty:
        return f"{head}\nNo jobs were queued and no GPU time was charged in this period."
    figures, members = figure_lines(stats), member_lines(stats, style)
    ranked, lines_at_first = len(members), len(figures)
    text = _joined(head, figures, members, stats.members)
    while limit is not None and len(text) > limit and (members or figures):
        (members or figures).pop()
        cut = (f"(cut to fit one message: {len(members)} of the top {ranked} members"
               + (f", {len(figures)} of {lines_at_first} figures" if len(figures) < lines_at_first else "")
               + " shown)")
        text = _joined(head, figures, members, stats.members, cut)
    return text


def _joined(head: str, figures: list[str], members: list[str], total_members: int, cut: str = "") -> str:
    lines = [head, *figures]
    if members:
        lines += [f"**Most GPU time** (top {len(members)} of {total_members:,} members):", *members]
    return "\n".join(lines + ([cut] if cut else []))


def report_text(report: Report) -> str:
    """`disco stats`: each server, then the totals when there are several."""
    if report.total.empty:
        return _plain(stats_text(report.total, TERMINAL))
    blocks = [f"== Server {s.guild_id} ==\n{stats_text(s, TERMINAL)}" for s in report.servers]
    if len(report.servers) > 1:
        blocks.append(f"== All {len(report.servers)} servers ==\n{stats_text(report.total, TERMINAL)}")
    return _plain("\n\n".join(blocks))


def _plain(text: str) -> str:
    """Without Discord's markdown (bold, code spans): a terminal shows it as it is."""
    return text.replace("**", "").replace("`", "")


def report_json(report: Report) -> dict:
    """One JSON object: the servers and the totals, every figure as storage computed it."""
    return dataclasses.asdict(report)
