"""The one cheaper retry after running out of GPU memory.

Activation memory in a step grows with the cuts per CLIP batch and with a grad-enabled pass
through the UNet. So the retry first keeps the same total number of cuts but takes them in
twice as many, half-size batches; if the cuts cannot be split further it switches to the
secondary model. The result of `cheaper_spec` says what it changed, for the user.
"""
from __future__ import annotations

from engine.spec.render import RenderSpec
from engine.spec.schedules import format_schedule

MAX_CUTN_BATCHES = 64


def _halve(values: tuple[int, ...]) -> tuple[int, ...]:
    return tuple((v + 1) // 2 for v in values)


def cheaper_spec(spec: RenderSpec) -> tuple[RenderSpec, str] | None:
    """A spec that needs less memory per step, and a sentence saying how; None if there is none."""
    schedules = spec.schedules()
    biggest = max(o + i for o, i in zip(schedules.overview, schedules.innercut))
    if biggest > 1 and spec.cutn_batches * 2 <= MAX_CUTN_BATCHES:
        cheaper = spec.replace(cutn_batches=spec.cutn_batches * 2,
                               cut_overview=format_schedule(_halve(schedules.overview)),
                               cut_innercut=format_schedule(_halve(schedules.innercut)))
        return cheaper, (f"retried with cutn_batches {cheaper.cutn_batches} and half the cuts per "
                         "batch (the same cuts in all)")
    if not spec.use_secondary_model:
        return spec.replace(use_secondary_model=True), "retried with the secondary model"
    return None


def out_of_memory_advice(spec: RenderSpec) -> str:
    return (f"ran out of GPU memory at {spec.width}×{spec.height} with {len(spec.clip_models)} CLIP "
            "model(s); use a smaller size, fewer or smaller CLIP models, or use_secondary_model=true")
