"""Queue position and ETA for queued jobs.

Position: the claim order replayed. The claim serves guilds round-robin (least recently
served first, never-served guilds before all others, ties by how long they have waited), then
users inside the guild the same way, then each user's jobs by priority and arrival. With no new
arrivals and one job running at a time that order is a plain round-robin over the current
order, which `service_order` reproduces exactly. New work can still move a job back: a guild
or user that joins the queue later enters the rotation ahead of it — that is the fairness.
Per-user running caps are ignored here (with one engine they never change the order).

ETA: every job's remaining steps × the median measured seconds per step for its
(model set, size bucket) over the last `SAMPLES` finished jobs; with no sample for that size,
the nearest measured size of the same model set scaled by pixels; with none at all, a default
per megapixel. Running jobs use their own live figure. Work drains as fast as there are live
workers (storage/workers.py) that can run it: a job that N live workers fit adds 1/N of its
duration to the wait of the jobs after it (none when no live worker fits it: it will not run
before them), and the running jobs' remaining work is shared by all live workers. With no
worker registered (an older engine) the jobs running at once count. Each estimate also says
how many live workers can run the job: 0 means none is up that can (nothing live, or none with
its model set or memory), so its ETA is no promise.
"""
from __future__ import annotations

import statistics
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .job_types import JobKind
from .workers import count_fitting, live_workers

SAMPLES = 51
DEFAULT_SECONDS_PER_MEGAPIXEL_STEP = 1.5  # a mid-range GPU on DD's default models
_BUCKET_PIXELS = 256 * 256

_JOB_COLUMNS = ("id, seq, guild_id, user_id, kind, priority, model_set, width, height, steps, frames, "
                "progress_step, progress_total, progress_frame, seconds_per_step, memory_gb")


@dataclass(frozen=True)
class QueueEstimate:
    job_id: str
    position: int  # 1 = the next job to start
    starts_in: float  # seconds until it is expected to start
    finishes_in: float  # seconds until it is expected to finish
    workers: int | None = None  # live workers that can run it (None: unknown, no fleet is known)


def size_bucket(width: int, height: int) -> int:
    """Sizes within about 64k pixels of each other share timing samples."""
    return max(1, round(width * height / _BUCKET_PIXELS))


def remaining_steps(job: Any) -> int:
    """Steps left over all frames, from the job's last reported progress. An animation's
    `steps` is the average a frame costs (its frame 0 usually costs more, turbo frames
    nothing), so its frames after the current one are counted at that average."""
    if job["progress_frame"] >= job["frames"]:
        return 0
    current = job["progress_total"] or job["steps"]
    per_later = job["steps"] if job["kind"] == JobKind.ANIMATION else current
    later = max(0, job["frames"] - job["progress_frame"] - 1)
    return max(0, current - job["progress_step"]) + later * per_later


def service_order(jobs: Iterable[Any], guild_order: Sequence[str],
                  user_order: dict[str, Sequence[str]]) -> list[Any]:
    """The order in which the claim would serve `jobs` if nothing new arrived.

    `guild_order` lists guilds by (turn, waiting_since); `user_order[guild]` the guild's users
    likewise. Inside a user: priority (high first), then arrival (seq).
    """
    by_user: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for job in jobs:
        by_user[(job["guild_id"], job["user_id"])].append(job)
    for queue in by_user.values():
        queue.sort(key=lambda j: (-j["priority"], j["seq"]))
    guild_sequences = []
    for guild in guild_order:
        users = [deque(by_user[(guild, u)]) for u in user_order.get(guild, ()) if by_user[(guild, u)]]
        guild_sequences.append(deque(_round_robin(users)))
    return _round_robin([s for s in guild_sequences if s])


def _round_robin(queues: list[deque[Any]]) -> list[Any]:
    order = []
    while queues:
        for queue in queues:
            order.append(queue.popleft())
        queues = [q for q in queues if q]
    return order


async def _medians(conn: Any, keys: set[tuple[str, int]]) -> dict[tuple[str, int], float]:
    """Median seconds per step of the last SAMPLES finished jobs, per (model set, bucket)."""
    found: dict[tuple[str, int], float] = {}
    for model_set, bucket in keys:
        rows = await conn.execute_fetchall(
            "SELECT seconds_per_step FROM step_timings WHERE model_set = ? AND size_bucket = ? "
            "ORDER BY id DESC LIMIT ?", (model_set, bucket, SAMPLES))
        if rows:
            found[(model_set, bucket)] = statistics.median(r[0] for r in rows)
    return found


async def _fallback(conn: Any, model_set: str, bucket: int,
                    default_per_megapixel: float) -> float:
    rows = await conn.execute_fetchall(
        "SELECT size_bucket FROM step_timings WHERE model_set = ? GROUP BY size_bucket "
        "ORDER BY ABS(size_bucket - ?) LIMIT 1", (model_set, bucket))
    if rows:
        nearest = rows[0][0]
        measured = (await _medians(conn, {(model_set, nearest)}))[(model_set, nearest)]
        return measured * bucket / nearest
    return default_per_megapixel * bucket * _BUCKET_PIXELS / 1e6


async def estimate_queue(conn: Any, default_per_megapixel: float | None = None,
                         now: float | None = None) -> dict[str, QueueEstimate]:
    """Position and ETA of every queued job, read on `conn` (one snapshot); `now`: the
    database's clock, to tell live workers (None: count the running jobs instead)."""
    default = default_per_megapixel or DEFAULT_SECONDS_PER_MEGAPIXEL_STEP
    queued = await conn.execute_fetchall(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'queued'")
    if not queued:
        return {}
    running = await conn.execute_fetchall(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE state = 'running'")
    guild_order = [r[0] for r in await conn.execute_fetchall(
        "SELECT guild_id FROM queue_guilds WHERE queued > 0 ORDER BY turn, waiting_since")]
    user_order: dict[str, list[str]] = defaultdict(list)
    for guild_id, user_id in await conn.execute_fetchall(
            "SELECT guild_id, user_id FROM queue_users WHERE queued > 0 "
            "ORDER BY guild_id, turn, waiting_since"):
        user_order[guild_id].append(user_id)

    keys = {(j["model_set"], size_bucket(j["width"], j["height"])) for j in [*queued, *running]}
    per_step = await _medians(conn, keys)
    for key in keys - per_step.keys():
        per_step[key] = await _fallback(conn, key[0], key[1], default)

    def duration(job: Any, live: bool) -> float:
        rate = job["seconds_per_step"] if live and job["seconds_per_step"] else \
            per_step[(job["model_set"], size_bucket(job["width"], job["height"]))]
        return remaining_steps(job) * rate

    fleet = await live_workers(conn, now) if now is not None else []

    def able(job: Any) -> int | None:  # live workers that can run it; None: an unregistered engine runs
        if fleet:
            return count_fitting(fleet, job)
        return None if running or now is None else 0

    def sharing(job: Any) -> int:  # how many workers drain this job's share of the queue
        return count_fitting(fleet, job) if fleet else max(1, len(running))

    clock = sum(duration(j, live=True) for j in running) / max(1, len(fleet) or len(running))
    estimates = {}
    for position, job in enumerate(service_order(queued, guild_order, user_order), start=1):
        own = duration(job, live=False)
        estimates[job["id"]] = QueueEstimate(job["id"], position, clock, clock + own, able(job))
        if workers := sharing(job):  # a job no live worker can run holds up nobody behind it
            clock += own / workers
    return estimates
