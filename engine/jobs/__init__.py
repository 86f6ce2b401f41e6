"""The engine process: queued jobs claimed from storage, rendered and reported.

The only engine package that imports storage.

- worker.py: `EngineWorker` claims a job, runs the handler of its kind (`HANDLERS`) in a
  render thread, heartbeats, and records the `Outcome` (outcome.py).
- context.py: `JobContext`, all a handler gets (job, folder, models, live progress, cancel,
  fenced `report` / `charge`); `Handler`; `fixed_seed`; `guarded_render` (out of GPU memory).
- still.py, study.py, animation.py: one handler per `JobKind`; units.py: progress and billing
  of jobs made of cells or frames; files.py: a job's folder, checkpoint and preview;
  degrade.py: the still's one cheaper retry after running out of GPU memory.
"""
