"""The engine's side of the queue: fair claiming, leases, heartbeats, fenced progress and results.

- `claim` runs in one write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: the writer
  advisory lock, and the job row is taken FOR UPDATE SKIP LOCKED), on the database's clock:
  expired leases go back to the queue (or to dead after max_attempts), then the next job is
  picked fairly (see below), set running with attempt + 1 and a lease, and returned. Its
  `attempt` is the fencing token.
- Fairness: guilds with eligible queued work round-robin, least recently served first (never
  served first, ties by how long they have waited); inside the guild, users the same way; then
  that user's highest-priority, oldest job. A user already running `max_running_per_user` jobs
  is skipped until one ends. `queue_guilds` / `queue_users` (kept by triggers) make this a few
  index look-ups at any queue length.
- Workers (storage/workers.py): a claim given a `WorkerFit` sees only the jobs that fit it
  (model set, memory, size). Fairness then works as above over what fits: the guild and the
  user whose turn it is among those with a fitting job. Affinity comes last and never moves a
  job past another guild's or user's turn: among that user's fitting jobs of the highest
  priority, one whose models the worker already holds (`fit.held`) goes before older ones.
  Fairness is what users are promised and can see (queue places, ETAs); loading other models
  costs seconds where a render takes minutes.
- Every later write takes (job_id, attempt, owner) and changes the row only if it still is that
  running attempt; otherwise `StaleAttempt` is raised and the row is left unchanged.
- A lease that runs out (or an engine the supervisor saw die) counts as a failed attempt.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Sequence

from .errors import InvalidValue, StaleAttempt
from .eta import size_bucket
from .guilds import DEFAULT_LIMITS
from .jobs import Job, check_notes
from .quotas import PARTIAL_NOTE, charge_in, refund_in, usage_in
from .workers import WorkerFit

if TYPE_CHECKING:
    from .backend import Store

LEASE_SECONDS = 60.0  # the engine heartbeats every few seconds; a missed minute means it is gone

# Release a running attempt that stopped (lease ran out, or its engine died): back to the queue,
# or dead after max_attempts, or cancelled if a cancel was pending. Fragments are constants.
_RELEASE = """UPDATE jobs SET
    lease_expiries = lease_expiries + 1,
    state = CASE WHEN cancel_requested THEN 'cancelled'
                 WHEN attempt >= max_attempts THEN 'dead' ELSE 'queued' END,
    error_code = CASE WHEN cancel_requested THEN 'cancelled' ELSE :code END,
    error_message = CASE WHEN cancel_requested THEN 'cancelled while running' ELSE {message} END,
    lease_owner = NULL, lease_expires_at = NULL,
    finished_at = CASE WHEN cancel_requested OR attempt >= max_attempts THEN :now END,
    updated_at = :now
WHERE state = 'running' AND {condition}
RETURNING *"""
_EXPIRED_MESSAGE = ("'the engine stopped responding (lease expired) ' || CASE lease_expiries "
                    "WHEN 0 THEN 'once' ELSE (lease_expiries + 1) || ' times' END")
_RELEASE_EXPIRED = _RELEASE.format(message=_EXPIRED_MESSAGE, condition="lease_expires_at < :now")
_RELEASE_OWNER = _RELEASE.format(message=":message", condition="lease_owner = :owner")

# The fair pick: first guild (by turn) that has a user with queued work under the running cap.
_PICK = """SELECT guild_id, next_user FROM (
    SELECT g.guild_id, g.turn, g.waiting_since, (
        SELECT u.user_id FROM queue_users u
        WHERE u.guild_id = g.guild_id AND u.queued > 0
          AND u.running < COALESCE(s.max_running_per_user, :running_cap){fitting}
        ORDER BY u.turn, u.waiting_since LIMIT 1) AS next_user
    FROM queue_guilds g LEFT JOIN guild_settings s ON s.guild_id = g.guild_id
    WHERE g.queued > 0) AS candidates
WHERE next_user IS NOT NULL
ORDER BY turn, waiting_since LIMIT 1"""

# With a worker's fit: the user must have a queued job that fits.
_USER_FITS = """
          AND EXISTS (SELECT 1 FROM jobs f WHERE f.state = 'queued' AND f.guild_id = u.guild_id
                      AND f.user_id = u.user_id AND {fits})"""

_START = """UPDATE jobs SET state = 'running', attempt = attempt + 1, cancel_requested = FALSE,
    lease_owner = :owner, lease_expires_at = :now + :lease, heartbeat_at = :now,
    started_at = :now, updated_at = :now
WHERE seq = (SELECT seq FROM jobs f WHERE state = 'queued' AND guild_id = :guild AND user_id = :user
             AND {fits} ORDER BY priority DESC, {affinity}seq LIMIT 1{lock})
