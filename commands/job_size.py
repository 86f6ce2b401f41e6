"""What the queue needs to know of a job's size, for every kind of job: its pixels, steps and
CLIP cuts (checked against the server's caps) and its frames (the ETA is steps × frames ×
seconds per step).

- a still: its size, steps and cuts; one frame (its images are counted by n_batches), plus
  GoBig's tiles counted as the whole renders their steps add up to;
- a study: its largest cell, so the caps see the worst case; one frame per cell;
- an animation: its frames, and the *average* denoising steps a frame costs (frame 0 usually
  costs more, turbo and `init_frame` frames nothing), so steps × frames is its whole work.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from commands.job_options import cuts_per_step
from engine.spec.animation import AnimationSpec
from engine.spec.gobig import gobig_units, tile_skip_steps
from engine.spec.render import RenderSpec
from engine.spec.study import StudySpec


@dataclass(frozen=True)
class JobSize:
    width: int
    height: int
    steps: int
    cuts: int
    frames: int

    def request_fields(self) -> dict[str, Any]:
        """The `storage.JobRequest` fields this size fills."""
        return asdict(self)


def still_size(spec: RenderSpec) -> JobSize:
    if spec.describe:  # one look per CLIP model at the image: no steps, no cuts
        return JobSize(spec.width, spec.height, 1, 0, 1)
    return JobSize(spec.width, spec.height, spec.steps, cuts_per_step(spec), 1 + gobig_frames(spec))


def gobig_frames(spec: RenderSpec) -> int:
    """GoBig's tiles as whole renders' worth of steps (a tile runs only the steps it does not
    skip); the enlarged image alone (`gobig_init`) has no render of its own to count."""
    if not spec.gobig:
        return 0
    work = math.ceil(gobig_units(spec) * (spec.steps - tile_skip_steps(spec)) / spec.steps)
    return work - 1 if spec.gobig_init else work


def study_size(study: StudySpec) -> JobSize:
    cells = [cell.spec for cell in study.cells()]
    return JobSize(max(c.width for c in cells), max(c.height for c in cells), max(c.steps for c in cells),
                   max(cuts_per_step(c) for c in cells), study.n_cells)


def animation_size(anim: AnimationSpec) -> JobSize:
    frames = anim.max_frames
    first, later = anim.frame_render_spec(0), anim.frame_render_spec(min(1, frames - 1))
    steps = max(1, math.ceil(anim.denoising_steps() / frames))
    return JobSize(anim.render.width, anim.render.height, steps,
                   max(cuts_per_step(first), cuts_per_step(later)), frames)


def job_size(spec: RenderSpec | StudySpec | AnimationSpec) -> JobSize:
    """The size of any job's spec."""
    if isinstance(spec, StudySpec):
        return study_size(spec)
    if isinstance(spec, AnimationSpec):
        return animation_size(spec)
    return still_size(spec)
