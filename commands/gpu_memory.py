"""The GPU memory rule: a job that cannot fit the engine GPU's memory is refused when it is
queued, with what it needs and what would fit, instead of running out of memory later.

The server's GPU memory is `[engine] gpu_memory_gb` in the config file (the bot never imports
torch, so it cannot ask the device); 0 means unknown and nothing is refused. The prediction is
`engine.spec.memory` (its coefficients are data); the engine's out-of-memory retry stays as
the last resort.
"""
from __future__ import annotations

from commands.errors import CommandError
from engine.spec.animation import AnimationSpec
from engine.spec.memory import memory_refusal
from engine.spec.render import RenderSpec
from engine.spec.study import StudySpec


def render_specs(spec: RenderSpec | StudySpec | AnimationSpec) -> list[RenderSpec]:
    """The still renders a job runs: itself, every study cell, an animation's first two frames."""
    if isinstance(spec, StudySpec):
        return [cell.spec for cell in spec.cells()]
    if isinstance(spec, AnimationSpec):
        return [spec.frame_render_spec(0), spec.frame_render_spec(min(1, spec.max_frames - 1))]
    return [spec]


def check_gpu_memory(spec: RenderSpec | StudySpec | AnimationSpec, gpu_memory_gb: float) -> None:
    """CommandError (rule `gpu_memory`) when any render of the job cannot fit `gpu_memory_gb`."""
    if gpu_memory_gb <= 0:
        return
    for render in render_specs(spec):
        refusal = memory_refusal(render, gpu_memory_gb)
        if refusal:
            raise CommandError(f"{refusal} (rule: gpu_memory)", rule="gpu_memory")
