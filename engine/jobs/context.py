"""What a job's handler gets from the engine process, and the shape every handler fills.

- `JobContext`: one attempt of one job as its handler sees it — the job, its scratch folder
  (this process's own, engine/jobs/files.py), the model pool, the shared `DiscoPipeline` and
  `AnimationRenderer`, the live progress (`LiveProgress`), the cancel event, and the fenced
  writes that report it: `report()` (progress), `charge()` (billing a finished cell or frame)
  and `push()` (a file as the job's blob: a checkpoint, frame or cell counts as done only once
  it is one, since the next attempt may run on another host). Handlers run in the worker's
  render thread; those writes go to the event loop and wait for its answer, so a cancel, a
  lost lease or a spent quota stops the very next step through `cancel`.
- `Handler`: how one job kind is run — re-validate the spec, then render it.
- `fixed_seed`: the seed of a spec that has none, the same for every attempt of a job.
- `guarded_render` and `release_memory`: the one place that turns CUDA running out of memory
  into `OutOfMemory`, after the memory is freed.
- `WorkerConfig`: the worker's timings, which the context follows too.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import statistics
import threading
import time
import zlib
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import torch

from engine.diffusion.prompt_length import unread_prompt_notes
from engine.errors import OutOfMemory
from engine.jobs.files import materialise, portable
from engine.jobs.scratch import scratch_dir
from storage import (
    MAX_NOTE_CHARS,
    MAX_RESULT_NOTES,
    BlobTooLarge,
    Database,
    DatabaseLocked,
    DatabaseUnavailable,
    DiskFull,
    Job,
    StaleAttempt,
)

# A database that is restarting, busy, or out of disk space: the write is skipped and the next
# one tries again.
TRANSIENT = (DatabaseUnavailable, DatabaseLocked, DiskFull)

if TYPE_CHECKING:
    from engine.animation.renderer import AnimationRenderer
    from engine.diffusion.pipeline import DiscoPipeline
    from engine.diffusion.sampling import StepInfo
    from engine.models.pool import ModelPool

log = logging.getLogger("disco.engine")
S = TypeVar("S")
T = TypeVar("T")
CPU_OUT_OF_MEMORY = "DefaultCPUAllocator: can't allocate memory"  # torch's words on a CPU
ANSWER_TIMEOUT = 60.0  # seconds the render thread waits for the event loop's answer to a write


@dataclass
class WorkerConfig:
    """The engine process's timings (`disco engine` fills them from the config file)."""

    lease_seconds: float = 30.0
    heartbeat_seconds: float = 3.0
    checkpoint_every: int = 10       # steps between checkpoints
    progress_every: float = 0.5      # at most one progress write per this many seconds
    poll_seconds: float = 1.0        # idle wait between claims


@dataclass
class LiveProgress:
    """What the render thread last saw; every progress write sends it to the job's row."""

    step: int = 0
    total: int = 0
    seconds: list[float] = field(default_factory=list)
    preview_path: str | None = None      # blob references (storage/blobs.py)
    checkpoint_path: str | None = None
    preview_file: Path | None = None     # the latest local preview, stored at the next write
    frame: int | None = None     # the study cell or animation frame (0-based) of `frames`
    frames: int | None = None
    charged: float = 0.0         # GPU seconds this attempt already billed (cells, frames)
    quota_spent: bool = False    # stopped because the requester's GPU time ran out

    def stepped(self, info: StepInfo) -> None:
        """A denoising step is done: where it is, and how long it took."""
        self.step, self.total = info.step, info.total
        self.seconds.append(info.seconds)

    def seconds_per_step(self, last: int | None = None) -> float | None:
        """The median step time (of the `last` steps only, for a live ETA); None before any."""
        samples = self.seconds[-last:] if last else self.seconds
        return statistics.median(samples) if samples else None


def fixed_seed(job: Job) -> int:
    """The seed for a spec queued without one: the job's own, else one derived from its id, so
    an attempt that resumes another draws the same noise."""
    return job.seed if job.seed is not None else zlib.crc32(job.id.encode())


