"""Billing the finished units of a long job — a study's cells, an animation's frames — from the
render thread, and stopping the job when its requester's GPU time runs out part-way.

A finished unit is kept on disk and reused by any later attempt, so its GPU time is charged at
once (`leases.charge_partial`). The charge answers whether the requester still has time left
in every quota window; when they do not and units remain, the job stops before the next step
and ends failed with the rule (`QuotaSpent`), delivering what it finished. The quota check at
enqueue alone would let one long job overshoot a budget by hours; this bounds it by one unit.
"""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from storage import Job, StaleAttempt

from .errors import EngineError

if TYPE_CHECKING:
    from .worker import EngineWorker, _Live


class QuotaSpent(EngineError):
    """The requester's GPU-time quota ran out part-way; `artifacts` is what was finished."""

    def __init__(self, message: str, artifacts: tuple[str, ...] = ()):
        super().__init__(message)
        self.artifacts = tuple(artifacts)


def bill_unit(worker: EngineWorker, job: Job, live: _Live, seconds: float, note: str, *, more: bool) -> bool:
    """Charge `seconds` for the unit just finished (`note` says which); False when rendering
    must stop: the lease went to another attempt, or the quota is spent and `more` units remain
    (then `live.quota_spent` is set). Runs in the render thread; the charge runs on the loop."""
    charge = worker.db.leases.charge_partial(job.id, job.attempt, worker.owner, gpu_seconds=seconds, note=note)
    try:
        time_left = asyncio.run_coroutine_threadsafe(charge, worker._loop).result(60)
    except StaleAttempt:
        live.cancel.set()
        return False
    live.charged += seconds
    if not time_left and more:
        live.quota_spent = True
        live.cancel.set()
        return False
    return True


def quota_message(done: str, total: str) -> str:
    """'stopped after frame 3 of 48: …' — the rule and the fix, for the failure notice."""
    return (f"stopped after {done} of {total}: the requester's GPU-time quota is used up "
            f"(quota); what it finished is attached — ask an admin for more time (/disco-info "
            f"shows when it resets)")
