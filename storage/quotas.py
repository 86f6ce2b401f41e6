"""GPU-second quotas: a usage ledger, daily and monthly limits, charges and refunds.

- Work is charged when it completes (`Leases.complete` calls `charge_in` in its own transaction);
  a failed, cancelled or dead job costs nothing. `refund` (an admin's, or the bot's when a result
  could never be delivered) writes a negative row that cancels a job's net charge, dated to the
  charge's day and month so it corrects the window that was charged.
- Partial charges (`Leases.charge_partial`, a study's finished cells) are 'charge' rows whose
  note starts with `partial:`. A failure's automatic refund leaves them alone by design: the
  cells were rendered, kept on disk and resumed from, so their GPU time was really spent and is
  billed even when the study later fails or is cancelled. An admin's `refund` still gives back
  everything.
- Windows are UTC: a day resets at 00:00 UTC, a month on the 1st at 00:00 UTC.
- Limits have four scopes. For a member the effective limit of a window is:
  their own `user` limit if one is set (it overrides everything); otherwise the most generous
  `role` limit among their roles that have one; otherwise the guild's `member` default;
  otherwise unlimited. A `guild` limit caps the whole server's total on top of that.
- Queued jobs do not reserve quota (their cost is unknown until they run): the check refuses
  new work once a budget is used up, so a member can overshoot by the jobs already queued.
  Long jobs bill each finished cell or frame (`charge_partial`), which answers whether the
  member still has time left, so a study or animation stops within one cell or frame of the
  budget instead of running on for hours (engine/jobs/units.py). Jobs remember the member's
  roles as queued, for the role limits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from .audit import write_audit
from .errors import InvalidValue, NotFound, QuotaExceeded

if TYPE_CHECKING:
    from .backend import Store

WINDOWS = ("day", "month")
SCOPES = ("user", "role", "member", "guild")


def window_keys(now: float) -> dict[str, str]:
    moment = datetime.fromtimestamp(now, timezone.utc)
    return {"day": moment.strftime("%Y-%m-%d"), "month": moment.strftime("%Y-%m")}


def resets_at(window: str, now: float) -> float:
    """The UTC epoch second when `window` next rolls over."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "day":
        return start.timestamp() + 86_400
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return start.replace(year=year, month=month, day=1).timestamp()


@dataclass(frozen=True)
class QuotaLimit:
    guild_id: str
    scope: str
    subject_id: str | None  # the user or role id; None for 'member' and 'guild'
    window: str
    seconds: float


@dataclass(frozen=True)
class WindowUsage:
    """One window's budget for one member: None as a limit means unlimited."""

    window: str
    user_used: float
    user_limit: float | None
    guild_used: float
    guild_limit: float | None
    resets_at: float

    @property
    def user_remaining(self) -> float | None:
        return None if self.user_limit is None else max(0.0, self.user_limit - self.user_used)


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    guild_id: str
    user_id: str
    job_id: str
    kind: str
    gpu_seconds: float
    day: str
    month: str
    recorded_at: float
    note: str | None


def _effective_user_limit(rows: list[Any], window: str, user_id: str,
                          role_ids: set[str]) -> float | None:
    own = [r["seconds"] for r in rows if r["window"] == window and r["scope"] == "user"
           and r["subject_id"] == user_id]
    if own:
        return own[0]
    roles = [r["seconds"] for r in rows if r["window"] == window and r["scope"] == "role"
             and r["subject_id"] in role_ids]
    if roles:
        return max(roles)
    member = [r["seconds"] for r in rows if r["window"] == window and r["scope"] == "member"]
    return member[0] if member else None


async def _sum(conn: Any, sql: str, params: tuple[str, ...]) -> float:
    return float((await conn.execute_fetchall(sql, params))[0][0] or 0.0)


