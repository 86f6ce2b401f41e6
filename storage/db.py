"""`Database`: the open SQLite file (storage.connection) with its repositories: `jobs` (the bot's
side of the queue), `leases` (the engine's), `guilds`, `quotas`, `presets` and `audit`."""
from __future__ import annotations

from pathlib import Path

from .audit import AuditLog
from .connection import Clock, Connection
from .guilds import Guilds
from .jobs import Jobs
from .leases import Leases
from .presets import Presets
from .quotas import Quotas

DATABASE_FILE = "disco.db"


def database_path(data_dir: str | Path) -> Path:
    """The queue's file in a data folder: the bot, the engine and `disco jobs` all open this one."""
    return Path(data_dir) / DATABASE_FILE


class Database(Connection):
    """Create with `await Database.open(path)`; close with `await db.close()` or use
    `async with`. Each repository shares this one connection, its lock and its clock."""

    def __init__(self, conn, path, now: Clock, busy_timeout_s: float):
        super().__init__(conn, path, now, busy_timeout_s)
        self.jobs = Jobs(self)
        self.leases = Leases(self)
        self.guilds = Guilds(self)
        self.quotas = Quotas(self)
        self.presets = Presets(self)
        self.audit = AuditLog(self)
