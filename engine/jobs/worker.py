"""The engine process: claim a job, render it, report, repeat — models stay resident.

    disco engine [--burst]       (the bot will spawn and supervise it)

Each claimed job gets a `JobContext` (engine/jobs/context.py) and is run by the handler of its
kind (`HANDLERS`: engine/jobs/still.py, study.py, animation.py) in a worker thread; the event
loop keeps the lease alive with heartbeats and learns about cancels. Every write is fenced by
the job's attempt number, so a worker whose lease was taken over can never overwrite the new
attempt's work. How the attempt ended is an `Outcome` (engine/jobs/outcome.py), recorded here.
"""
from __future__ import annotations

import asyncio
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
from engine.errors import EngineError, SpecError
from engine.jobs import animation, still, study
from engine.jobs.context import Handler, JobContext, WorkerConfig, release_memory
from engine.jobs.files import clear_stale_scratch
from engine.jobs.outcome import Completed, Failed, Outcome, Stopped, outcome_of
from engine.models.pool import ModelPool
from storage import (
    BlobTooLarge,
    Database,
    DatabaseUnavailable,
    Job,
    JobKind,
    StaleAttempt,
    StorageError,
    database_url as resolve_database_url,
)

__all__ = ["HANDLERS", "EngineWorker", "WorkerConfig", "default_owner", "serve"]

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
                blob_bytes: int | None = None) -> int:
    """The engine process (`disco engine`): open the queue (DISCO_DATABASE_URL, else
    `database_url`, else the SQLite file in `data_dir`) and render jobs until SIGTERM or
    SIGINT — with `burst`, until the queue is empty. Returns the jobs processed. A PostgreSQL
    server that is down at start is waited for. `blob_bytes`: `[storage] blob_bytes`, the
    largest job file kept. `data_dir` holds only this process's scratch folders when the
    database is PostgreSQL: nothing there is shared with another process."""
    try:
        db = await Database.open(resolve_database_url(data_dir, database_url),
                                 wait_s=0.0 if burst else float("inf"))
    except StorageError as exc:  # a locked, damaged or foreign file: the CLI prints one line
        raise EngineError(str(exc)) from None
    if blob_bytes is not None:
        db.blobs.max_bytes = blob_bytes
    for folder in clear_stale_scratch(data_dir):
        log.info("removed %s, the scratch folder of an engine that is gone", folder)
    try:
        worker = EngineWorker(db, pool, data_dir, owner=owner, config=config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        return await worker.run(burst=burst)
    finally:
        await db.close()


class EngineWorker:
    """Claims and renders jobs one at a time. `pool`, `pipeline` (the one `DiscoPipeline`) and
    `animator` (the one `AnimationRenderer`, sharing that pipeline) are what every job's
    context gets; replace `pipeline` to change how stills and studies render."""

    def __init__(self, db: Database, pool: ModelPool, data_dir: Path, *, owner: str | None = None,
                 config: WorkerConfig | None = None):
        self.db, self.pool, self.data_dir = db, pool, Path(data_dir)
        self.owner = owner or default_owner()
        self.config = config or WorkerConfig()
        self.pipeline = DiscoPipeline(pool)
        # Animations share the pipeline; their depth and flow models load on first use and stay.
        self.animator = AnimationRenderer(pool, pipeline=self.pipeline)
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Finish (or checkpoint) nothing more: leave after the current claim attempt."""
        self._stopping.set()

    async def run(self, *, burst: bool = False) -> int:
        """Process jobs until stopped; with `burst`, until the queue is empty. Returns the count."""
        done, backoff = 0, self.config.poll_seconds
        while not self._stopping.is_set():
            try:
                job = await self.db.leases.claim(self.owner, lease_seconds=self.config.lease_seconds)
            except DatabaseUnavailable as exc:  # the server restarts or is gone for a while
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
            await self.process(job)
            done += 1
        return done

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
        try:
            outcome = await self._attempt(ctx, HANDLERS[job.kind])
        finally:
            heartbeats.cancel()
            release_memory(self.pool.device)
        try:
            await self._record(ctx, outcome)
        finally:
            ctx.discard()

    async def _attempt(self, ctx: JobContext, handler: Handler[Any]) -> Outcome:
        """The job's files into this process's scratch folder, its spec checked, the render."""
        try:
            await ctx.materialise()
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
                         seconds_per_step=ctx.live.seconds_per_step(), already_charged=ctx.live.charged)

    async def _record(self, ctx: JobContext, outcome: Outcome) -> None:
        """Store how the attempt ended, retrying while the database is unreachable (the result
        stays in the scratch folder; if the lease runs out meanwhile, the write is fenced off and the job
        runs again: nothing is lost or recorded twice)."""
        backoff = 1.0
        while True:
            try:
                return await self._record_once(ctx, outcome)
            except DatabaseUnavailable as exc:
                log.warning("job %s: result not recorded yet (%s); retrying in %.0f s",
                            ctx.job.id, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _record_once(self, ctx: JobContext, outcome: Outcome) -> None:
        """Store how the attempt ended (its results as blobs first); a superseded attempt's
        result is dropped."""
        job, leases = ctx.job, self.db.leases
        try:
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
                                          already_charged=outcome.already_charged)
                case Stopped():
                    await self._record_stop(job, outcome)
                case Failed():
                    await leases.fail(job.id, job.attempt, self.owner, code=outcome.code,
                                      message=outcome.message, retryable=outcome.retryable,
                                      artifacts=outcome.artifacts)
        except StaleAttempt:
            log.warning("job %s: attempt %d was superseded; its result is dropped", job.id, job.attempt)

    async def _record_stop(self, job: Job, outcome: Stopped) -> None:
        if (await self.db.jobs.get(job.id)).cancel_requested:
            await self.db.leases.acknowledge_cancel(job.id, job.attempt, self.owner,
                                                    artifacts=outcome.artifacts)
        else:  # our lease went to another attempt; that attempt owns the job now
            log.warning("job %s: stopped attempt %d (lease taken over)", job.id, job.attempt)
