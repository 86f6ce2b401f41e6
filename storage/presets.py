"""Named render presets: a member's own, or guild-wide ones that admins save for everyone.

A preset stores a spec JSON (opaque to storage; the commands layer validates it when it is used,
since specs evolve). Look-ups prefer the member's own preset over a guild-wide one of the same
name. Names: 1-32 characters of letters, digits, '-' and '_', case-insensitive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .audit import write_audit
from .errors import CapExceeded, InvalidValue, NotFound
from .guilds import Snowflake, sid

if TYPE_CHECKING:
    from .backend import Store

MAX_PRESETS_PER_OWNER = 25
MAX_SPEC_CHARS = 100_000
GUILD_WIDE = ""  # owner_id of guild-wide presets
_NAME = re.compile(r"[a-z0-9_-]{1,32}")


@dataclass(frozen=True)
class Preset:
    guild_id: str
    owner_id: str | None  # None: guild-wide
    name: str
    spec_json: str
    spec_version: int
    created_at: float
    updated_at: float


def preset_name(name: str) -> str:
    cleaned = name.strip().lower()
    if not _NAME.fullmatch(cleaned):
        raise InvalidValue(f"preset name {name!r} is not allowed: use 1-32 letters, digits, '-' "
                           f"or '_', e.g. 'misty-forest'")
    return cleaned


def _preset(row: Any) -> Preset:
    return Preset(row["guild_id"], row["owner_id"] or None, row["name"], row["spec_json"],
                  row["spec_version"], row["created_at"], row["updated_at"])


class Presets:
    """Preset API (`db.presets`). owner_id=None means the guild-wide preset."""

    def __init__(self, db: Store):
        self._db = db

    async def save(self, guild_id: Snowflake, name: str, spec_json: str, spec_version: int, *,
                   owner_id: Snowflake | None = None,
                   actor_id: Snowflake | None = None) -> Preset:
        """Create or replace a preset."""
        if not isinstance(spec_json, str) or len(spec_json) > MAX_SPEC_CHARS:
            raise InvalidValue(f"a preset's spec is JSON text of at most {MAX_SPEC_CHARS:,} characters")
        gid, key, now = sid(guild_id), preset_name(name), await self._db.clock()
        owner = GUILD_WIDE if owner_id is None else sid(owner_id)
        async with self._db.transaction() as conn:
            exists = await conn.execute_fetchall(
                "SELECT 1 FROM presets WHERE guild_id = ? AND owner_id = ? AND name = ?",
                (gid, owner, key))
            if not exists:
                count = (await conn.execute_fetchall(
                    "SELECT COUNT(*) FROM presets WHERE guild_id = ? AND owner_id = ?",
                    (gid, owner)))[0][0]
                if count >= MAX_PRESETS_PER_OWNER:
                    raise CapExceeded("max_presets", MAX_PRESETS_PER_OWNER, count + 1,
                                      f"{'this server has' if owner_id is None else 'you have'} "
                                      f"{count} presets already",
                                      "delete one you no longer use (/preset delete)")
            rows = await conn.execute_fetchall(
                "INSERT INTO presets (guild_id, owner_id, name, spec_json, spec_version, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (guild_id, owner_id, name) "
                "DO UPDATE SET spec_json = excluded.spec_json, spec_version = excluded.spec_version, "
                "updated_at = excluded.updated_at RETURNING *",
                (gid, owner, key, spec_json, spec_version, now, now))
            if owner_id is None:
                await write_audit(conn, now, gid, actor_id, "preset.save", key, {})
            return _preset(rows[0])

    async def get(self, guild_id: Snowflake, name: str, *,
                  owner_id: Snowflake | None = None) -> Preset:
        """The member's own preset of that name, else the guild-wide one."""
        gid, key = sid(guild_id), preset_name(name)
        owner = GUILD_WIDE if owner_id is None else sid(owner_id)
        rows = await self._db.execute(
            "SELECT * FROM presets WHERE guild_id = ? AND name = ? AND owner_id IN (?, ?) "
            "ORDER BY owner_id = ? LIMIT 1", (gid, key, owner, GUILD_WIDE, GUILD_WIDE))
        if not rows:
            raise NotFound(f"no preset named {key!r}; see /preset list")
        return _preset(rows[0])

    async def list(self, guild_id: Snowflake, *, owner_id: Snowflake | None = None) -> list[Preset]:
        """The member's own presets, then the guild-wide ones (each by name)."""
        gid = sid(guild_id)
        owner = GUILD_WIDE if owner_id is None else sid(owner_id)
        rows = await self._db.execute(
            "SELECT * FROM presets WHERE guild_id = ? AND owner_id IN (?, ?) "
            "ORDER BY owner_id = ?, name", (gid, owner, GUILD_WIDE, GUILD_WIDE))
        return [_preset(r) for r in rows]

    async def delete(self, guild_id: Snowflake, name: str, *, owner_id: Snowflake | None = None,
                     actor_id: Snowflake | None = None) -> bool:
        """Delete exactly the named preset of that owner (never falls back to guild-wide)."""
        gid, key, now = sid(guild_id), preset_name(name), await self._db.clock()
        owner = GUILD_WIDE if owner_id is None else sid(owner_id)
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(
                "DELETE FROM presets WHERE guild_id = ? AND owner_id = ? AND name = ? RETURNING name",
                (gid, owner, key))
            if rows and owner_id is None:
                await write_audit(conn, now, gid, actor_id, "preset.delete", key, {})
            return bool(rows)