RETURNING *"""

_FENCE = "WHERE id = :id AND attempt = :attempt AND lease_owner = :owner AND state = 'running'"


def _check_owner(owner: str) -> None:
    if not owner or len(owner) > 200:
        raise InvalidValue("a lease owner is a non-empty name of at most 200 characters, "
                           "e.g. 'engine:<host>:<pid>'")


class Leases:
    """Engine-side API (`db.leases`)."""

    def __init__(self, db: Store):
        self._db = db

    async def claim(self, owner: str, *, lease_seconds: float = LEASE_SECONDS,
                    fit: WorkerFit | None = None) -> Job | None:
        """The next job by fairness, now running under a lease held by `owner`; None if idle.
        `fit`: only jobs this worker can run, preferring those whose models it holds."""
        _check_owner(owner)
        fits, params = fit.sql("f") if fit else ("TRUE", {})
        affinity, held = fit.affinity_sql("f") if fit else ("", {})
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)  # under the write lock: no stale time after a wait
            await conn.execute(_RELEASE_EXPIRED, {"now": now, "code": "lease_expired"})
            pick = await conn.execute_fetchall(
                _PICK.format(fitting=_USER_FITS.format(fits=fits) if fit else ""),
                {"running_cap": DEFAULT_LIMITS.max_running_per_user, **params})
            if not pick:
                return None
            guild_id, user_id = pick[0]
            start = _START.format(fits=fits, affinity=affinity, lock=self._db.skip_locked)
            rows = await conn.execute_fetchall(start, {
                "owner": owner, "now": now, "lease": lease_seconds, "guild": guild_id, "user": user_id,
                **params, **held})
            await conn.execute(
                "UPDATE queue_guilds SET turn = (SELECT MAX(turn) FROM queue_guilds) + 1, "
                "served_at = ? WHERE guild_id = ?", (now, guild_id))
            await conn.execute(
                "UPDATE queue_users SET turn = (SELECT MAX(turn) FROM queue_users WHERE guild_id = ?)"
                " + 1, served_at = ? WHERE guild_id = ? AND user_id = ?",
                (guild_id, now, guild_id, user_id))
            return Job.from_row(rows[0])

    async def heartbeat(self, job_id: str, attempt: int, owner: str, *,
                        lease_seconds: float = LEASE_SECONDS) -> bool:
        """Extend the lease; returns True when a cancel was requested (stop within one step).

        A heartbeat that arrives after the lease ran out still succeeds as long as nobody has
        released or re-claimed the job: the attempt is still the current one.
        """
        now = await self._db.clock()
        rows = await self._db.execute(
            f"UPDATE jobs SET heartbeat_at = :now, lease_expires_at = :now + :lease, "
            f"updated_at = :now {_FENCE} RETURNING cancel_requested",
            {"now": now, "lease": lease_seconds, "id": job_id, "attempt": attempt, "owner": owner})
        if not rows:
            raise await self._stale(job_id, attempt, owner)
        return bool(rows[0][0])

    async def progress(self, job_id: str, attempt: int, owner: str, *, step: int, total: int,
                       frame: int | None = None, frames: int | None = None,
                       seconds_per_step: float | None = None, preview_path: str | None = None,
                       checkpoint_path: str | None = None,
                       lease_seconds: float = LEASE_SECONDS) -> bool:
        """Record progress (and extend the lease, as a heartbeat); returns cancel_requested.

        `step` of `total` are the steps of the current image or frame; `frame` of `frames`
        the animation frame (0-based). None leaves a field as it was.
        """
        if step < 0 or total < 0 or (frame is not None and frame < 0):
            raise InvalidValue("progress steps and frames are counts ≥ 0")
        now = await self._db.clock()
        rows = await self._db.execute(
            f"UPDATE jobs SET progress_step = :step, progress_total = :total, "
            f"progress_frame = COALESCE(:frame, progress_frame), "
            f"progress_frames = COALESCE(:frames, progress_frames), "
            f"seconds_per_step = COALESCE(:sps, seconds_per_step), "
            f"preview_path = COALESCE(:preview, preview_path), "
            f"checkpoint_path = COALESCE(:checkpoint, checkpoint_path), "
            f"heartbeat_at = :now, lease_expires_at = :now + :lease, updated_at = :now "
            f"{_FENCE} RETURNING cancel_requested",
            {"step": step, "total": total, "frame": frame, "frames": frames,
             "sps": seconds_per_step, "preview": preview_path, "checkpoint": checkpoint_path,
             "now": now, "lease": lease_seconds, "id": job_id, "attempt": attempt, "owner": owner})
        if not rows:
            raise await self._stale(job_id, attempt, owner)
        return bool(rows[0][0])

    async def complete(self, job_id: str, attempt: int, owner: str, *, artifacts: Sequence[str],
                       gpu_seconds: float, seconds_per_step: float | None = None,
                       already_charged: float = 0.0, notes: Sequence[str] = ()) -> Job:
        """Succeeded: store the artifact refs and the engine's `notes` on them (`Job.notes`: what
        the user should know, e.g. that it rendered in a cheaper way), charge `gpu_seconds` (the
        engine decides whether time spent in earlier, failed attempts counts) to the user's
        ledger and keep a seconds-per-step sample for ETAs, all in one transaction. `already_charged`: what this
        attempt already billed with `charge_partial`; only the balance is charged now."""
        if gpu_seconds < 0 or already_charged < 0:
            raise InvalidValue("gpu_seconds and already_charged are durations ≥ 0")
        notes = check_notes(notes)
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            rows = await conn.execute_fetchall(
                f"UPDATE jobs SET state = 'succeeded', artifacts_json = :artifacts, result_notes = :notes, "
                f"gpu_seconds = :gpu, seconds_per_step = COALESCE(:sps, seconds_per_step), "
                f"error_code = NULL, error_message = NULL, lease_owner = NULL, "
                f"lease_expires_at = NULL, finished_at = :now, updated_at = :now "
                f"{_FENCE} RETURNING *",
                {"artifacts": json.dumps(list(artifacts)), "notes": json.dumps(notes), "gpu": gpu_seconds,
                 "sps": seconds_per_step, "now": now, "id": job_id, "attempt": attempt,
                 "owner": owner})
            if not rows:
                raise await self._stale(job_id, attempt, owner, conn)
            job = Job.from_row(rows[0])
            await charge_in(conn, job.guild_id, job.user_id, job.id,
                            max(0.0, gpu_seconds - already_charged), now)
            if job.seconds_per_step and job.seconds_per_step > 0:
                await conn.execute(
                    "INSERT INTO step_timings (model_set, size_bucket, seconds_per_step, "
                    "recorded_at) VALUES (?, ?, ?, ?)",
                    (job.model_set, size_bucket(job.width, job.height), job.seconds_per_step, now))
            return job

    async def charge_partial(self, job_id: str, attempt: int, owner: str, *, gpu_seconds: float,
                             note: str) -> bool:
        """Bill work that is finished and kept although the job is not (a study's cell, an
        animation's frame), fenced by the attempt. `fail` does not refund it (storage/quotas.py
        explains why); pass the sum to `complete(already_charged=...)` so a finished job is not
        billed twice. Returns whether the requester still has GPU time left in every window
        (their roles as queued), so a long job can stop once the budget is spent.

        `note` names the unit ("cell 2 of 4"), and a unit is billed once: a charge tried again
        because the answer to the first was lost (the server restarted) bills nothing more."""
        if gpu_seconds < 0:
            raise InvalidValue("gpu_seconds is a duration ≥ 0")
        note = f"{PARTIAL_NOTE} {note}"[:200]
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            rows = await conn.execute_fetchall(
                f"SELECT guild_id, user_id, role_ids_json FROM jobs {_FENCE}",
                {"id": job_id, "attempt": attempt, "owner": owner})
            if not rows:
                raise await self._stale(job_id, attempt, owner, conn)
            guild_id, user_id, roles = rows[0][0], rows[0][1], json.loads(rows[0][2])
            if not await conn.execute_fetchall(
                    "SELECT 1 FROM usage WHERE job_id = ? AND kind = 'charge' AND note = ?", (job_id, note)):
                await charge_in(conn, guild_id, user_id, job_id, gpu_seconds, now, note)
            windows = await usage_in(conn, guild_id, user_id, roles, now)
        return all((use.user_limit is None or use.user_used < use.user_limit)
                   and (use.guild_limit is None or use.guild_used < use.guild_limit) for use in windows.values())

    async def fail(self, job_id: str, attempt: int, owner: str, *, code: str, message: str,
                   retryable: bool, artifacts: Sequence[str] = (), notes: Sequence[str] = ()) -> Job:
        """The attempt failed. Retryable: back to the queue while attempts remain, else dead
        (keeping this error). Not retryable: failed. A pending cancel wins: cancelled.
        Whatever was charged for the job is refunded when it ends here, except partial charges.
        `artifacts`: what was finished and is still delivered (e.g. an animation stopped when
        its requester's GPU time ran out), with the engine's `notes` on it (as `complete`)."""
        notes = check_notes(notes)
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            rows = await conn.execute_fetchall(
                f"UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' "
                f"  WHEN :retryable AND attempt < max_attempts THEN 'queued' "
                f"  WHEN :retryable THEN 'dead' ELSE 'failed' END, "
                f"error_code = :code, error_message = :message, artifacts_json = :artifacts, "
                f"result_notes = :notes, "
                f"lease_owner = NULL, lease_expires_at = NULL, "
                f"finished_at = CASE WHEN :retryable AND attempt < max_attempts "
                f"  AND NOT cancel_requested THEN NULL ELSE :now END, updated_at = :now "
                f"{_FENCE} RETURNING *",
                {"retryable": bool(retryable), "code": code[:64], "message": message[:2000],
                 "artifacts": json.dumps([str(a) for a in artifacts]), "notes": json.dumps(notes),
                 "now": now, "id": job_id, "attempt": attempt, "owner": owner})
            if not rows:
                raise await self._stale(job_id, attempt, owner, conn)
            job = Job.from_row(rows[0])
            if job.terminal:
                await refund_in(conn, job.id, now, f"job ended {job.state}: {code}", keep_partial=True)
            return job

    async def acknowledge_cancel(self, job_id: str, attempt: int, owner: str,
                                 artifacts: Sequence[str] = (), notes: Sequence[str] = ()) -> Job:
        """The engine stopped this attempt because a cancel was requested: cancelled.
        `artifacts`: what was finished before the stop and is still delivered (e.g. the frames
        of an animation so far as an MP4), with the engine's `notes` on it (as `complete`)."""
        notes = check_notes(notes)
        now = await self._db.clock()
        rows = await self._db.execute(
            f"UPDATE jobs SET state = 'cancelled', error_code = 'cancelled', "
            f"error_message = 'cancelled while running', lease_owner = NULL, artifacts_json = :artifacts, "
            f"result_notes = :notes, "
            f"lease_expires_at = NULL, finished_at = :now, updated_at = :now {_FENCE} RETURNING *",
            {"now": now, "id": job_id, "attempt": attempt, "owner": owner,
             "artifacts": json.dumps([str(a) for a in artifacts]), "notes": json.dumps(notes)})
        if not rows:
            raise await self._stale(job_id, attempt, owner)
        return Job.from_row(rows[0])

    async def hand_back(self, job_id: str, attempt: int, owner: str) -> Job | None:
        """The engine is stopping (SIGTERM: a restart, an upgrade) and stopped this attempt: the
        job goes back to the queue at once, keeping what it stored (checkpoint, frames, cells),
        fenced by the attempt. It is no failed attempt: `max_attempts` grows by one, as the next
        claim's attempt number must still rise (the fence). None when a cancel was requested
        meanwhile (then `acknowledge_cancel`)."""
        fence = {"id": job_id, "attempt": attempt, "owner": owner}
        async with self._db.transaction() as conn:
            held = await conn.execute_fetchall(f"SELECT cancel_requested FROM jobs {_FENCE}", fence)
            if not held:
                raise await self._stale(job_id, attempt, owner, conn)
            if held[0][0]:
                return None
            rows = await conn.execute_fetchall(
                f"UPDATE jobs SET state = 'queued', max_attempts = max_attempts + 1, lease_owner = NULL, "
                f"lease_expires_at = NULL, updated_at = :now {_FENCE} RETURNING *",
                {"now": await self._db.clock(conn), **fence})
            return Job.from_row(rows[0])

    async def requeue_expired(self) -> list[Job]:
        """Release every running job whose lease ran out; returns them. `claim` does this too,
        so only a sweep between claims needs it (several engines, tests of lease expiry)."""
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(_RELEASE_EXPIRED, {"now": await self._db.clock(conn),
                                                                  "code": "lease_expired"})
        return [Job.from_row(r) for r in rows]

    async def requeue_owned_by(self, owner: str, reason: str) -> list[Job]:
        """Release every job leased by `owner` at once (the supervisor saw that engine die);
        counts as a failed attempt, with `reason` as the error."""
        _check_owner(owner)
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(_RELEASE_OWNER, {
                "now": await self._db.clock(conn), "owner": owner, "code": "engine_exited",
                "message": reason[:2000]})
        return [Job.from_row(r) for r in rows]

    async def _stale(self, job_id: str, attempt: int, owner: str,
                     conn: Any = None) -> StaleAttempt:
        sql, params = "SELECT state, attempt FROM jobs WHERE id = ?", (job_id,)
        rows = list(await conn.execute_fetchall(sql, params)) if conn else \
            await self._db.execute(sql, params)
        state, current = (rows[0][0], rows[0][1]) if rows else (None, None)
        return StaleAttempt(job_id, attempt, owner, state, current)
