"""The job model and the bot's side of the queue: enqueue (with every guild limit and quota
checked in the same transaction), look-ups, cancel, retry, delivery bookkeeping, and queue
position + ETA. The engine's side (claim, heartbeat, progress, complete, fail) is `leases.py`.

States: queued → running → succeeded | failed | cancelled | dead, plus `cancel_requested`.
`attempt` is the fencing token: it grows by one on every claim.
Delivery (bot side, after a job ends): pending → sending (a nonce is fixed, so a resend after a
crash is deduplicated by Discord) → posted (message ids stored) | abandoned.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .audit import write_audit
from .errors import (
    DuplicateJob,
    InvalidState,
    InvalidValue,
    JobTooLarge,
    NotFound,
    QueueFull,
)
from .eta import QueueEstimate, estimate_queue
from .guilds import GuildSettings, Snowflake, load_settings, sid
from .job_types import RETRYABLE, TERMINAL, JobKind, JobState
from .quotas import check_in, refund_in

log = logging.getLogger("disco.storage.jobs")
_ACTION = re.compile(r"[a-z]{1,24}")

if TYPE_CHECKING:
    from .backend import Store


DEFAULT_MAX_ATTEMPTS = 3
# The engine's notes on a result (`Job.notes`): a few short sentences a user reads under it.
MAX_RESULT_NOTES = 8
MAX_NOTE_CHARS = 300
# The user's waiting or running child of the same job by the same action (a button clicked
# twice) that would paint the same picture as a new request. Jobs without a fixed seed each
# draw their own; a job typed again is the user's choice.
_ACTIVE_TWIN = ("SELECT id FROM jobs WHERE guild_id = ? AND user_id = ? AND parent_job_id = ? "
                "AND COALESCE(parent_action, '') = COALESCE(?, '') AND seed = ? "
                "AND state IN ('queued', 'running') AND spec_json = ? LIMIT 1")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_job_id(now: float | None = None) -> str:
    """A 26-character, time-sortable id (48 bits of milliseconds + 80 random bits, Crockford
    base32, the ULID layout): sortable by creation, unguessable, easy to read aloud."""
    value = (int((time.time() if now is None else now) * 1000) << 80) | int.from_bytes(
        os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def delivery_nonce(job: Job) -> str:
    """The nonce of a job's result (21 characters: the poster appends "-n", "-dm" or "-<n>" and
    Discord takes ≤ 25): the same for the same finish of the same attempt, on any install that
    holds it (a restored backup included); a retried job finishes anew and gets another."""
    digest = hashlib.sha256(f"{job.id}:{job.attempt}:{job.finished_at!r}".encode()).hexdigest()
    return "d" + digest[:20]


def normalize_job_id(job_id: str) -> str:
    """Ids are case-insensitive for people typing them; I/L read as 1 and O as 0."""
    return job_id.strip().upper().translate(str.maketrans("ILO", "110"))


@dataclass(frozen=True)
class JobRequest:
    """What the commands layer submits. `steps` are the sampling steps of one image (or frame);
    `cuts` counts CLIP cuts per step over all cut batches; ids may be ints or strings."""

    guild_id: Snowflake
    channel_id: Snowflake
    user_id: Snowflake
    kind: JobKind
    spec_json: str
    spec_version: int
    model_set: str
    width: int
    height: int
    steps: int
    frames: int = 1
    cuts: int = 0
    seed: int | None = None
    priority: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    parent_job_id: str | None = None
    parent_action: str | None = None  # how it came from the parent: "remix", "vary", …
    parent_image: int | None = None   # which image of the parent's result (0 = the first)
    memory_gb: float = 0.0  # GPU memory it needs at the least (0: unknown); workers with less skip it
    models: str = ""  # the models it loads (diffusion + CLIP): a worker holding them is preferred
    # The channel whose allowed-channels rule applies (a thread's parent); None: channel_id. Not stored.
    rules_channel_id: Snowflake | None = None

    def validate(self) -> None:
        if self.kind not in set(JobKind):
            raise InvalidValue(f"job kind {self.kind!r} is unknown; use one of {', '.join(JobKind)}")
        for name in ("width", "height", "steps", "frames", "max_attempts", "spec_version"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidValue(f"{name} must be a whole number ≥ 1, not {value!r}")
        if not isinstance(self.cuts, int) or self.cuts < 0:
            raise InvalidValue(f"cuts must be a whole number ≥ 0, not {self.cuts!r}")
        if not isinstance(self.spec_json, str) or len(self.spec_json) > 1_000_000:
            raise InvalidValue("spec_json must be a JSON string of at most 1,000,000 characters")
        if not self.model_set or len(self.model_set) > 64:
            raise InvalidValue("model_set must be a model set name of 1 to 64 characters")
        if (self.parent_action is not None or self.parent_image is not None) and not self.parent_job_id:
            raise InvalidValue("parent_action and parent_image describe a parent job; give parent_job_id")
        if self.parent_action is not None and not _ACTION.fullmatch(self.parent_action):
            raise InvalidValue(f"parent_action must be 1-24 lowercase letters, not {self.parent_action!r}")
        if self.parent_image is not None and (isinstance(self.parent_image, bool)
                                              or not isinstance(self.parent_image, int)
                                              or not 0 <= self.parent_image < 10_000):
            raise InvalidValue(f"parent_image must be an image index 0-9999, not {self.parent_image!r}")
        if not isinstance(self.memory_gb, (int, float)) or not 0 <= self.memory_gb <= 10_000:
            raise InvalidValue(f"memory_gb must be a number of GB from 0 to 10000, not {self.memory_gb!r}")
        if not isinstance(self.models, str) or len(self.models) > 1000:
            raise InvalidValue("models must be a text of at most 1000 characters")


@dataclass(frozen=True)
class Job:
    id: str
    seq: int
    guild_id: str
    channel_id: str
    user_id: str
    kind: JobKind
    spec_json: str
    spec_version: int
    seed: int | None
    priority: int
    model_set: str
    width: int
    height: int
    steps: int
    frames: int
    cuts: int
    state: JobState
    cancel_requested: bool
    attempt: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: float | None
    heartbeat_at: float | None
    lease_expiries: int
    progress_step: int
    progress_total: int
    progress_frame: int
    progress_frames: int
    seconds_per_step: float | None
    preview_path: str | None
    checkpoint_path: str | None
    artifacts: tuple[str, ...]
    gpu_seconds: float
    error_code: str | None
    error_message: str | None
    delivery_state: str
    delivery_nonce: str | None
    delivery_updated_at: float | None
    progress_message_id: str | None
    result_message_ids: tuple[str, ...]
    parent_job_id: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    updated_at: float
    role_ids: tuple[str, ...] = ()  # the requester's roles when it was queued (role quotas)
    parent_action: str | None = None  # see JobRequest
    parent_image: int | None = None
    memory_gb: float = 0.0  # GPU memory it needs at the least (0: unknown)
    models: str = ""  # the models it loads (the claim's affinity key)
    result_channel_id: str | None = None  # where the result went, when not to `channel_id` (a DM)
    notes: tuple[str, ...] = ()  # the engine's notes on the result (leases.complete)
    damaged: tuple[str, ...] = ()   # columns that could not be read (their value here is empty)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    @classmethod
    def from_row(cls, row: Any) -> Job:
        data = {key: row[key] for key in row.keys()}
        damaged: list[str] = []
        data["artifacts"] = _string_list(data.pop("artifacts_json"), "artifacts_json", damaged)
        data["role_ids"] = _string_list(data.pop("role_ids_json", "[]"), "role_ids_json", damaged)
        data["notes"] = _string_list(data.pop("result_notes", "[]"), "result_notes", damaged)
        data["result_message_ids"] = _string_list(data["result_message_ids"], "result_message_ids",
                                                  damaged)
        if damaged:  # one damaged row must not make every listing fail
            log.warning("job %s: column %s is not a JSON list of strings; read as empty",
                        data.get("id"), ", ".join(damaged))
        data["damaged"] = tuple(damaged)
        data["cancel_requested"] = bool(data["cancel_requested"])
        data["kind"], data["state"] = JobKind(data["kind"]), JobState(data["state"])
        return cls(**data)


def check_notes(notes: Sequence[str]) -> list[str]:
    """The engine's notes on a result, as stored: at most MAX_RESULT_NOTES texts of at most
    MAX_NOTE_CHARS characters each (InvalidValue otherwise)."""
    notes = list(notes)
    if len(notes) > MAX_RESULT_NOTES or not all(
            isinstance(note, str) and 0 < len(note) <= MAX_NOTE_CHARS for note in notes):
        raise InvalidValue(f"a result has at most {MAX_RESULT_NOTES} notes, each a text of 1 to "
                           f"{MAX_NOTE_CHARS} characters")
    return notes


def _string_list(text: Any, column: str, damaged: list[str]) -> tuple[str, ...]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        value = None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        damaged.append(column)
        return ()
    return tuple(value)


async def fetch_job(conn: Any, job_id: str) -> Job:
    rows = await conn.execute_fetchall("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if not rows:
        raise NotFound(f"no job {job_id!r}; check the id (your jobs: /queue; any job: /job show)")
    return Job.from_row(rows[0])


def _fit_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """The largest size with the same aspect, multiples of 64, within max_pixels."""
    scale = math.sqrt(max_pixels / (width * height))
    w, h = max(64, int(width * scale) // 64 * 64), max(64, int(height * scale) // 64 * 64)
    return w, h


def check_limits(settings: GuildSettings, request: JobRequest, user_waiting: int,
                 guild_waiting: int) -> None:
    """Raise the refusal for the first guild limit this request breaks."""
    limits = settings.limits
    if request.steps > limits.max_steps:
        raise JobTooLarge("max_steps", limits.max_steps, request.steps,
                          f"{request.steps} steps is more than this server allows",
                          f"use steps={limits.max_steps} or fewer")
    pixels = request.width * request.height
    if pixels > limits.max_pixels:
        w, h = _fit_size(request.width, request.height, limits.max_pixels)
        raise JobTooLarge("max_pixels", limits.max_pixels, pixels,
                          f"{request.width}×{request.height} is {pixels:,} pixels, more than this "
                          f"server allows", f"try width_height=[{w}, {h}]")
    if request.cuts > limits.max_cuts:
        raise JobTooLarge("max_cuts", limits.max_cuts, request.cuts,
                          f"{request.cuts} CLIP cuts per step is more than this server allows",
                          "lower cutn_batches or the cut_overview/cut_innercut schedules")
    # A study's `frames` are its cells, bounded by the bot's own cap on cells, not by max_frames.
    if request.kind != JobKind.STUDY and request.frames > limits.max_frames:
        raise JobTooLarge("max_frames", limits.max_frames, request.frames,
                          f"{request.frames} frames is more than this server allows",
                          f"use max_frames={limits.max_frames} or fewer")
    if user_waiting >= limits.max_queued_per_user:
        raise QueueFull("max_queued_per_user", limits.max_queued_per_user, user_waiting,
                        f"you already have {user_waiting} job(s) waiting",
                        "wait for one to start, or cancel one with /cancel")
    if guild_waiting >= limits.max_queued_per_guild:
        raise QueueFull("max_queued_per_guild", limits.max_queued_per_guild, guild_waiting,
                        f"this server already has {guild_waiting} jobs waiting",
                        "try again when the queue is shorter")


class Jobs:
    """The bot's job API (`db.jobs`)."""

    def __init__(self, db: Store):
        self._db = db

    async def enqueue(self, request: JobRequest, *, role_ids: Iterable[Snowflake] = ()) -> Job:
        """Check pause, channel, size and queue limits and the quota, then insert; all in one
        transaction, so two racing submissions cannot both slip under a cap. The row is
        committed when this returns: only then tell the user it is queued."""
        request.validate()
        gid, cid, uid = sid(request.guild_id), sid(request.channel_id), sid(request.user_id)
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            settings = await load_settings(conn, gid)
            settings.check_intake(sid(request.rules_channel_id or cid))
            counts = await conn.execute_fetchall(
                "SELECT (SELECT queued FROM queue_users WHERE guild_id = ? AND user_id = ?), "
                "(SELECT queued FROM queue_guilds WHERE guild_id = ?)", (gid, uid, gid))
            check_limits(settings, request, counts[0][0] or 0, counts[0][1] or 0)
            if request.seed is not None and request.parent_job_id is not None:
                twin = await conn.execute_fetchall(_ACTIVE_TWIN, (
                    gid, uid, request.parent_job_id, request.parent_action, request.seed, request.spec_json))
                if twin:
                    raise DuplicateJob(twin[0][0])
            roles = [str(r) for r in role_ids]
            await check_in(conn, gid, uid, roles, now)
            rows = await conn.execute_fetchall(
                "INSERT INTO jobs (id, guild_id, channel_id, user_id, kind, spec_json, spec_version, "
                "seed, priority, model_set, width, height, steps, frames, cuts, max_attempts, "
                "parent_job_id, parent_action, parent_image, role_ids_json, memory_gb, models, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING *",
                (new_job_id(now), gid, cid, uid, request.kind, request.spec_json,
                 request.spec_version, request.seed, request.priority, request.model_set,
                 request.width, request.height, request.steps, request.frames, request.cuts,
                 request.max_attempts, request.parent_job_id, request.parent_action, request.parent_image,
                 json.dumps(roles), float(request.memory_gb), request.models, now, now))
            job = Job.from_row(rows[0])
            await self._db.blobs.attach_inputs(conn, job.id, request.spec_json, now)
            return job

    async def get(self, job_id: str) -> Job:
        rows = await self._db.execute("SELECT * FROM jobs WHERE id = ?", (normalize_job_id(job_id),))
        if not rows:
            raise NotFound(f"no job {job_id!r}; check the id (your jobs: /queue; any job: /job show)")
        return Job.from_row(rows[0])

    async def list(self, *, guild_id: Snowflake | None = None, user_id: Snowflake | None = None,
                   states: Iterable[str] | None = None, limit: int = 25, offset: int = 0) -> list[Job]:
        """Newest first, filtered by guild, user (needs guild) and states; `offset` newer jobs
        are skipped (a page of `/history`)."""
        clauses, params = [], []
        if guild_id is not None:
            clauses.append("guild_id = ?")
            params.append(sid(guild_id))
        if user_id is not None:
            clauses.append("user_id = ?")
            params.append(sid(user_id))
        wanted = list(states or ())
        bad = [s for s in wanted if s not in set(JobState)]
        if bad:
            raise InvalidValue(f"job state {bad[0]!r} is unknown; use {', '.join(JobState)}")
        if wanted:
            clauses.append(f"state IN ({', '.join('?' for _ in wanted)})")
            params.extend(wanted)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        params += [max(1, min(int(limit), 500)), max(0, int(offset))]
        rows = await self._db.execute(f"SELECT * FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?", params)
        return [Job.from_row(r) for r in rows]

    async def active_counts(self, guild_id: Snowflake) -> dict[str, int]:
        """How many of the guild's jobs are queued and running (all of them, not a page)."""
        rows = await self._db.execute(
            "SELECT state, COUNT(*) FROM jobs WHERE guild_id = ? AND state IN ('queued', 'running') "
            "GROUP BY state", (sid(guild_id),))
        return {JobState.QUEUED: 0, JobState.RUNNING: 0, **{row[0]: int(row[1]) for row in rows}}

    async def cancel(self, job_id: str) -> Job:
        """A queued job is cancelled at once and never starts; a running one gets
        cancel_requested (the engine sees it on its next heartbeat/progress and stops within one
        step); a finished one is returned unchanged. Check the returned job's state."""
        job_id = normalize_job_id(job_id)
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            job = await fetch_job(conn, job_id)
            if job.state == JobState.QUEUED:
                await conn.execute(
                    "UPDATE jobs SET state = 'cancelled', cancel_requested = TRUE, finished_at = ?, "
                    "updated_at = ?, error_code = 'cancelled', error_message = 'cancelled before "
                    "it started' WHERE id = ?", (now, now, job_id))
            elif job.state == JobState.RUNNING and not job.cancel_requested:
                await conn.execute("UPDATE jobs SET cancel_requested = TRUE, updated_at = ? "
                                   "WHERE id = ?", (now, job_id))
            return await fetch_job(conn, job_id)

    async def retry(self, job_id: str, *, extra_attempts: int = 1) -> Job:
        """Put a failed, dead or cancelled job back in the queue (an admin's choice) with
        `extra_attempts` more attempts; the attempt counter keeps growing, so fencing holds."""
        if not 1 <= extra_attempts <= 10:
            raise InvalidValue("extra_attempts must be between 1 and 10")
        job_id = normalize_job_id(job_id)
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            job = await fetch_job(conn, job_id)
            if job.state not in RETRYABLE:
                raise InvalidState(f"job {job_id} is {job.state}; only failed, dead or cancelled "
                                   f"jobs can be retried")
            await conn.execute(
                "UPDATE jobs SET state = 'queued', cancel_requested = FALSE, max_attempts = ?, "
                "error_code = NULL, error_message = NULL, finished_at = NULL, "
                "delivery_state = 'pending', delivery_nonce = NULL, result_message_ids = '[]', "
                "result_channel_id = NULL, updated_at = ? WHERE id = ?", (job.attempt + extra_attempts, now, job_id))
            return await fetch_job(conn, job_id)

    # ---- delivery (the bot's poster) --------------------------------------------------------

    async def undelivered(self, *, limit: int = 50) -> list[Job]:
        """Finished jobs whose result (or failure notice) is not posted yet, oldest first."""
        rows = await self._db.execute(
            "SELECT * FROM jobs WHERE delivery_state IN ('pending', 'sending') AND finished_at "
            "IS NOT NULL ORDER BY finished_at LIMIT ?", (max(1, min(int(limit), 500)),))
        return [Job.from_row(r) for r in rows]

    async def begin_delivery(self, job_id: str) -> Job:
        """Mark the job 'sending' and fix its nonce (kept across resends, ≤ 25 chars as Discord
        requires), before the bot sends; returns the job with `delivery_nonce` set. The nonce is
        derived from the job (`delivery_nonce`), not drawn at random: an install restored from a
        backup taken before the job was posted sends the same nonce again, and Discord returns
        the message already posted instead of a duplicate, within its nonce window (minutes)."""
        job_id = normalize_job_id(job_id)
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            job = await fetch_job(conn, job_id)
            if not job.terminal:
                raise InvalidState(f"job {job_id} is {job.state}; deliver it after it finishes")
            if job.delivery_state in ("posted", "abandoned"):
                raise InvalidState(f"job {job_id} was already {job.delivery_state}; not sending twice")
            await conn.execute(
                "UPDATE jobs SET delivery_state = 'sending', delivery_nonce = COALESCE("
                "delivery_nonce, ?), delivery_updated_at = ?, updated_at = ? WHERE id = ?",
                (delivery_nonce(job), now, now, job_id))
            return await fetch_job(conn, job_id)

    async def mark_delivered(self, job_id: str, message_ids: Iterable[Snowflake], *,
                             channel_id: Snowflake | None = None) -> Job:
        """`channel_id`: where the messages are, when not in the job's channel (the requester's DMs)."""
        return await self._finish_delivery(job_id, "posted", [sid(m) for m in message_ids],
                                           None if channel_id is None else sid(channel_id))

    async def abandon_delivery(self, job_id: str) -> Job:
        """Give up posting (e.g. the channel is gone); the job drops out of `undelivered` and its
        GPU time is refunded in the same transaction (audited as the bot's refund): a result
        nobody can see is not billed."""
        return await self._finish_delivery(job_id, "abandoned", [])

    async def _finish_delivery(self, job_id: str, state: str, message_ids: list[str],
                               channel_id: str | None = None) -> Job:
        job_id = normalize_job_id(job_id)
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            job = await fetch_job(conn, job_id)
            if not job.terminal:
                raise InvalidState(f"job {job_id} is {job.state}; it has no result to deliver yet")
            await conn.execute(
                "UPDATE jobs SET delivery_state = ?, result_message_ids = ?, result_channel_id = ?, "
                "delivery_updated_at = ?, updated_at = ? WHERE id = ?",
                (state, json.dumps(message_ids), channel_id, now, now, job_id))
            if state == "abandoned" and job.delivery_state != "abandoned":
                reason = "the result could not be delivered"
                seconds = await refund_in(conn, job_id, now, reason)
                if seconds:
                    await write_audit(conn, now, job.guild_id, None, "quota.refund", job_id,
                                      {"seconds": seconds, "reason": reason})
            return await fetch_job(conn, job_id)

    async def set_progress_message(self, job_id: str, message_id: Snowflake | None) -> None:
        """Remember the bot-owned message that shows this job's progress (None forgets it)."""
        rows = await self._db.execute(
            "UPDATE jobs SET progress_message_id = ?, updated_at = ? WHERE id = ? RETURNING id",
            (None if message_id is None else sid(message_id), await self._db.clock(),
             normalize_job_id(job_id)))
        if not rows:
            raise NotFound(f"no job {job_id!r}; check the id (your jobs: /queue; any job: /job show)")

    # ---- queue position and ETA ---------------------------------------------------------

    async def positions(self, *, default_seconds_per_megapixel_step: float | None = None
                        ) -> dict[str, QueueEstimate]:
        """Position (1 = next) and ETA of every queued job; see `eta.py` for the model."""
        now = await self._db.clock()
        async with self._db.snapshot() as conn:
            return await estimate_queue(conn, default_seconds_per_megapixel_step, now)

    async def position(self, job_id: str) -> QueueEstimate | None:
        """This job's position and ETA, or None when it is not waiting."""
        return (await self.positions()).get(normalize_job_id(job_id))
