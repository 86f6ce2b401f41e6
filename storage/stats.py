"""Usage statistics over a period of days, per server and over all of them: jobs by kind and
final state, GPU time per member, queue wait, render time, failures by error code, retries and
the settings that cost the most GPU time. `/disco-admin stats` and `disco stats` both read them
here and only format them (commands/stats_text.py).

The period is the last `days` days (1 to MAX_DAYS) on the database's clock. Two populations:
- jobs *created* in the period (counts, states, waits, render times, failures, retries);
- GPU time *charged* in the period: the usage ledger's net (charges less refunds recorded in
  it), the figure quotas count, so it agrees with `/disco-admin quota show`.

The SQL is plain filtering and SUM/COUNT, the same on SQLite and PostgreSQL (times are epoch
seconds on both, so there is no date math). Medians and percentiles are computed here from the
rows the period holds: the two databases have no percentile function in common.
"""
from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from .errors import InvalidValue
from .job_types import JobState

if TYPE_CHECKING:
    from .backend import Store

DEFAULT_DAYS = 7
MAX_DAYS = 90
TOP_MEMBERS = 10
TOP_SETTINGS = 5
DAY = 86400.0
STILL_OPEN = "still open"  # queued or running: their final state is not known yet

# Jobs created in the period; `{guild}` is "" or the one-server condition (a constant).
_JOBS = """SELECT guild_id, user_id, kind, state, error_code, attempt, created_at, started_at,
       finished_at, gpu_seconds, width, height, steps
FROM jobs WHERE created_at >= :since AND created_at <= :until{guild}"""

# GPU time charged in the period per member: the ledger's net, and what was refunded.
_CHARGED = """SELECT guild_id, user_id, SUM(gpu_seconds),
       SUM(CASE WHEN kind = 'refund' THEN -gpu_seconds ELSE 0 END)
FROM usage WHERE recorded_at >= :since AND recorded_at <= :until{guild}
GROUP BY guild_id, user_id"""

_ONE_GUILD = " AND guild_id = :guild"

# A job's columns as _JOBS returns them.
(_GUILD, _USER, _KIND, _STATE, _ERROR, _ATTEMPT, _CREATED, _STARTED, _FINISHED, _GPU, _WIDTH, _HEIGHT,
 _STEPS) = range(13)


@dataclass(frozen=True)
class MemberUse:
    user_id: str
    gpu_seconds: float  # net charged in the period
    jobs: int  # jobs they queued in the period


@dataclass(frozen=True)
class SettingsCost:
    """A kind of job at one size and step count, with the GPU time its succeeded jobs took."""

    kind: str
    width: int
    height: int
    steps: int
    jobs: int
    gpu_seconds: float


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of some durations (None: no sample)."""

    count: int
    median: float | None
    p90: float | None


@dataclass(frozen=True)
class Stats:
    """One server's figures (`guild_id`), or every server's together (`guild_id` None)."""

    guild_id: str | None
    since: float
    until: float
    days: int
    jobs: int
    by_kind: dict[str, int]
    by_state: dict[str, int]  # succeeded, failed, dead, cancelled, and STILL_OPEN
    gpu_seconds: float  # net charged in the period
    refunded_seconds: float
    members: int  # members who queued a job or were charged in the period
    top_members: tuple[MemberUse, ...]  # most GPU time first, at most TOP_MEMBERS
    wait: Spread  # created → started, jobs that started (a retried job: to its last start)
    render: Spread  # started → finished, succeeded jobs (their last attempt)
    failures: dict[str, int]  # error code → failed or dead jobs, most first
    retried: int  # jobs that needed more than one attempt
    costliest: tuple[SettingsCost, ...] = field(default=())  # most GPU time first

    @property
    def empty(self) -> bool:
        return self.jobs == 0 and self.gpu_seconds == 0 and self.refunded_seconds == 0


@dataclass(frozen=True)
class Report:
    """Each server with activity in the period (most GPU time first), and all of them together."""

    servers: tuple[Stats, ...]
    total: Stats


def check_days(days: Any) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidValue(f"days must be a whole number from 1 to {MAX_DAYS}, not {days!r}; e.g. "
                           f"{DEFAULT_DAYS} for the last week")
    return days


class UsageStats:
    """Statistics API (`db.stats`)."""

    def __init__(self, db: Store):
        self._db = db

    async def report(self, days: int = DEFAULT_DAYS, guild_id: int | str | None = None) -> Report:
        """The last `days` days, for one server (`guild_id`) or all of them."""
        days = check_days(days)
        one, params = ("", {}) if guild_id is None else (_ONE_GUILD, {"guild": str(guild_id)})
        async with self._db.snapshot() as conn:  # both reads see the same moment
            until = await self._db.clock(conn)
            params.update(since=until - days * DAY, until=until)
            jobs = await conn.execute_fetchall(_JOBS.format(guild=one), params)
            charged = await conn.execute_fetchall(_CHARGED.format(guild=one), params)
        period = (params["since"], until, days)
        jobs_of, charged_of = defaultdict(list), defaultdict(list)  # per server, in one pass each
        for row in jobs:
            jobs_of[row[_GUILD]].append(row)
        for row in charged:
            charged_of[row[0]].append(row)
        servers = [summarize(g, jobs_of[g], charged_of[g], period) for g in set(jobs_of) | set(charged_of)]
        servers.sort(key=lambda s: (-s.gpu_seconds, -s.jobs, s.guild_id))
        total = summarize(str(guild_id) if guild_id is not None else None, jobs, charged, period)
        return Report(tuple(servers), total)

    async def guild(self, guild_id: int | str, days: int = DEFAULT_DAYS) -> Stats:
        """One server's figures (empty when nothing happened there in the period)."""
        return (await self.report(days, guild_id)).total


