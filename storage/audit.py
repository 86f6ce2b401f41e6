"""The audit log: who changed which guild setting, limit, quota or preset, and when.

Writers call `write_audit` inside their own transaction, so a change and its record commit
together or not at all. Rows are append-only.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InvalidValue

if TYPE_CHECKING:
    from .backend import Store


@dataclass(frozen=True)
class AuditEntry:
    id: int
    guild_id: str
    actor_id: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    at: float


async def write_audit(conn: Any, now: float, guild_id: str,
                      actor_id: int | str | None, action: str, target: str | None,
                      detail: dict[str, Any]) -> int:
    """Append one entry on `conn` (the caller's open transaction); returns its id."""
    rows = await conn.execute_fetchall(
        "INSERT INTO audit_log (guild_id, actor_id, action, target, detail_json, at) "
        "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        (guild_id, None if actor_id is None else str(actor_id), action, target,
         json.dumps(detail, sort_keys=True, default=str), now))
    return int(rows[0][0])


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(id=row["id"], guild_id=row["guild_id"], actor_id=row["actor_id"],
                      action=row["action"], target=row["target"],
                      detail=json.loads(row["detail_json"]), at=row["at"])


class AuditLog:
    """Audit API (`db.audit`)."""

    def __init__(self, db: Store):
        self._db = db

    async def record(self, guild_id: int | str, actor_id: int | str | None, action: str,
                     target: str | None = None, detail: dict[str, Any] | None = None) -> AuditEntry:
        """Append an entry for an action taken outside storage (e.g. a moderator's cancel)."""
        if not action or len(action) > 64:
            raise InvalidValue("an audit action is a short name such as 'job.cancel' (1-64 chars)")
        now = await self._db.clock()
        async with self._db.transaction() as conn:
            entry_id = await write_audit(conn, now, str(guild_id), actor_id, action, target,
                                         detail or {})
        rows = await self._db.execute("SELECT * FROM audit_log WHERE id = ?", (entry_id,))
        return _entry(rows[0])

    async def list(self, guild_id: int | str, *, limit: int = 50,
                   before_id: int | None = None) -> list[AuditEntry]:
        """Newest first; pass the last entry's id as `before_id` for the next page."""
        limit = max(1, min(int(limit), 500))
        rows = await self._db.execute(
            "SELECT * FROM audit_log WHERE guild_id = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (str(guild_id), before_id if before_id is not None else 2**62, limit))
        return [_entry(row) for row in rows]
