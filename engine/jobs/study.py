"""A queued parameter study (job kind 'study') inside the engine process.

`render_study_job` runs in the worker's render thread: it re-validates the study, renders it
cell by cell with `engine.study.render.render_study` into `data/jobs/<id>/` (which resumes from
the cells already on disk) and reports through the worker's event loop:

- progress: cell k of n as frame k-1 of frames n, and the step within the cell;
- after each cell: the preview becomes `partial_grid.png`, and the cell's GPU time is billed at
  once (engine/jobs/units.py) — a finished cell is kept and reused, so its time is charged
  even if the study later fails or is cancelled (a failure refunds only the unbilled rest);
  when the requester's quota is spent with cells to go, the study stops with the partial grid;
- a cancel (or a lost lease) stops before the next step.

Returns the artifacts: the grid first, then every cell in order.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from engine.errors import Cancelled
from engine.jobs.files import job_dir
from engine.jobs.units import QuotaSpent, UnitProgress, quota_message
from engine.spec.study import StudySpec
from engine.study.render import render_study
from storage import Job

if TYPE_CHECKING:
    from engine.jobs.worker import EngineWorker, _Live


def study_of(job: Job) -> StudySpec:
    """The job's study, validated again (SpecError when it is not a valid study)."""
    return StudySpec.from_json(job.spec_json)


def render_study_job(worker: EngineWorker, job: Job, study: StudySpec, live: _Live) -> list[str]:
    """The render thread's body for a study job (see the module docstring)."""
    from engine.jobs.worker import OutOfMemory  # the worker imports this module: resolve at call time

    folder = job_dir(worker.data_dir, job.id)
    folder.mkdir(parents=True, exist_ok=True)
    progress = UnitProgress(worker, job, live, study.n_cells, "cell")

    def on_progress(k: int, n: int, info) -> None:
        if info is not None:
            progress.step(k - 1, info)
        else:  # cell k is saved and partial_grid.png redrawn
            progress.finished(k - 1, str(folder / "partial_grid.png"))

    try:
        result = render_study(worker.pool, study, folder, callback=on_progress,
                              should_cancel=live.cancel.is_set, pipeline=worker.pipeline)
    except Cancelled:
        if live.quota_spent:
            grid = folder / "partial_grid.png"
            raise QuotaSpent(quota_message(f"cell {live.frame + 1}", f"{study.n_cells} cells"),
                             artifacts=(str(grid),) if grid.exists() else ()) from None
        raise
    except torch.cuda.OutOfMemoryError:
        pass  # handled below, outside the except block, so the traceback frees its tensors
    else:
        return [str(result.grid)] + [str(p) for p in result.cells]
    worker._release_memory()
    raise OutOfMemory(f"out of GPU memory while rendering a {study.base.width}×{study.base.height} "
                      f"study cell; use a smaller width and height or fewer cutn_batches")