def release_memory(device: torch.device) -> None:
    """Never keep GPU memory from a finished or failed render."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def guarded_render(render: Callable[[], T], device: torch.device, message: str) -> T:
    """`render()`; when CUDA (or the CPU's allocator) runs out of memory, the memory is
    released and OutOfMemory(message) raised. The release happens after the except block,
    once the traceback — and the tensors its frames hold — is gone."""
    try:
        return render()
    except torch.cuda.OutOfMemoryError:
        pass
    except RuntimeError as exc:  # the CPU allocator has no exception type of its own
        if CPU_OUT_OF_MEMORY not in str(exc):
            raise
    release_memory(device)
    raise OutOfMemory(message)


class JobContext:
    """One attempt of one job: built on the event loop by the worker, used by the handler in
    the render thread. Every write is fenced by the attempt (a superseded one stops)."""

    def __init__(self, job: Job, *, db: Database, owner: str, data_dir: Path, pool: ModelPool,
                 pipeline: DiscoPipeline, animator: AnimationRenderer, config: WorkerConfig):
        self.job, self.pool, self.pipeline, self.animator = job, pool, pipeline, animator
        self.db, self.owner, self.data_dir, self.config = db, owner, Path(data_dir), config
        self.live = LiveProgress()
        self.cancel = threading.Event()
        self.handing_back = False  # the engine is stopping: the job goes back to the queue, whole
        self.loop = asyncio.get_running_loop()
        self.last_report = 0.0
        self.folder = scratch_dir(self.data_dir, job.id)
        self.inputs: dict[str, str] = {}  # local input file → its blob reference
        self._pushed: dict[str, tuple[tuple[int, int], str]] = {}  # name → (size, mtime), reference
        self.notes: list[str] = []  # what the user should read under the result

    # ---- the job's files -------------------------------------------------------------------

    async def materialise(self) -> None:
        """Fill a fresh scratch folder from the job's blobs (its inputs, and what an earlier
        attempt kept) and point the job's spec at the local inputs."""
        spec_json, self.inputs, kept = await materialise(self.db, self.job, self.folder)
        self.job = replace(self.job, spec_json=spec_json)
        for file in kept:
            self._pushed[file.name] = (_signature(self.folder / file.name), file.ref)

    def portable(self, spec_json: str) -> str:
        """`spec_json` with the local inputs named by their blobs (what checkpoints are keyed by)."""
        return portable(spec_json, self.inputs)

    def push(self, path: Path, role: str) -> str | None:
        """From the render thread: `path` (in the scratch folder) becomes the job's blob `role`
        under its relative name, fenced by the attempt. Returns its reference; None when the
        attempt lost the job or was cancelled (`cancel` is set). While the database is away or
        its disk full, the render waits here and tries again: what it pushes is what a resume
        starts from."""
        try:
            return self._until_answered(f"{path.name} not stored yet", lambda: self.put_file(path, role))[1]
        except StaleAttempt:
            self._lost_lease()
            self.cancel.set()
            return None

    def show(self, preview: Path) -> None:
        """From the render thread: `preview` (a local file) is the latest picture; the next
        progress write stores it as the job's preview blob together with the row's reference,
        so the reference the bot reads is always the blob just stored."""
        self.live.preview_file = Path(preview)

    async def put_file(self, path: Path, role: str) -> str:
        """`push` on the event loop; a file unchanged since it was stored is not sent again."""
        name = Path(path).relative_to(self.folder).as_posix()
        signature = _signature(Path(path))
        known = self._pushed.get(name)
        if known is not None and known[0] == signature:
            return known[1]
        data = await asyncio.to_thread(Path(path).read_bytes)
        ref = await self.db.blobs.put(data, name, job_id=self.job.id, role=role,
                                      fence=(self.job.attempt, self.owner))
        self._pushed[name] = (signature, ref)
        return ref

    async def publish(self, artifacts: Sequence[str]) -> tuple[str, ...]:
        """The results as blobs (role output), in order: what `complete` or `fail` records."""
        return tuple([await self.put_file(Path(path), "output") for path in artifacts])

    def discard(self) -> None:
        """The attempt is recorded: its scratch folder goes (its blobs stay)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def guarded(self, render: Callable[[], T], message: str) -> T:
        """`guarded_render` on this job's device: out of memory becomes OutOfMemory(message)."""
        return guarded_render(render, self.pool.device, message)

    # ---- from the render thread ------------------------------------------------------------

    def note(self, text: str) -> None:
        """A short sentence the user reads under the result: the engine changed what it renders
        (a cheaper way after running out of memory) or did not use all of the request (CLIP
        did not read a prompt's end). Kept once, at most MAX_RESULT_NOTES of them, each cut to
        MAX_NOTE_CHARS. Each attempt notes afresh: a resumed one renders the same way again."""
        text = " ".join(text.split())
        if len(text) > MAX_NOTE_CHARS:
            text = text[:MAX_NOTE_CHARS - 1] + "…"
        if text and text not in self.notes and len(self.notes) < MAX_RESULT_NOTES:
            self.notes.append(text)

    def note_unread_prompts(self, clip_models: Sequence[str], prompts: Iterable[tuple[str, str]]) -> None:
        """A note for each prompt text (label, text) that one of `clip_models` does not read
        to the end (engine/diffusion/prompt_length.py); loads those models, as the render will."""
        for note in unread_prompt_notes(self.pool, clip_models, prompts):
            self.note(note)

    def report(self) -> bool:
        """One fenced progress write, waiting for the answer; sets and returns `cancel` when
        the job must stop (a cancel was requested, or the lease went to another attempt)."""
        self.last_report = time.monotonic()
        if self._wait(self.write_progress()):
            self.cancel.set()
        return self.cancel.is_set()

    def report_if_due(self) -> None:
        """`report()`, at most once per `config.progress_every` seconds."""
        if time.monotonic() - self.last_report >= self.config.progress_every:
            self.report()

    def charge(self, seconds: float, note: str, *, more: bool) -> bool:
        """Bill finished work that is kept (a cell, a frame) at once. False when rendering must
        stop: the lease went to another attempt, or the requester's GPU time is spent and
        `more` units remain (then `live.quota_spent` is set); `cancel` is set either way.
        While the database is away the render waits here and tries again, as `push` does (a
        unit is billed once however often its charge is sent: `leases.charge_partial`)."""
        try:
            answered, time_left = self._until_answered(f"{note} not billed yet", lambda: self.db.leases.charge_partial(
                self.job.id, self.job.attempt, self.owner, gpu_seconds=seconds, note=note))
        except StaleAttempt:
            self.cancel.set()
            return False
        if not answered:
            return False
        self.live.charged += seconds
        if not time_left and more:
            self.live.quota_spent = True
            self.cancel.set()
            return False
        return True

    def stop_for_hand_back(self) -> None:
        """The engine is stopping: the render stops at its next step and the job goes back to
        the queue whole (nothing it finished is delivered, so no partial result is made)."""
        self.handing_back = True
        self.cancel.set()

    def _until_answered(self, what: str, write: Callable[[], Coroutine[Any, Any, T]]) -> tuple[bool, T | None]:
        """From the render thread: `write()`'s answer, trying again while the database is away
        or its disk full (`what` says what waits, in the log); (False, None) when the job was
        cancelled meanwhile. StaleAttempt passes to the caller."""
        wait = self.config.poll_seconds
        while True:
            try:
                return True, self._wait(write())
            except TRANSIENT as exc:
                log.warning("job %s: %s (%s); retrying in %.0f s", self.job.id, what, exc, wait)
                if self.cancel.wait(wait):
                    return False, None
                wait = min(wait * 2, 30.0)

    def _wait(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(ANSWER_TIMEOUT)

    # ---- on the event loop -------------------------------------------------------------------

    async def write_progress(self) -> bool:
        """One fenced progress write (it extends the lease too), with the latest preview;
        returns whether to stop."""
        job, live = self.job, self.live
        try:
            await self._store_preview()
            return await self.db.leases.progress(
                job.id, job.attempt, self.owner, step=live.step, total=live.total, frame=live.frame,
                frames=live.frames, seconds_per_step=live.seconds_per_step(last=20),
                preview_path=live.preview_path, checkpoint_path=live.checkpoint_path,
                lease_seconds=self.config.lease_seconds)
        except StaleAttempt:
            self._lost_lease()
            return True
        except TRANSIENT as exc:
            log.warning("job %s: progress not saved (%s); rendering on", job.id, exc)
            return False

    async def write_last_progress(self) -> None:
        """Before `complete`: the last steps since the last progress write (all of them done).
        Raises StaleAttempt when the attempt was superseded."""
        live = self.live
        await self._store_preview()
        if live.total:
            await self.db.leases.progress(self.job.id, self.job.attempt, self.owner, step=live.total,
                                          total=live.total, preview_path=live.preview_path,
                                          frame=live.frame, frames=live.frames)

    async def _store_preview(self) -> None:
        """The latest preview as the job's blob (unchanged ones are not sent again); a preview
        over the size cap, or one the database could not take now, is skipped."""
        if self.live.preview_file is None:
            return
        try:
            self.live.preview_path = await self.put_file(self.live.preview_file, "preview")
        except (*TRANSIENT, BlobTooLarge, FileNotFoundError) as exc:
            log.warning("job %s: preview not stored (%s)", self.job.id, exc)

    async def keep_alive(self) -> None:
        """Heartbeats until cancelled: keeps the lease alive between progress writes (model
        loading, long steps, saving) and learns about cancels."""
        job = self.job
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            try:
                cancel = await self.db.leases.heartbeat(job.id, job.attempt, self.owner,
                                                        lease_seconds=self.config.lease_seconds)
            except StaleAttempt:
                self._lost_lease()
                cancel = True
            except TRANSIENT as exc:
                log.warning("job %s: heartbeat failed (%s); retrying", job.id, exc)
                cancel = False
            if cancel:
                self.cancel.set()

    def _lost_lease(self) -> None:
        log.warning("job %s: attempt %d lost its lease; stopping", self.job.id, self.job.attempt)


def _signature(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@dataclass(frozen=True)
class Handler(Generic[S]):
    """How the engine runs one job kind. `spec_of` re-validates the queued spec (SpecError when
    it is invalid) and fixes what every attempt must share (the seed); `render` runs in the
    render thread and returns the artifacts, raising an engine error (engine/errors.py) when
    the job stops short."""

    spec_of: Callable[[Job], S]
    render: Callable[[JobContext, S], list[str]]