def summarize(guild_id: str | None, jobs: list[Any], charged: Iterable[Any],
              period: tuple[float, float, int]) -> Stats:
    """The figures of these job rows (_JOBS) and ledger sums (_CHARGED)."""
    since, until, days = period
    per_user: dict[str, float] = defaultdict(float)
    refunded = 0.0
    for row in charged:  # (guild, user): one member in two servers is two rows
        per_user[str(row[1])] += float(row[2] or 0.0)
        refunded += float(row[3] or 0.0)
    jobs_of = Counter(str(row[_USER]) for row in jobs)
    members = set(per_user) | set(jobs_of)
    top = sorted(members, key=lambda u: (-per_user.get(u, 0.0), -jobs_of[u], u))[:TOP_MEMBERS]
    states = Counter(STILL_OPEN if row[_STATE] in (JobState.QUEUED, JobState.RUNNING) else str(row[_STATE])
                     for row in jobs)
    failures = Counter(str(row[_ERROR] or "unknown") for row in jobs
                       if row[_STATE] in (JobState.FAILED, JobState.DEAD))
    return Stats(
        guild_id=guild_id, since=since, until=until, days=days, jobs=len(jobs),
        by_kind=dict(Counter(str(row[_KIND]) for row in jobs).most_common()),
        by_state=dict(states.most_common()),
        gpu_seconds=sum(per_user.values()), refunded_seconds=refunded, members=len(members),
        top_members=tuple(MemberUse(u, per_user.get(u, 0.0), jobs_of[u]) for u in top),
        wait=spread(row[_STARTED] - row[_CREATED] for row in jobs if row[_STARTED] is not None),
        render=spread(row[_FINISHED] - row[_STARTED] for row in jobs
                      if row[_STATE] == JobState.SUCCEEDED and row[_STARTED] is not None
                      and row[_FINISHED] is not None),
        failures=dict(failures.most_common()),
        retried=sum(1 for row in jobs if row[_ATTEMPT] > 1),
        costliest=costliest(jobs))


def costliest(jobs: list[Any]) -> tuple[SettingsCost, ...]:
    """The kind, size and steps whose succeeded jobs took the most GPU time."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in jobs:
        if row[_STATE] == JobState.SUCCEEDED:
            groups[(str(row[_KIND]), row[_WIDTH], row[_HEIGHT], row[_STEPS])].append(float(row[_GPU] or 0.0))
    ranked = sorted(groups.items(), key=lambda item: (-sum(item[1]), item[0]))[:TOP_SETTINGS]
    return tuple(SettingsCost(*key, jobs=len(times), gpu_seconds=sum(times)) for key, times in ranked)


def spread(durations: Iterable[float]) -> Spread:
    values = sorted(max(0.0, float(d)) for d in durations)  # a clock step back is no negative wait
    if not values:
        return Spread(0, None, None)
    return Spread(len(values), statistics.median(values), percentile(values, 90))


def percentile(ordered: list[float], p: float) -> float:
    """The nearest-rank percentile of sorted values: the smallest value with at least p% of
    them at or below it."""
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
