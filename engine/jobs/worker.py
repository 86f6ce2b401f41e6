"""The engine process: claim a job, render it, report, repeat — models stay resident.

    disco engine [--burst]       (the bot will spawn and supervise it)
    disco worker --database URL  (the same loop on any host: engine/cli/worker.py)

Every engine registers in the fleet (`db.workers`: host, device, what it can run), heartbeats
there while it lives and leaves on a clean exit. With a `WorkerFit` it claims only the jobs
that fit it, preferring those whose models it already holds (the `models` of its last jobs:
the pool keeps what it loaded).

Each claimed job gets a `JobContext` (engine/jobs/context.py) and is run by the handler of its
kind (`HANDLERS`: engine/jobs/still.py, study.py, animation.py) in a worker thread; the event
loop keeps the lease alive with heartbeats and learns about cancels. Every write is fenced by
the job's attempt number, so a worker whose lease was taken over can never overwrite the new
attempt's work. How the attempt ended is an `Outcome` (engine/jobs/outcome.py), recorded here.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from engine.animation.renderer import AnimationRenderer
from engine.diffusion.pipeline import DiscoPipeline
from engine.errors import SpecError
from engine.jobs import animation, still, study
from engine.jobs.context import Handler, JobContext, WorkerConfig, release_memory
from engine.jobs.outcome import Completed, Failed, Outcome, Stopped, outcome_of
from engine.jobs.start import open_queue
from engine.models.pool import ModelPool
from storage import (
    BlobTooLarge,
    Database,
    DatabaseUnavailable,
    DiskFull,
    Job,
    MAX_HELD,
    JobKind,
    JobState,
    StaleAttempt,
    StorageError,
    WorkerFit,
)

__all__ = ["HANDLERS", "EngineWorker", "WorkerConfig", "WorkerFit", "default_owner", "serve"]

# The database cannot take writes for a while (a server restarting, a full disk): wait, retry.
WAIT_AND_RETRY = (DatabaseUnavailable, DiskFull)
log = logging.getLogger("disco.engine")

HANDLERS: dict[JobKind, Handler[Any]] = {
    JobKind.STILL: still.HANDLER,
    JobKind.STUDY: study.HANDLER,
    JobKind.ANIMATION: animation.HANDLER,
}


def default_owner() -> str:
    return f"engine:{socket.gethostname()}:{os.getpid()}"


async def serve(data_dir: Path, pool: ModelPool, *, owner: str | None = None,
                config: WorkerConfig | None = None, burst: bool = False, database_url: str = "",
                blob_bytes: int | None = None, fit: WorkerFit | None = None,
                database: str | None = None, parent_pid: int | None = None,
                parent_poll_s: float = 2.0, db: Database | None = None) -> int:
    """The engine process (`disco engine`, `disco worker`): render jobs from the queue until
    SIGTERM or SIGINT — with `burst`, until the queue is empty. Returns the jobs processed.
    `db`: the queue, already open (the CLI opens it with `open_queue` before it loads the
    models, and closes it); without it, serve opens and closes it itself: `database`, else
    DISCO_DATABASE_URL, else `database_url`, else the SQLite file in `data_dir`
    (engine/jobs/start.py). `data_dir` holds only this process's scratch folders when the
    database is PostgreSQL: nothing there is shared with another process. `fit`: what this
    worker can run (None: any job). `parent_pid`: the bot that supervises this engine; once it
    is no longer the parent (killed), the engine stops."""
    queue = contextlib.nullcontext(db) if db is not None else await open_queue(
        data_dir, database=database, database_url=database_url, burst=burst, blob_bytes=blob_bytes)
    async with queue as db:
        worker = EngineWorker(db, pool, data_dir, owner=owner, config=config, fit=fit)
        # The one line that says the process is up (it is silent until a job comes).
        log.info("%s: %s for jobs in %s (%s), model set %s on %s", worker.owner,
                 "draining the queue" if burst else "waiting", db.path, db.kind, pool.model_set,
                 pool.device)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        orphaned = asyncio.create_task(_stop_when_orphaned(worker, parent_pid, parent_poll_s)) \
            if parent_pid else None
        try:
            return await worker.run(burst=burst)
        finally:
            if orphaned is not None:
                orphaned.cancel()


async def _stop_when_orphaned(worker: EngineWorker, parent_pid: int, every_s: float) -> None:
    """Stop `worker` (as SIGTERM would) once `parent_pid` is no longer this process's parent:
    the bot that started the engine died without stopping it (SIGKILL, the OOM killer)."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(every_s)
    log.warning("the bot (pid %d) that started this engine is gone; stopping", parent_pid)
    worker.stop()


