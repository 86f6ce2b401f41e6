"""The engine process: claim a job, render it, report, repeat — models stay resident.

    disco engine [--burst]       (the bot will spawn and supervise it)

The render runs in a worker thread; the event loop keeps the lease alive with heartbeats and
learns about cancels. Every write is fenced by the job's attempt number, so a worker whose lease
was taken over can never overwrite the new attempt's work. Progress, a preview every
`display_rate` steps and a checkpoint every `checkpoint_every` steps go under
`data/jobs/<id>/`; a job whose earlier attempt died resumes from its checkpoint. A job of kind
'study' renders a parameter study instead (engine/jobs/study.py), cell by cell, and one of kind
'animation' an animation (engine/jobs/animation.py), frame by frame.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import statistics
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from engine.animation.renderer import AnimationRenderer
from engine.diffusion.pipeline import DiscoPipeline, Resume
from engine.errors import Cancelled, EngineError, ModelError, SpecError
from engine.jobs.animation import animation_of, render_animation_job
from engine.jobs.degrade import cheaper_spec, out_of_memory_advice
from engine.jobs.files import Checkpoint, job_dir, load_checkpoint, save_checkpoint, save_preview, spec_digest
from engine.jobs.study import render_study_job, study_of
from engine.jobs.units import QuotaSpent
from engine.models.pool import ModelPool
from engine.spec.animation import AnimationSpec
from engine.spec.render import RenderSpec
from engine.spec.study import StudySpec
from storage import Database, Job, JobKind, StaleAttempt

log = logging.getLogger("disco.engine")


@dataclass
class WorkerConfig:
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 3.0
    checkpoint_every: int = 10       # steps between checkpoints
    progress_every: float = 0.5      # at most one progress write per this many seconds
    poll_seconds: float = 1.0        # idle wait between claims


@dataclass
class _Live:
    """What the render thread tells the event loop (and the loop tells it back)."""

    step: int = 0
    total: int = 0
    seconds: list[float] = field(default_factory=list)
    preview_path: str | None = None
    checkpoint_path: str | None = None
    frame: int | None = None     # the image, study cell or animation frame (0-based) of `frames`
    frames: int | None = None
    charged: float = 0.0         # GPU seconds this attempt already billed (cells, frames)
    quota_spent: bool = False    # stopped because the requester's GPU time ran out
    cancel: threading.Event = field(default_factory=threading.Event)


class OutOfMemory(EngineError):
    """The GPU ran out of memory; raised after the memory was released."""


def default_owner() -> str:
    return f"engine:{socket.gethostname()}:{os.getpid()}"


class EngineWorker:
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
        done = 0
        while not self._stopping.is_set():
            job = await self.db.leases.claim(self.owner, lease_seconds=self.config.lease_seconds)
            if job is None:
                if burst:
                    break
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.config.poll_seconds)
                except asyncio.TimeoutError:
                    pass
                continue
            await self.process(job)
            done += 1
        return done

    async def process(self, job: Job) -> None:
        """Render one claimed job and record how it ended (every write fenced by its attempt)."""
        log.info("job %s: attempt %d of %d", job.id, job.attempt, job.max_attempts)
        try:
            spec = self._job_spec(job)
        except SpecError as exc:
            await self._finish(job, "fail", code="invalid_settings", message=str(exc), retryable=False)
            return
        live = _Live()
        self._loop = asyncio.get_running_loop()
        heartbeats = asyncio.create_task(self._heartbeat(job, live))
        started = time.monotonic()
        outcome: tuple = ()
        try:
            artifacts = await self._render_with_retry(job, spec, live)
            sps = statistics.median(live.seconds) if live.seconds else None
            outcome = ("complete", dict(artifacts=artifacts, gpu_seconds=time.monotonic() - started,
                                        seconds_per_step=sps, already_charged=live.charged))
        except Cancelled as stop:
            outcome = ("cancel", {"artifacts": stop.artifacts})
        except QuotaSpent as exc:
            outcome = ("fail", dict(code="quota_exceeded", message=str(exc), retryable=False,
                                    artifacts=exc.artifacts))
        except OutOfMemory as exc:
            outcome = ("fail", dict(code="out_of_memory", message=str(exc), retryable=False))
        except (SpecError, ModelError) as exc:  # the job (or this host's models) can't work
            outcome = ("fail", dict(code=type(exc).__name__.lower(), message=str(exc), retryable=False))
        except Exception as exc:  # unexpected: log it whole, tell the user briefly, retry later
            log.exception("job %s: render failed", job.id)
            outcome = ("fail", dict(code="engine_error", retryable=True,
                                    message=f"the engine hit an unexpected error ({type(exc).__name__})"))
        finally:
            heartbeats.cancel()
            self._release_memory()
        await self._finish(job, outcome[0], live, **outcome[1])

    def _job_spec(self, job: Job) -> RenderSpec | StudySpec | AnimationSpec:
        if job.kind == JobKind.STUDY:
            return study_of(job)
        if job.kind == JobKind.ANIMATION:
            return animation_of(job)
        spec = RenderSpec.from_json(job.spec_json)
        if spec.seed is None:  # a resumed attempt must draw the same noise: fix the seed by job
            seed = job.seed if job.seed is not None else zlib.crc32(job.id.encode())
            spec = spec.replace(seed=seed)
        return spec

    async def _render_with_retry(self, job: Job, spec: RenderSpec | StudySpec | AnimationSpec,
                                 live: _Live) -> list[str]:
        # Cells and frames are small and resumable units: no in-process retry for them.
        if isinstance(spec, StudySpec):
            return await asyncio.to_thread(render_study_job, self, job, spec, live)
        if isinstance(spec, AnimationSpec):
            return await asyncio.to_thread(render_animation_job, self, job, spec, live)
        try:
            return await asyncio.to_thread(self._render, job, spec, live)
        except OutOfMemory:
            cheaper = cheaper_spec(spec)
            if cheaper is None:
                raise OutOfMemory(out_of_memory_advice(spec)) from None
            spec, how = cheaper
            log.warning("job %s: out of GPU memory; %s", job.id, how)
        try:
            return await asyncio.to_thread(self._render, job, spec, live)
        except OutOfMemory:
            raise OutOfMemory(f"{out_of_memory_advice(spec)} (already {how})") from None

    def _render(self, job: Job, spec: RenderSpec, live: _Live) -> list[str]:
        """The render thread: runs the pipeline with callbacks that checkpoint and preview."""
        folder = job_dir(self.data_dir, job.id)
        folder.mkdir(parents=True, exist_ok=True)
        spec_json = spec.to_json()
        digest = spec_digest(spec_json)
        images = sorted(str(p) for p in folder.glob(f"{spec.batch_name}(0)_*.png"))
        finished = len(images)  # PNGs are written atomically: each one is a whole image
        if finished >= spec.n_batches:  # the last attempt died between the last image and `complete`
            return images
        checkpoint = load_checkpoint(folder, spec_json, self.pool.device)
        resume = None
        if checkpoint and checkpoint.image_index >= finished:
            resume = Resume(checkpoint.image_index, checkpoint.state)
        elif finished:
            resume = Resume(min(finished, spec.n_batches - 1))
        if resume:
            log.info("job %s: resuming at image %d (%s)", job.id, resume.index,
                     "from its checkpoint" if resume.state else "from its start")

        last_report = [0.0]

        def on_step(context, info) -> None:
            live.step, live.total = info.step, info.total
            live.seconds.append(info.seconds)
            if spec.display_rate and info.step % spec.display_rate == 0:
                live.preview_path = str(save_preview(folder, info.pred_xstart))
            if self.config.checkpoint_every and info.step % self.config.checkpoint_every == 0 \
                    and info.step < info.total:
                state = info.snapshot()
                live.checkpoint_path = str(save_checkpoint(folder, Checkpoint(context.index, state, digest)))
            # Report from this thread and wait for the answer, so a cancel stops the very next step.
            if time.monotonic() - last_report[0] >= self.config.progress_every:
                last_report[0] = time.monotonic()
                if asyncio.run_coroutine_threadsafe(self._report(job, live), self._loop).result(60):
                    live.cancel.set()

        try:
            results = self.pipeline(spec, out_dir=folder, callback=on_step, run=0, resume=resume,
                                    should_cancel=live.cancel.is_set)
        except torch.cuda.OutOfMemoryError:
            pass  # handled below, outside the except block, so the traceback frees its tensors
        else:
            del results
            return sorted(str(p) for p in folder.glob(f"{spec.batch_name}(0)_*.png"))
        self._release_memory()
        raise OutOfMemory("out of GPU memory")

    async def _report(self, job: Job, live: _Live) -> bool:
        """One fenced progress write (it extends the lease too); returns cancel_requested."""
        sps = statistics.median(live.seconds[-20:]) if live.seconds else None
        try:
            return await self.db.leases.progress(
                job.id, job.attempt, self.owner, step=live.step, total=live.total,
                frame=live.frame, frames=live.frames, seconds_per_step=sps, preview_path=live.preview_path,
                checkpoint_path=live.checkpoint_path, lease_seconds=self.config.lease_seconds)
        except StaleAttempt:
            log.warning("job %s: attempt %d lost its lease; stopping", job.id, job.attempt)
            return True

    async def _heartbeat(self, job: Job, live: _Live) -> None:
        """Keeps the lease alive between progress writes (model loading, long steps, saving)."""
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            try:
                cancel = await self.db.leases.heartbeat(job.id, job.attempt, self.owner,
                                                        lease_seconds=self.config.lease_seconds)
            except StaleAttempt:
                log.warning("job %s: attempt %d lost its lease; stopping", job.id, job.attempt)
                cancel = True
            if cancel:
                live.cancel.set()

    async def _finish(self, job: Job, how: str, live: _Live | None = None, **kwargs) -> None:
        try:
            if how == "complete":
                if live is not None and live.total:  # the last steps since the last progress write
                    await self.db.leases.progress(job.id, job.attempt, self.owner, step=live.total,
                                                  total=live.total, preview_path=live.preview_path,
                                                  frame=live.frame, frames=live.frames)
                await self.db.leases.complete(job.id, job.attempt, self.owner, **kwargs)
            elif how == "cancel":
                current = await self.db.jobs.get(job.id)
                if current.cancel_requested:
                    await self.db.leases.acknowledge_cancel(job.id, job.attempt, self.owner,
                                                            artifacts=kwargs.get("artifacts", ()))
                else:  # our lease went to another attempt; that attempt owns the job now
                    log.warning("job %s: stopped attempt %d (lease taken over)", job.id, job.attempt)
            else:
                await self.db.leases.fail(job.id, job.attempt, self.owner, **kwargs)
        except StaleAttempt:
            log.warning("job %s: attempt %d was superseded; its result is dropped", job.id, job.attempt)

    def _release_memory(self) -> None:
        """Never keep GPU memory from a finished or failed job."""
        gc.collect()
        if self.pool.device.type == "cuda":
            torch.cuda.empty_cache()
