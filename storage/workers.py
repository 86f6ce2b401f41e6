"""The fleet: every engine process (`disco engine`, `disco worker`) registers what it can run in
the `workers` table, keeps a heartbeat there, and leaves on a clean exit.

- What a worker can run is a `WorkerFit`: its model sets, its GPU memory and the largest image
  it accepts. `db.leases.claim(owner, fit=...)` takes only jobs that fit (a job's `memory_gb`
  and `models` are fixed at enqueue by the commands layer), and among one user's fitting jobs
  prefers those whose models the worker holds (`fit.held`): storage/leases.py says how this
  combines with the fairness rule.
- A worker whose heartbeat is older than `STALE_SECONDS` is not live: `disco workers` shows it
  as such, and queue ETAs (storage/eta.py) count only live workers. Rows stale for a week are
  removed when any worker registers.
- Times are the database's clock, like leases: a worker whose own clock is off still reads
  right.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from .errors import InvalidValue

if TYPE_CHECKING:
    from .backend import Store

STALE_SECONDS = 60.0  # as a lease: a worker silent this long is gone
FORGET_SECONDS = 7 * 24 * 3600.0
MAX_HELD = 16  # the affinity keys a claim passes (the models of the worker's last jobs)


@dataclass(frozen=True)
class WorkerFit:
    """What a worker accepts. `model_sets` empty: any; `memory_gb` 0: unknown (any need);
    `max_pixels` 0: any size. `held`: the `models` keys of jobs whose models it has loaded."""

    model_sets: tuple[str, ...] = ()
    memory_gb: float = 0.0
    max_pixels: int = 0
    held: tuple[str, ...] = ()

    def validate(self) -> None:
        if len(self.model_sets) > 32 or any(not s or len(s) > 64 for s in self.model_sets):
            raise InvalidValue("a worker runs at most 32 model sets, each a name of 1 to 64 characters")
        if not 0 <= self.memory_gb <= 10_000 or self.max_pixels < 0:
            raise InvalidValue("a worker's memory_gb is 0 to 10000 and max_pixels ≥ 0 (0: no limit)")

    def can_run(self, model_set: str, memory_gb: float, width: int, height: int) -> bool:
        """The claim's filter, for code that has a job's row in hand (ETAs)."""
        return ((not self.model_sets or model_set in self.model_sets)
                and (self.memory_gb <= 0 or memory_gb <= self.memory_gb)
                and (self.max_pixels <= 0 or width * height <= self.max_pixels))

    def sql(self, alias: str) -> tuple[str, dict[str, Any]]:
        """The same filter as a WHERE fragment on jobs `alias`, with its parameters."""
        params: dict[str, Any] = {"fit_memory": float(self.memory_gb), "fit_pixels": int(self.max_pixels)}
        clauses = [f"(:fit_memory <= 0 OR {alias}.memory_gb <= :fit_memory)",
                   f"(:fit_pixels <= 0 OR {alias}.width * {alias}.height <= :fit_pixels)"]
        if self.model_sets:
            names = [f"fit_set{n}" for n in range(len(self.model_sets))]
            params.update(zip(names, self.model_sets))
            clauses.append(f"{alias}.model_set IN ({', '.join(':' + n for n in names)})")
        return " AND ".join(clauses), params

    def affinity_sql(self, alias: str) -> tuple[str, dict[str, Any]]:
        """An ORDER BY term: 0 for a job whose models this worker holds, else 1 ('' without any)."""
        held = self.held[-MAX_HELD:]
        if not held:
            return "", {}
        names = [f"held{n}" for n in range(len(held))]
        return (f"CASE WHEN {alias}.models IN ({', '.join(':' + n for n in names)}) THEN 0 ELSE 1 END, ",
                dict(zip(names, held)))


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    device: str
    model_sets: tuple[str, ...]
    memory_gb: float
    max_pixels: int
    started_at: float
    heartbeat_at: float
    current_job_id: str | None
    jobs_done: int
    seconds_per_step: float | None
    live: bool

    @property
    def fit(self) -> WorkerFit:
        return WorkerFit(self.model_sets, self.memory_gb, self.max_pixels)

    @classmethod
    def from_row(cls, row: Any, now: float) -> WorkerInfo:
        try:
            sets = tuple(str(s) for s in json.loads(row["model_sets_json"]))
        except (TypeError, ValueError):
            sets = ()
        return cls(row["id"], row["host"], row["device"], sets, float(row["memory_gb"]),
                   int(row["max_pixels"]), float(row["started_at"]), float(row["heartbeat_at"]),
                   row["current_job_id"], int(row["jobs_done"]), row["seconds_per_step"],
                   now - float(row["heartbeat_at"]) <= STALE_SECONDS)


async def live_workers(conn: Any, now: float) -> list[WorkerInfo]:
    """The workers whose heartbeat is fresh, read on `conn` (a transaction or snapshot)."""
    rows = await conn.execute_fetchall("SELECT * FROM workers WHERE heartbeat_at >= ? ORDER BY id",
                                       (now - STALE_SECONDS,))
    return [WorkerInfo.from_row(r, now) for r in rows]


def _check_text(name: str, value: str, limit: int = 200) -> None:
    if not value or len(value) > limit:
        raise InvalidValue(f"a worker's {name} is a non-empty text of at most {limit} characters")


class Workers:
    """The fleet's side of the database (`db.workers`)."""

    def __init__(self, db: Store):
        self._db = db

    async def register(self, worker_id: str, *, host: str, device: str, fit: WorkerFit) -> None:
        """Add (or restart) a worker: started now, nothing done yet."""
        for name, value in (("id", worker_id), ("host", host), ("device", device)):
            _check_text(name, value)
        fit.validate()
        async with self._db.transaction() as conn:
            now = await self._db.clock(conn)
            await conn.execute("DELETE FROM workers WHERE heartbeat_at < ? OR id = ?",
                               (now - FORGET_SECONDS, worker_id))
            await conn.execute(
                "INSERT INTO workers (id, host, device, model_sets_json, memory_gb, max_pixels, "
                "started_at, heartbeat_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (worker_id, host, device, json.dumps(list(fit.model_sets)), float(fit.memory_gb),
                 int(fit.max_pixels), now, now))

    async def heartbeat(self, worker_id: str, current_job_id: str | None) -> bool:
        """Keep the worker live and say what it runs; False when its row is gone (re-register)."""
        rows = await self._db.execute(
            "UPDATE workers SET heartbeat_at = ?, current_job_id = ? WHERE id = ? RETURNING id",
            (await self._db.clock(), current_job_id, worker_id))
        return bool(rows)

    async def job_done(self, worker_id: str, seconds_per_step: float | None) -> None:
        """Count a job this worker finished (whatever its outcome) and keep its speed."""
        await self._db.execute(
            "UPDATE workers SET jobs_done = jobs_done + 1, current_job_id = NULL, heartbeat_at = ?, "
            "seconds_per_step = COALESCE(?, seconds_per_step) WHERE id = ?",
            (await self._db.clock(), seconds_per_step, worker_id))

    async def deregister(self, worker_id: str) -> None:
        """A clean exit: the worker leaves the fleet."""
        await self._db.execute("DELETE FROM workers WHERE id = ?", (worker_id,))

    async def stranded(self) -> list[Stranded]:
        """The queued jobs no live worker fits, by model set (empty while no worker is live:
        then nothing runs at all, which the fleet's table shows)."""
        async with self._db.snapshot() as conn:
            fleet = await live_workers(conn, await self._db.clock(conn))
            if not fleet:
                return []
            groups = await conn.execute_fetchall(
                "SELECT model_set, memory_gb, width, height, COUNT(*) AS jobs FROM jobs "
                "WHERE state = 'queued' GROUP BY model_set, memory_gb, width, height")
        stuck: dict[str, int] = {}
        for group in groups:
            if not count_fitting(fleet, group):
                stuck[group["model_set"]] = stuck.get(group["model_set"], 0) + int(group["jobs"])
        served = {s for w in fleet for s in w.model_sets} if all(w.model_sets for w in fleet) else None
        return [Stranded(name, jobs, served is None or name in served) for name, jobs in sorted(stuck.items())]

    async def list(self) -> list[WorkerInfo]:
        """Every registered worker, live ones first, then by id."""
        now = await self._db.clock()
        rows = await self._db.execute("SELECT * FROM workers ORDER BY id")
        found = [WorkerInfo.from_row(r, now) for r in rows]
        return sorted(found, key=lambda w: (not w.live, w.id))


@dataclass(frozen=True)
class Stranded:
    """Queued jobs of one model set that no live worker can run: `model_set_served` says
    whether some live worker runs that set (then they are too large for every one of them)."""

    model_set: str
    jobs: int
    model_set_served: bool


def count_fitting(workers: Sequence[WorkerInfo], job: Any) -> int:
    """How many of `workers` can run the job row `job` (model set, memory, size)."""
    return sum(w.fit.can_run(job["model_set"], job["memory_gb"], job["width"], job["height"])
               for w in workers)
