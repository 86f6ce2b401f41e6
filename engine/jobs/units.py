"""Jobs made of units — a study's cells, an animation's frames — seen from the render thread:
`UnitProgress` reports the steps inside a unit and each finished unit, bills every finished
unit at once, and stops the job when its requester's GPU time runs out part-way.

A finished unit is kept (as the job's blob) and reused by any later attempt, so its GPU time is charged at
once (`JobContext.charge`, which calls `leases.charge_partial`). The charge answers whether the
requester still has time left in every quota window; when they do not and units remain, the
job stops before the next step and ends failed with the rule (`QuotaSpent`), delivering what it
finished. The quota check at enqueue alone would let one long job overshoot a budget by hours;
this bounds it by one unit.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import QuotaSpent

if TYPE_CHECKING:
    from engine.diffusion.sampling import StepInfo
    from engine.jobs.context import JobContext


class UnitProgress:
    """The callbacks' side of a unit job: `step` inside unit `index` (0-based) of `units`, then
    `finished` once that unit is kept. Reports wait for the event loop's answer, so a cancel
    (or a lost lease, or a spent quota) stops the very next step through `ctx.cancel`."""

    def __init__(self, ctx: JobContext, units: int, unit_name: str):
        self.ctx, self.units, self.unit_name = ctx, units, unit_name
        self.unit_started = time.monotonic()
        ctx.live.frames = units

    def step(self, index: int, info: StepInfo) -> None:
        self.ctx.live.frame = index
        self.ctx.live.stepped(info)
        self.ctx.report_if_due()

    def finished(self, index: int, preview: Path) -> None:
        """Unit `index` is kept (a blob): show it (`preview`: a local picture of it or of the
        whole so far), bill it, report now."""
        live = self.ctx.live
        live.frame = index
        self.ctx.show(preview)
        live.step = live.total
        seconds, self.unit_started = time.monotonic() - self.unit_started, time.monotonic()
        if self.ctx.charge(seconds, f"{self.unit_name} {index + 1} of {self.units}", more=index + 1 < self.units):
            self.ctx.report()

    def quota_spent(self, artifacts: tuple[str, ...]) -> QuotaSpent:
        """The failure of a job stopped because its requester's GPU time ran out ('stopped after
        frame 3 of 48: …'): the rule and the fix, with what it finished attached."""
        done, name = self.ctx.live.frame + 1, self.unit_name
        return QuotaSpent(f"stopped after {name} {done} of {self.units} {name}s: the requester's "
                          f"GPU-time quota is used up (quota); what it finished is attached — ask "
                          f"an admin for more time (/disco-info shows when it resets)",
                          artifacts=artifacts)
