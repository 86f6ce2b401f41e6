"""The fleet as text: one line per worker, for `disco workers` and `/disco-admin workers`
(host, device, model sets, current job, last heartbeat, jobs done, seconds per step), and the
queued jobs no live worker can run."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

COLUMNS = ("worker", "host", "device", "models", "memory", "job", "heartbeat", "done", "s/step")
NO_WORKERS = ("no workers: start `disco bot` (it runs one engine per [engine] devices entry) or "
              "`disco worker --database URL` on a GPU host")


def _age(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.0f}h ago"


def fleet_row(worker: Any, now: float) -> dict[str, str]:
    """One worker (a `storage.WorkerInfo`) as the table's cells."""
    beat = _age(now - worker.heartbeat_at) + ("" if worker.live else " (not live)")
    return {
        "worker": worker.id, "host": worker.host, "device": worker.device,
        "models": ",".join(worker.model_sets) or "any",
        "memory": f"{worker.memory_gb:g} GB" if worker.memory_gb else "any",
        "job": worker.current_job_id or "idle", "heartbeat": beat, "done": str(worker.jobs_done),
        "s/step": f"{worker.seconds_per_step:.2f}" if worker.seconds_per_step else "-",
    }


def fleet_table(workers: Sequence[Any], now: float, *, limit: int = 4000) -> str:
    """An aligned text table of `workers`, cut at `limit` characters with a note of the rest."""
    if not workers:
        return NO_WORKERS
    rows = [dict(zip(COLUMNS, COLUMNS))] + [fleet_row(w, now) for w in workers]
    widths = {c: max(len(r[c]) for r in rows) for c in COLUMNS}
    lines = ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    live = sum(w.live for w in workers)
    footer = f"{live} live of {len(workers)} registered"
    text = "\n".join(lines)
    if len(text) + len(footer) + 1 > limit:
        kept = []
        for line in lines:
            if sum(len(k) + 1 for k in kept) + len(line) + len(footer) + 40 > limit:
                break
            kept.append(line)
        footer = f"… {len(lines) - len(kept)} more; {footer}"
        text = "\n".join(kept)
    return f"{text}\n{footer}"


def stranded_lines(stranded: Sequence[Any]) -> list[str]:
    """What to do about queued jobs no live worker can run (`storage.Stranded`, by model set)."""
    return [f"{s.jobs} queued job(s) of model set {s.model_set} are larger than every live worker "
            f"takes (--memory-gb, --max-pixels); start one that takes them, or cancel them"
            if s.model_set_served else
            f"{s.jobs} queued job(s) need model set {s.model_set}, which no live worker runs; start "
            f"one with `disco worker --models {s.model_set}`" for s in stranded]