class EngineWorker:
    """Claims and renders jobs one at a time. `pool`, `pipeline` (the one `DiscoPipeline`) and
    `animator` (the one `AnimationRenderer`, sharing that pipeline) are what every job's
    context gets; replace `pipeline` to change how stills and studies render."""

    def __init__(self, db: Database, pool: ModelPool, data_dir: Path, *, owner: str | None = None,
                 config: WorkerConfig | None = None, fit: WorkerFit | None = None):
        self.db, self.pool, self.data_dir = db, pool, Path(data_dir)
        self.owner = owner or default_owner()
        self.config = config or WorkerConfig()
        self.fit = fit  # None: claim any job (one engine that runs whatever the bot queues)
        self.current_job: str | None = None
        self._held: list[str] = []  # the `models` of recent jobs: loaded in the pool, still there
        self.pipeline = DiscoPipeline(pool)
        # Animations share the pipeline; their depth and flow models load on first use and stay.
        self.animator = AnimationRenderer(pool, pipeline=self.pipeline)
        self._stopping = asyncio.Event()
        self._context: JobContext | None = None  # the running job's

    def stop(self) -> None:
        """SIGTERM: claim nothing more, and stop the running job at its next step; it is handed
        back to the queue (`_record_once`) and resumes on the next engine from what it stored.
        Docker and the bot's supervisor give an engine ~10 s before SIGKILL: a job left to
        finish would instead wait out its lease and count as a failed attempt."""
        self._stopping.set()
        if self._context is not None:
            self._context.stop_for_hand_back()

    async def run(self, *, burst: bool = False) -> int:
        """Process jobs until stopped; with `burst`, until the queue is empty. Returns the count.
        The worker is in the fleet while this runs."""
        membership = asyncio.create_task(self._stay_registered(), name="worker-heartbeat")
        try:
            return await self._claim_and_render(burst)
        finally:
            membership.cancel()
            await asyncio.gather(membership, return_exceptions=True)
            await self._leave()

    async def _claim_and_render(self, burst: bool) -> int:
        done, backoff = 0, self.config.poll_seconds
        while not self._stopping.is_set():
            try:
                job = await self.db.leases.claim(self.owner, lease_seconds=self.config.lease_seconds,
                                                 fit=self._claim_fit())
            except WAIT_AND_RETRY as exc:  # the server restarts or is gone, or its disk is full
                log.warning("%s; next try in %.0f s", exc, backoff)
                await self._idle(backoff, wake_on_change=False)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = self.config.poll_seconds
            if job is None:
                if burst:
                    break
                await self._idle(self.config.poll_seconds)
                continue
            self.current_job = job.id
            try:
                await self.process(job)
            finally:
                self.current_job = None
            self._remember_models(job.models)
            await self._count_done(job.id)
            done += 1
        return done

    # ---- the fleet ----------------------------------------------------------------------------

    def registration(self) -> WorkerFit:
        """What this worker tells the fleet it runs (without a fit: its pool's model set)."""
        return self.fit or WorkerFit(model_sets=(self.pool.model_set,))

    def _claim_fit(self) -> WorkerFit | None:
        return replace(self.fit, held=tuple(self._held)) if self.fit else None

    def _remember_models(self, models: str) -> None:
        if models:
            self._held = [m for m in self._held if m != models][-(MAX_HELD - 1):] + [models]

    async def _stay_registered(self) -> None:
        """Register, then heartbeat the fleet's row with the current job; register again when
        the row is gone, and ride out a database that is away (the claim loop says so)."""
        registered = False
        while True:
            try:
                if not registered:
                    await self.db.workers.register(self.owner, host=socket.gethostname(),
                                                   device=str(self.pool.device), fit=self.registration())
                    registered = True
                elif not await self.db.workers.heartbeat(self.owner, self.current_job):
                    registered = False
                    continue
            except StorageError:  # away or busy: the claim loop says so; the row keeps its counts
                pass
            await asyncio.sleep(self.config.heartbeat_seconds)

    async def _count_done(self, job_id: str) -> None:
        job_speed = None
        try:
            job_speed = (await self.db.jobs.get(job_id)).seconds_per_step
            await self.db.workers.job_done(self.owner, job_speed)
        except WAIT_AND_RETRY as exc:  # only the fleet's counter misses it
            log.warning("job %s: not counted in the fleet (%s)", job_id, exc)

    async def _leave(self) -> None:
        try:
            await self.db.workers.deregister(self.owner)
        except StorageError as exc:  # its heartbeat goes stale instead
            log.warning("leaving the fleet failed (%s); it will show as not live", exc)

    async def _idle(self, seconds: float, *, wake_on_change: bool = True) -> None:
        """Wait `seconds`, or less: until stopped, or (PostgreSQL) until a job is queued."""
        waits = [asyncio.ensure_future(self._stopping.wait())]
        if wake_on_change:
            waits.append(asyncio.ensure_future(self.db.wait_for_change(seconds)))
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def process(self, job: Job) -> None:
        """Render one claimed job and record how it ended (every write fenced by its attempt)."""
        log.info("job %s: attempt %d of %d", job.id, job.attempt, job.max_attempts)
        ctx = JobContext(job, db=self.db, owner=self.owner, data_dir=self.data_dir, pool=self.pool,
                         pipeline=self.pipeline, animator=self.animator, config=self.config)
        heartbeats = asyncio.create_task(ctx.keep_alive())
        self._context = ctx
        if self._stopping.is_set():
            ctx.stop_for_hand_back()
        try:
            outcome = await self._attempt(ctx, HANDLERS[job.kind])
        finally:
            self._context = None
            heartbeats.cancel()
            release_memory(self.pool.device)
        try:
            await self._record(ctx, outcome)
        finally:
            ctx.discard()

    async def _attempt(self, ctx: JobContext, handler: Handler[Any]) -> Outcome:
        """The job's files into this process's scratch folder, its spec checked, the render."""
        try:
            if not await self._materialise(ctx):
                return Stopped()
            spec = handler.spec_of(ctx.job)
        except SpecError as exc:
            return Failed("invalid_settings", str(exc), retryable=False)
        except Exception as exc:
            return outcome_of(exc, ctx.job)
        started = time.monotonic()
        try:
            artifacts = await asyncio.to_thread(handler.render, ctx, spec)
        except Exception as exc:
            return outcome_of(exc, ctx.job)
        return Completed(tuple(artifacts), gpu_seconds=time.monotonic() - started,
                         seconds_per_step=ctx.live.seconds_per_step(), already_charged=ctx.live.charged,
                         notes=tuple(ctx.notes))

    async def _materialise(self, ctx: JobContext) -> bool:
        """`ctx.materialise()`, waiting while the database is away or its disk full (a server
        restarting right after the claim must not cost the job an attempt); False when the
        attempt must stop meanwhile (a cancel, or the lease went to another attempt)."""
        backoff = self.config.poll_seconds
        while True:
            try:
                await ctx.materialise()
                return True
            except WAIT_AND_RETRY as exc:
                log.warning("job %s: files not fetched yet (%s); retrying in %.0f s", ctx.job.id,
                            exc, backoff)
            await asyncio.sleep(backoff)
            if ctx.cancel.is_set():
                return False
            backoff = min(backoff * 2, 30.0)

    async def _record(self, ctx: JobContext, outcome: Outcome) -> None:
        """Store how the attempt ended, retrying while the database is unreachable or its disk
        full (the result stays in the scratch folder; if the lease runs out meanwhile, the write
        is fenced off and the job runs again: nothing is lost or recorded twice)."""
        backoff = 1.0
        while True:
            try:
                return await self._record_once(ctx, outcome)
            except WAIT_AND_RETRY as exc:
                log.warning("job %s: result not recorded yet (%s); retrying in %.0f s",
                            ctx.job.id, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _record_once(self, ctx: JobContext, outcome: Outcome) -> None:
        """Store how the attempt ended (its results as blobs first); a superseded attempt's
        result is dropped."""
        job, leases = ctx.job, self.db.leases
        try:
            if isinstance(outcome, Stopped) and ctx.handing_back and await leases.hand_back(
                    job.id, job.attempt, self.owner):  # nothing it finished is delivered: not stored
                log.info("job %s: handed back to the queue (this engine is stopping); the next "
                         "engine resumes it from what it stored", job.id)
                return
            try:
                outcome = replace(outcome, artifacts=await ctx.publish(outcome.artifacts))
            except BlobTooLarge as exc:
                outcome = Failed("blob_bytes", str(exc), retryable=False)
            match outcome:
                case Completed():
                    await ctx.write_last_progress()
                    await leases.complete(job.id, job.attempt, self.owner, artifacts=outcome.artifacts,
                                          gpu_seconds=outcome.gpu_seconds,
                                          seconds_per_step=outcome.seconds_per_step,
                                          already_charged=outcome.already_charged, notes=outcome.notes)
                case Stopped():
                    await self._record_stop(job, outcome, ctx.notes)
                case Failed():
                    await leases.fail(job.id, job.attempt, self.owner, code=outcome.code,
                                      message=outcome.message, retryable=outcome.retryable,
                                      artifacts=outcome.artifacts, notes=ctx.notes)
        except StaleAttempt as stale:
            if stale.current_attempt == job.attempt and stale.current_state == JobState.SUCCEEDED:
                # Only this attempt can have completed itself: a retry whose first try's answer was lost.
                log.info("job %s: attempt %d was recorded already (the database's answer was lost)",
                         job.id, job.attempt)
            else:
                log.warning("job %s: attempt %d was superseded; its result is dropped", job.id, job.attempt)

    async def _record_stop(self, job: Job, outcome: Stopped, notes: list[str]) -> None:
        if (await self.db.jobs.get(job.id)).cancel_requested:
            await self.db.leases.acknowledge_cancel(job.id, job.attempt, self.owner,
                                                    artifacts=outcome.artifacts, notes=notes)
        else:  # our lease went to another attempt; that attempt owns the job now
            log.warning("job %s: stopped attempt %d (lease taken over)", job.id, job.attempt)
