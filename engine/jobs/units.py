"""Jobs made of units — a study's cells, an animation's frames — seen from the render thread:
`UnitProgress` reports the steps inside a unit and each finished unit, bills every finished
unit at once, and stops the job when its requester's GPU time runs out part-way.

A finished unit is kept on disk and reused by any later attempt, so its GPU time is charged at
once (`leases.charge_partial`). The charge answers whether the requester still has time left
in every quota window; when they do not and units remain, the job stops before the next step
and ends failed with the rule (`QuotaSpent`), delivering what it finished. The quota check at
enqueue alone would let one long job overshoot a budget by hours; this bounds it by one unit.
"""
from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from engine.errors import EngineError
from storage import Job, StaleAttempt

if TYPE_CHECKING:
    from engine.diffusion.sampling import StepInfo
    from engine.jobs.worker import EngineWorker, _Live


class QuotaSpent(EngineError):
    """The requester's GPU-time quota ran out part-way; `artifacts` is what was finished."""

    def __init__(self, message: str, artifacts: tuple[str, ...] = ()):
        super().__init__(message)
        self.artifacts = tuple(artifacts)


class UnitProgress:
    """The callbacks' side of a unit job: `step` inside unit `index` (0-based) of `units`, then
    `finished` once that unit is on disk. Reports wait for the event loop's answer, so a cancel
    (or a lost lease, or a spent quota) stops the very next step through `live.cancel`."""

    def __init__(self, worker: EngineWorker, job: Job, live: _Live, units: int, unit_name: str):
        self.worker, self.job, self.live = worker, job, live
        self.units, self.unit_name = units, unit_name
        self.last_report = 0.0
        self.unit_started = time.monotonic()
        live.frames = units

    def step(self, index: int, info: StepInfo) -> None:
        live = self.live
        live.frame, live.step, live.total = index, info.step, info.total
        live.seconds.append(info.seconds)
        if time.monotonic() - self.last_report >= self.worker.config.progress_every:
            self._report()

    def finished(self, index: int, preview_path: str) -> None:
        """Unit `index` is kept on disk: show it, bill it, report now."""
        live = self.live
        live.frame, live.preview_path = index, preview_path
        live.step = live.total
        seconds, self.unit_started = time.monotonic() - self.unit_started, time.monotonic()
        if self._bill(seconds, f"{self.unit_name} {index + 1} of {self.units}", more=index + 1 < self.units):
            self._report()

    def _report(self) -> None:
        self.last_report = time.monotonic()
        if self._wait(self.worker._report(self.job, self.live)):
            self.live.cancel.set()

    def _bill(self, seconds: float, note: str, *, more: bool) -> bool:
        """Charge the unit; False when rendering must stop: the lease went to another attempt,
        or the quota is spent and `more` units remain (then `live.quota_spent` is set)."""
        live = self.live
        try:
            time_left = self._wait(self.worker.db.leases.charge_partial(
                self.job.id, self.job.attempt, self.worker.owner, gpu_seconds=seconds, note=note))
        except StaleAttempt:
            live.cancel.set()
            return False
        live.charged += seconds
        if not time_left and more:
            live.quota_spent = True
            live.cancel.set()
            return False
        return True

    def _wait(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.worker._loop).result(60)


def quota_message(done: str, total: str) -> str:
    """'stopped after frame 3 of 48: …' — the rule and the fix, for the failure notice."""
    return (f"stopped after {done} of {total}: the requester's GPU-time quota is used up "
            f"(quota); what it finished is attached — ask an admin for more time (/disco-info "
            f"shows when it resets)")
