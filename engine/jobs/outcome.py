"""How one attempt of a job ended, as the worker records it: `Completed`, `Stopped` (a cancel,
or the lease went to another attempt) or `Failed` — and `outcome_of`, the one place that maps
an exception raised by a render to an outcome, rule by rule."""
from __future__ import annotations

import logging
from dataclasses import dataclass

from engine.errors import Cancelled, ModelError, OutOfMemory, QuotaSpent, SpecError
from storage import BlobTooLarge, Job, NotFound, StaleAttempt

log = logging.getLogger("disco.engine")


@dataclass(frozen=True)
class Completed:
    """Every artifact is written (as blobs once recorded). `already_charged`: GPU seconds billed
    unit by unit during the attempt, so `complete` charges only the balance of `gpu_seconds`.
    `notes`: what the user should read under the result (`JobContext.note`)."""

    artifacts: tuple[str, ...]
    gpu_seconds: float
    seconds_per_step: float | None = None
    already_charged: float = 0.0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Stopped:
    """The render stopped before the end: a cancel was requested (then `artifacts`, what was
    finished, are still delivered), or the attempt lost its lease to another one."""

    artifacts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Failed:
    """The attempt failed with `code` and a message the user can act on; a `retryable` failure
    goes back to the queue while attempts remain. `artifacts`: what was finished and delivered."""

    code: str
    message: str
    retryable: bool
    artifacts: tuple[str, ...] = ()


Outcome = Completed | Stopped | Failed


def outcome_of(error: Exception, job: Job) -> Stopped | Failed:
    """How an attempt whose render raised `error` ended: the first rule that matches wins."""
    match error:
        case Cancelled():
            return Stopped(error.artifacts)
        case QuotaSpent():
            return Failed("quota_exceeded", str(error), retryable=False, artifacts=error.artifacts)
        case StaleAttempt():  # a fenced file write: the job went to another attempt
            return Stopped()
        case NotFound():  # an input's blob is gone (kept past its retention, or removed)
            return Failed("files_gone", str(error), retryable=False)
        case BlobTooLarge():
            return Failed("blob_bytes", str(error), retryable=False)
        case OutOfMemory():
            return Failed("out_of_memory", str(error), retryable=False)
        case SpecError() | ModelError():  # the job (or this host's models) can't work: no retry
            return Failed(type(error).__name__.lower(), str(error), retryable=False)
        case _:  # unexpected: log it whole, tell the user briefly, retry later
            log.error("job %s: render failed", job.id, exc_info=error)
            return Failed("engine_error", f"the engine hit an unexpected error ({type(error).__name__})",
                          retryable=True)
