"""The pieces every job handler shares: one handler per job kind, the seed rule, the guarded
render that owns out-of-memory, and the mapping from a render's exception to the outcome."""
from __future__ import annotations

import asyncio
import logging

import pytest
import torch

import engine.jobs.context as context
from engine.errors import (
    Cancelled,
    DownloadError,
    EngineError,
    ModelError,
    OutOfMemory,
    QuotaSpent,
    SpecError,
)
from engine.jobs.context import fixed_seed, guarded_render
from engine.jobs.outcome import Failed, Stopped, outcome_of
from engine.jobs.worker import HANDLERS
from storage import MAX_NOTE_CHARS, MAX_RESULT_NOTES, BlobTooLarge, JobKind, NotFound, StaleAttempt


class FakeJob:
    """The two fields of a `storage.Job` that the seed and the outcome rules read."""

    def __init__(self, id: str = "job-1", seed: int | None = None):
        self.id, self.seed = id, seed


def test_every_job_kind_has_a_handler():
    assert set(HANDLERS) == set(JobKind)


def test_the_seed_is_the_jobs_own_else_fixed_by_its_id():
    assert fixed_seed(FakeJob(seed=7)) == 7 and fixed_seed(FakeJob(seed=0)) == 0
    assert fixed_seed(FakeJob("abc")) == fixed_seed(FakeJob("abc")) != fixed_seed(FakeJob("abd"))


def test_a_jobs_notes_are_kept_once_and_bounded_in_count_and_length(tmp_path):
    async def made():
        return context.JobContext(FakeJob(), db=None, owner="engine:test:1", data_dir=tmp_path, pool=None,
                                  pipeline=None, animator=None, config=context.WorkerConfig())
    ctx = asyncio.run(made())
    ctx.note("Out of GPU memory at first;\n retried.")
    ctx.note("Out of GPU memory at first; retried.")
    ctx.note("  ")
    assert ctx.notes == ["Out of GPU memory at first; retried."]
    ctx.note("x" * 1000)
    assert ctx.notes[1] == "x" * (MAX_NOTE_CHARS - 1) + "…"
    for number in range(MAX_RESULT_NOTES):
        ctx.note(f"note {number}")
    assert len(ctx.notes) == MAX_RESULT_NOTES and ctx.notes[-1] == f"note {MAX_RESULT_NOTES - 3}"


def test_guarded_render_turns_cuda_oom_into_out_of_memory_after_releasing(monkeypatch):
    released = []
    monkeypatch.setattr(context, "release_memory", lambda device: released.append(device))

    def runs_out():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")

    with pytest.raises(OutOfMemory, match="use less") as caught:
        guarded_render(runs_out, torch.device("cpu"), "use less")
    assert released == [torch.device("cpu")]
    assert caught.value.__context__ is None  # raised outside the except block: no traceback kept
    assert guarded_render(lambda: 3, torch.device("cpu"), "unused") == 3
    with pytest.raises(Cancelled):  # every other error passes through untouched
        guarded_render(lambda: (_ for _ in ()).throw(Cancelled()), torch.device("cpu"), "unused")
    assert len(released) == 1


def test_guarded_render_turns_a_cpu_allocation_failure_into_out_of_memory(monkeypatch):
    """A CPU worker (`disco worker --device cpu`) given a job too large for its RAM: torch's CPU
    allocator raises a plain RuntimeError, which used to be an 'unexpected error' retried three
    times with a traceback each; it is the same OutOfMemory, with what to change."""
    monkeypatch.setattr(context, "release_memory", lambda device: None)

    def runs_out():
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 90596966400 bytes. Error code 12")

    with pytest.raises(OutOfMemory, match="use less"):
        guarded_render(runs_out, torch.device("cpu"), "use less")
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other runtime errors pass through
        guarded_render(lambda: (_ for _ in ()).throw(RuntimeError("shape mismatch")), torch.device("cpu"), "x")


@pytest.mark.parametrize("error,expected", [
    (Cancelled("stop", artifacts=("a.mp4",)), Stopped(("a.mp4",))),
    (QuotaSpent("spent", artifacts=("g.png",)), Failed("quota_exceeded", "spent", False, ("g.png",))),
    (OutOfMemory("smaller"), Failed("out_of_memory", "smaller", False)),
    (SpecError("bad"), Failed("specerror", "bad", False)),
    (ModelError("gone"), Failed("modelerror", "gone", False)),
    (DownloadError("net"), Failed("downloaderror", "net", False)),
    (EngineError("odd"), Failed("engine_error", "the engine hit an unexpected error (EngineError)", True)),
    (KeyError("x"), Failed("engine_error", "the engine hit an unexpected error (KeyError)", True)),
    # Job files: a fenced write of a superseded attempt, an input blob swept, a file over the cap.
    (StaleAttempt("J", 1, "o", "running", 2), Stopped()),
    (NotFound("init.png is no longer kept"), Failed("files_gone", "init.png is no longer kept", False)),
    (BlobTooLarge("blob_bytes", 10, 11, "x is big", "fix"),
     Failed("blob_bytes", "x is big (limit blob_bytes=10); fix", False)),
])
def test_outcome_of_a_render_error(error, expected, caplog):
    with caplog.at_level(logging.ERROR, logger="disco.engine"):
        assert outcome_of(error, FakeJob()) == expected  # type: ignore[arg-type]
    unexpected = isinstance(expected, Failed) and expected.retryable
    assert bool(caplog.records) == unexpected  # only the unexpected is logged whole