async def usage_in(conn: Any, guild_id: str, user_id: str,
                   role_ids: Iterable[str], now: float) -> dict[str, WindowUsage]:
    """Each window's usage and limits for this member, read on `conn`."""
    rows = list(await conn.execute_fetchall(
        'SELECT scope, subject_id, "window", seconds FROM quota_limits WHERE guild_id = ? '
        "AND (scope != 'user' OR subject_id = ?)", (guild_id, user_id)))
    roles = {str(r) for r in role_ids}
    keys = window_keys(now)
    result = {}
    for window in WINDOWS:  # the column names 'day' / 'month' come from WINDOWS, not from input
        guild_limit = [r["seconds"] for r in rows if r["window"] == window and r["scope"] == "guild"]
        result[window] = WindowUsage(
            window=window,
            user_used=await _sum(conn, f"SELECT SUM(gpu_seconds) FROM usage WHERE guild_id = ? "
                                       f"AND user_id = ? AND {window} = ?",
                                 (guild_id, user_id, keys[window])),
            user_limit=_effective_user_limit(rows, window, user_id, roles),
            guild_used=await _sum(conn, f"SELECT SUM(gpu_seconds) FROM usage WHERE guild_id = ? "
                                        f"AND {window} = ?", (guild_id, keys[window])),
            guild_limit=guild_limit[0] if guild_limit else None,
            resets_at=resets_at(window, now))
    return result


async def check_in(conn: Any, guild_id: str, user_id: str,
                   role_ids: Iterable[str], now: float) -> dict[str, WindowUsage]:
    """Like `usage_in`, but raise `QuotaExceeded` when a budget is used up (reporting the one
    that resets last: waiting for an earlier reset would not help)."""
    windows = await usage_in(conn, guild_id, user_id, role_ids, now)
    exceeded = []
    for use in windows.values():
        if use.user_limit is not None and use.user_used >= use.user_limit:
            exceeded.append(QuotaExceeded("user", use.window, use.user_limit, use.user_used,
                                          use.resets_at))
        if use.guild_limit is not None and use.guild_used >= use.guild_limit:
            exceeded.append(QuotaExceeded("guild", use.window, use.guild_limit, use.guild_used,
                                          use.resets_at))
    if exceeded:
        raise max(exceeded, key=lambda e: e.resets_at)
    return windows


PARTIAL_NOTE = "partial:"


async def charge_in(conn: Any, guild_id: str, user_id: str, job_id: str,
                    seconds: float, now: float, note: str | None = None) -> None:
    keys = window_keys(now)
    await conn.execute(
        "INSERT INTO usage (guild_id, user_id, job_id, kind, gpu_seconds, day, month, recorded_at, "
        "note) VALUES (?, ?, ?, 'charge', ?, ?, ?, ?, ?)",
        (guild_id, user_id, job_id, max(0.0, float(seconds)), keys["day"], keys["month"], now,
         note[:200] if note else None))


async def refund_in(conn: Any, job_id: str, now: float, note: str, *,
                    keep_partial: bool = False) -> float:
    """Cancel the job's net charge (0 when nothing is charged); returns the seconds refunded.
    `keep_partial`: leave partial charges (finished study cells) charged — see the module doc."""
    # The LIKE pattern is a constant, never user text.
    partial = (f" AND NOT (kind = 'charge' AND COALESCE(note, '') LIKE '{PARTIAL_NOTE}%')"
               if keep_partial else "")
    rows = await conn.execute_fetchall(
        f"SELECT guild_id, user_id, day, month, (SELECT SUM(gpu_seconds) FROM usage "
        f"WHERE job_id = ?{partial}) "
        f"FROM usage WHERE job_id = ? AND kind = 'charge' ORDER BY id DESC LIMIT 1", (job_id, job_id))
    if not rows or (rows[0][4] or 0.0) <= 0.0:
        return 0.0
    guild_id, user_id, day, month, net = rows[0]
    await conn.execute(
        "INSERT INTO usage (guild_id, user_id, job_id, kind, gpu_seconds, day, month, recorded_at, "
        "note) VALUES (?, ?, ?, 'refund', ?, ?, ?, ?, ?)",
        (guild_id, user_id, job_id, -net, day, month, now, note[:200]))
    return float(net)


