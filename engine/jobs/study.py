"""A queued parameter study (job kind 'study') inside the engine process.

`render_study_job` runs in the worker's render thread: it re-validates the study, renders it
cell by cell with `engine.study.render.render_study` into the attempt's scratch folder (which
resumes from the cells already there: the worker brought back the cells earlier attempts kept
as blobs) and reports through the job's context:

- progress: cell k of n as frame k-1 of frames n, and the step within the cell;
- after each cell: the cell becomes the job's blob (only then is it done: another host may
  resume the study), the preview becomes `partial_grid.png`, and the cell's GPU time is billed at
  once (engine/jobs/units.py) — a finished cell is kept and reused, so its time is charged
  even if the study later fails or is cancelled (a failure refunds only the unbilled rest);
  when the requester's quota is spent with cells to go, the study stops with the partial grid;
- a cancel (or a lost lease) stops before the next step; a cancelled study still delivers the
  partial grid of its finished cells (billed, as above);
- out of GPU memory, it fails at once: cells are small, resumable units (no in-process retry);
- each distinct prompt text whose end CLIP does not read is a note on the result.

Returns the artifacts: the grid first, then every cell in order.
"""
from __future__ import annotations

from engine.diffusion.prompt_length import still_prompts
from engine.errors import Cancelled
from engine.jobs.context import Handler, JobContext
from engine.jobs.units import UnitProgress
from engine.spec.study import StudySpec
from engine.study.render import cell_path, render_study
from storage import Job


def study_of(job: Job) -> StudySpec:
    """The job's study, validated again (SpecError when it is not a valid study)."""
    return StudySpec.from_json(job.spec_json)


def render_study_job(ctx: JobContext, study: StudySpec) -> list[str]:
    """The render thread's body for a study job (see the module docstring)."""
    folder, live = ctx.folder, ctx.live
    progress = UnitProgress(ctx, study.n_cells, "cell")
    # The cells' distinct CLIP models and prompts (none for an unguided cell).
    for clip_models, prompts in dict.fromkeys((tuple(c.spec.clip_models), tuple(still_prompts(c.spec)))
                                              for c in study.cells()):
        ctx.note_unread_prompts(clip_models, prompts)

    def on_progress(k: int, n: int, info) -> None:
        if info is not None:
            progress.step(k - 1, info)
        elif ctx.push(cell_path(folder, k), "cell") is not None:  # cell k saved, partial grid redrawn
            progress.finished(k - 1, folder / "partial_grid.png")

    def run():
        return render_study(ctx.pool, study, folder, callback=on_progress,
                            should_cancel=ctx.cancel.is_set, pipeline=ctx.pipeline)

    try:
        result = ctx.guarded(run, f"out of GPU memory while rendering a {study.base.width}×"
                                  f"{study.base.height} study cell; use a smaller width and height "
                                  f"or fewer cutn_batches")
    except Cancelled as stop:
        grid = folder / "partial_grid.png"
        # The cells finished before the stop are billed, so they are delivered (a hand-back delivers nothing).
        partial = (str(grid),) if grid.exists() and not ctx.handing_back else ()
        if live.quota_spent:
            raise progress.quota_spent(partial) from None
        raise Cancelled(str(stop), artifacts=partial) from None
    return [str(result.grid)] + [str(p) for p in result.cells]


HANDLER: Handler[StudySpec] = Handler(spec_of=study_of, render=render_study_job)
