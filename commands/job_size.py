"""What the queue needs to know of a job's size, for every kind of job: its pixels, steps and
CLIP cuts (checked against the server's caps) and its frames (the ETA is steps × frames ×
seconds per step).

- a still: its size, steps and cuts; one frame (its images are counted by n_batches), plus
  GoBig's tiles counted as the whole renders their steps add up to;
- a study: its largest cell, so the caps see the worst case; one frame per cell;
- an animation: its frames, and the *average* denoising steps a frame costs (frame 0 usually
  costs more, turbo and `init_frame` frames nothing), so steps × frames is its whole work.

For the workers (storage/workers.py) every kind also carries the GPU memory its hungriest
render needs in DD's least hungry loop (`engine.spec.memory`), so a claim skips workers too
small for it, and the models it loads (`models`: diffusion model and CLIP models of each
render), so a worker already holding them is preferred.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from commands.gpu_memory import render_specs
from commands.job_options import cuts_per_step
from engine.spec.animation import AnimationSpec
from engine.spec.gobig import gobig_units, tile_skip_steps
from engine.spec.memory import predict_peak
from engine.spec.render import RenderSpec
from engine.spec.study import StudySpec


@dataclass(frozen=True)
class JobSize:
    width: int
    height: int
    steps: int
    cuts: int
    frames: int
    memory_gb: float = 0.0
    models: str = ""

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
    """The size of any job's spec, with its memory need and models."""
    if isinstance(spec, StudySpec):
        size = study_size(spec)
    elif isinstance(spec, AnimationSpec):
        size = animation_size(spec)
    else:
        size = still_size(spec)
    renders = render_specs(spec)
    need = max(predict_peak(r, cut_batches_per_pass=1).total_gb for r in renders)
    return replace(size, memory_gb=round(need, 2), models=models_key(renders))


def models_key(renders: list[RenderSpec]) -> str:
    """The models the renders load, one text (equal texts: the same models): `unet+clip,clip`,
    several combinations joined by `;` (a study whose axis is a model)."""
    combos = sorted({f"{r.diffusion_model}+{','.join(sorted(r.clip_models))}" for r in renders})
    return ";".join(combos)[:1000]