class Quotas:
    """Quota API (`db.quotas`)."""

    def __init__(self, db: Store):
        self._db = db

    async def set_limit(self, guild_id: int | str, scope: str, window: str, seconds: float | None,
                        *, subject_id: int | str | None = None,
                        actor_id: int | str | None = None) -> None:
        """Set (or with seconds=None remove) a GPU-seconds limit.

        scope 'user' and 'role' need `subject_id` (the user or role id); 'member' (every member
        without a user or role limit) and 'guild' (the server's total) take none.
        """
        if scope not in SCOPES:
            raise InvalidValue(f"quota scope {scope!r} is unknown; use one of {', '.join(SCOPES)}")
        if window not in WINDOWS:
            raise InvalidValue(f"quota window {window!r} is unknown; use 'day' or 'month'")
        if (subject_id is None) != (scope in ("member", "guild")):
            raise InvalidValue(f"a {scope} quota {'needs' if scope in ('user', 'role') else 'takes no'} "
                               f"subject id (the user or role it applies to)")
        if seconds is not None and not (isinstance(seconds, (int, float)) and 0 <= seconds < 1e12):
            raise InvalidValue(f"a quota is a number of GPU-seconds ≥ 0 (or None to remove it), "
                               f"not {seconds!r}")
        gid, subject, now = str(guild_id), "" if subject_id is None else str(subject_id), await self._db.clock()
        async with self._db.transaction() as conn:
            if seconds is None:
                await conn.execute("DELETE FROM quota_limits WHERE guild_id = ? AND scope = ? AND "
                                   'subject_id = ? AND "window" = ?', (gid, scope, subject, window))
            else:
                await conn.execute(
                    'INSERT INTO quota_limits (guild_id, scope, subject_id, "window", seconds) '
                    'VALUES (?, ?, ?, ?, ?) ON CONFLICT (guild_id, scope, subject_id, "window") '
                    "DO UPDATE SET seconds = excluded.seconds",
                    (gid, scope, subject, window, float(seconds)))
            await write_audit(conn, now, gid, actor_id, "quota.set", f"{scope}:{subject}",
                              {"window": window, "seconds": seconds})

    async def limits(self, guild_id: int | str) -> list[QuotaLimit]:
        rows = await self._db.execute(
            'SELECT * FROM quota_limits WHERE guild_id = ? ORDER BY scope, subject_id, "window"',
            (str(guild_id),))
        return [QuotaLimit(r["guild_id"], r["scope"], r["subject_id"] or None, r["window"],
                           r["seconds"]) for r in rows]

    async def status(self, guild_id: int | str, user_id: int | str,
                     role_ids: Iterable[int | str] = ()) -> dict[str, WindowUsage]:
        """Used and remaining GPU-seconds per window for this member (never raises on a limit)."""
        async with self._db.snapshot() as conn:
            return await usage_in(conn, str(guild_id), str(user_id), [str(r) for r in role_ids],
                                  await self._db.clock(conn))

    async def check(self, guild_id: int | str, user_id: int | str,
                    role_ids: Iterable[int | str] = ()) -> dict[str, WindowUsage]:
        """`status`, raising `QuotaExceeded` (window, limit, reset time) when a budget is spent."""
        async with self._db.snapshot() as conn:
            return await check_in(conn, str(guild_id), str(user_id), [str(r) for r in role_ids],
                                  await self._db.clock(conn))

    async def refund(self, job_id: str, *, reason: str,
                     actor_id: int | str | None = None) -> float:
        """Give back a job's net charge; returns the seconds refunded (0 if none was charged)."""
        now = await self._db.clock()
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall("SELECT guild_id FROM jobs WHERE id = ?", (job_id,))
            if not rows:
                raise NotFound(f"no job {job_id!r}; check the id (your jobs: /queue)")
            seconds = await refund_in(conn, job_id, now, reason)
            if seconds:
                await write_audit(conn, now, rows[0][0], actor_id, "quota.refund", job_id,
                                  {"seconds": seconds, "reason": reason})
            return seconds

    async def ledger(self, guild_id: int | str, *, user_id: int | str | None = None,
                     limit: int = 50) -> list[LedgerEntry]:
        """Newest ledger rows for the guild (or one member)."""
        limit = max(1, min(int(limit), 500))
        if user_id is None:
            rows = await self._db.execute("SELECT * FROM usage WHERE guild_id = ? "
                                          "ORDER BY id DESC LIMIT ?", (str(guild_id), limit))
        else:
            rows = await self._db.execute("SELECT * FROM usage WHERE guild_id = ? AND user_id = ? "
                                          "ORDER BY id DESC LIMIT ?",
                                          (str(guild_id), str(user_id), limit))
        return [LedgerEntry(**{k: r[k] for k in r.keys()}) for r in rows]
