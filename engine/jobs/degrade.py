"""The one cheaper retry of a still after running out of GPU memory.

Activation memory in a step grows with the cuts per CLIP batch and with a grad-enabled pass
through the UNet. When the cut batches shared CLIP passes, the retry takes them one per pass
(DD's loop: the same image, only slower). Otherwise it keeps the same total number of cuts but
takes them in twice as many, half-size batches; if the cuts cannot be split further it switches
to the secondary model. `cheaper_way` says what it changed, for the user: the job notes it.
"""
from __future__ import annotations

from typing import NamedTuple

from engine.spec.render import RenderSpec
from engine.spec.schedules import format_schedule

MAX_CUTN_BATCHES = 64


class CheaperWay(NamedTuple):
    spec: RenderSpec
    batch_cuts: bool  # may cut batches share a CLIP pass (DiscoPipeline's `batch_cuts`)
    how: str  # what changed, a phrase the user reads ("retried with the secondary model")


def _halve(values: tuple[int, ...]) -> tuple[int, ...]:
    return tuple((v + 1) // 2 for v in values)


def cheaper_way(spec: RenderSpec) -> CheaperWay | None:
    """How to render `spec` in less memory per step, and a phrase saying how; None if there is
    no cheaper way. The same spec always gets the same answer (a resumed attempt relies on it)."""
    if spec.cutn_batches > 1:
        return CheaperWay(spec, False, "retried with one cut batch per CLIP pass (the same image, only slower)")
    schedules = spec.schedules()
    biggest = max(o + i for o, i in zip(schedules.overview, schedules.innercut))
    if biggest > 1 and spec.cutn_batches * 2 <= MAX_CUTN_BATCHES:
        cheaper = spec.replace(cutn_batches=spec.cutn_batches * 2,
                               cut_overview=format_schedule(_halve(schedules.overview)),
                               cut_innercut=format_schedule(_halve(schedules.innercut)))
        return CheaperWay(cheaper, True, f"retried with cutn_batches {cheaper.cutn_batches} and half the "
                                         "cuts per batch (the same cuts in all)")
    if not spec.use_secondary_model:
        return CheaperWay(spec.replace(use_secondary_model=True), True,
                          "retried with the secondary model (use_secondary_model=true)")
    return None


def out_of_memory_advice(spec: RenderSpec) -> str:
    return (f"ran out of GPU memory at {spec.width}×{spec.height} with {len(spec.clip_models)} CLIP "
            "model(s); use a smaller size, fewer or smaller CLIP models, or use_secondary_model=true")
