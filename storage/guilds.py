"""Per-guild settings: size and queue limits, allowed channels, render defaults, paused intake,
banned words. A guild with no row gets `DEFAULT_LIMITS`; a limit stored as NULL means "the
default", so raising a default in code reaches every guild that never changed it.

Every admin change is written to the audit log in the same transaction.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from .audit import write_audit
from .errors import InvalidValue

if TYPE_CHECKING:
    from .backend import Store

Snowflake = int | str


def sid(value: Snowflake) -> str:
    """A Discord id as storage keeps it: the decimal string."""
    text = str(value).strip()
    if not text or len(text) > 32:
        raise InvalidValue(f"{value!r} is not a valid id: expected a Discord snowflake or a short name")
    return text


@dataclass(frozen=True)
class GuildLimits:
    """Caps checked at enqueue (size and waiting jobs) and at claim (running jobs per user).

    `max_cuts` counts CLIP cuts per step over all cut batches (the commands layer computes it);
    `max_frames` applies to animations.
    """

    max_steps: int = 500
    max_pixels: int = 1280 * 768  # DD's default size
    max_cuts: int = 128
    max_frames: int = 300
    max_queued_per_user: int = 3
    max_running_per_user: int = 1
    max_queued_per_guild: int = 50


DEFAULT_LIMITS = GuildLimits()
LIMIT_NAMES = tuple(f.name for f in fields(GuildLimits))
MAX_BANNED_WORDS = 500


@dataclass(frozen=True)
class GuildSettings:
    guild_id: str
    limits: GuildLimits = DEFAULT_LIMITS
    intake_paused: bool = False
    pause_reason: str | None = None
    allowed_channel_ids: frozenset[str] = frozenset()  # empty: every channel is allowed
    defaults: dict[str, Any] = field(default_factory=dict)  # opaque render defaults
    banned_words: tuple[str, ...] = ()

    def channel_allowed(self, channel_id: Snowflake) -> bool:
        return not self.allowed_channel_ids or str(channel_id) in self.allowed_channel_ids


async def load_settings(conn: Any, guild_id: str) -> GuildSettings:
    """The guild's settings, read on `conn` (so callers can use them inside their transaction)."""
    rows = await conn.execute_fetchall("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
    channels = frozenset(r[0] for r in await conn.execute_fetchall(
        "SELECT channel_id FROM guild_channels WHERE guild_id = ?", (guild_id,)))
    words = tuple(r[0] for r in await conn.execute_fetchall(
        "SELECT word FROM banned_words WHERE guild_id = ? ORDER BY word", (guild_id,)))
    if not rows:
        return GuildSettings(guild_id, allowed_channel_ids=channels, banned_words=words)
    row = rows[0]
    stored = {name: row[name] for name in LIMIT_NAMES if row[name] is not None}
    return GuildSettings(
        guild_id=guild_id, limits=replace(DEFAULT_LIMITS, **stored),
        intake_paused=bool(row["intake_paused"]), pause_reason=row["pause_reason"],
        allowed_channel_ids=channels, defaults=json.loads(row["defaults_json"]),
        banned_words=words)


async def _ensure_row(conn: Any, guild_id: str, now: float) -> None:
    await conn.execute("INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, ?) "
                       "ON CONFLICT (guild_id) DO NOTHING", (guild_id, now))


class Guilds:
    """Guild settings API (`db.guilds`). Ids may be ints or strings; they are stored as strings."""

    def __init__(self, db: Store):
        self._db = db

    async def get(self, guild_id: Snowflake) -> GuildSettings:
        async with self._db.snapshot() as conn:
            return await load_settings(conn, sid(guild_id))

    async def set_limits(self, guild_id: Snowflake, *, actor_id: Snowflake | None = None,
                         **limits: int | None) -> GuildSettings:
        """Change some limits; None puts a limit back to its default."""
        unknown = sorted(set(limits) - set(LIMIT_NAMES))
        if unknown:
            raise InvalidValue(f"unknown limit {unknown[0]!r}; the limits are {', '.join(LIMIT_NAMES)}")
        for name, value in limits.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise InvalidValue(f"{name} must be a whole number of at least 1 (or None for the "
                                   f"default {getattr(DEFAULT_LIMITS, name)}), not {value!r}")
        gid, now = sid(guild_id), await self._db.clock()
        async with self._db.transaction() as conn:
            await _ensure_row(conn, gid, now)
            for name, value in limits.items():  # names come from LIMIT_NAMES, never from users
                await conn.execute(f"UPDATE guild_settings SET {name} = ?, updated_at = ? "
                                   f"WHERE guild_id = ?", (value, now, gid))
            await write_audit(conn, now, gid, actor_id, "limits.set", None, limits)
            return await load_settings(conn, gid)

    async def pause_intake(self, guild_id: Snowflake, reason: str, *,
                           actor_id: Snowflake | None = None) -> None:
        """Refuse new jobs in this guild (queued and running ones carry on)."""
        await self._set_pause(guild_id, True, reason.strip()[:200] or None, actor_id)

    async def resume_intake(self, guild_id: Snowflake, *, actor_id: Snowflake | None = None) -> None:
        await self._set_pause(guild_id, False, None, actor_id)

    async def _set_pause(self, guild_id: Snowflake, paused: bool, reason: str | None,
                         actor_id: Snowflake | None) -> None:
        gid, now = sid(guild_id), await self._db.clock()
        async with self._db.transaction() as conn:
            await _ensure_row(conn, gid, now)
            await conn.execute("UPDATE guild_settings SET intake_paused = ?, pause_reason = ?, "
                               "updated_at = ? WHERE guild_id = ?", (bool(paused), reason, now, gid))
            await write_audit(conn, now, gid, actor_id, "intake.pause" if paused else "intake.resume",
                              None, {"reason": reason} if reason else {})

    async def allow_channel(self, guild_id: Snowflake, channel_id: Snowflake, *,
                            actor_id: Snowflake | None = None) -> None:
        gid, cid, now = sid(guild_id), sid(channel_id), await self._db.clock()
        async with self._db.transaction() as conn:
            await conn.execute("INSERT INTO guild_channels (guild_id, channel_id) VALUES (?, ?) "
                               "ON CONFLICT DO NOTHING", (gid, cid))
            await write_audit(conn, now, gid, actor_id, "channels.allow", cid, {})

    async def disallow_channel(self, guild_id: Snowflake, channel_id: Snowflake, *,
                               actor_id: Snowflake | None = None) -> None:
        gid, cid, now = sid(guild_id), sid(channel_id), await self._db.clock()
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM guild_channels WHERE guild_id = ? AND channel_id = ?",
                               (gid, cid))
            await write_audit(conn, now, gid, actor_id, "channels.disallow", cid, {})

    async def set_defaults(self, guild_id: Snowflake, defaults: dict[str, Any], *,
                           actor_id: Snowflake | None = None) -> None:
        """Store the guild's render defaults (opaque to storage; the commands layer validates)."""
        if not isinstance(defaults, dict):
            raise InvalidValue("guild defaults must be a JSON object of setting → value")
        text = json.dumps(defaults, sort_keys=True)
        if len(text) > 20_000:
            raise InvalidValue("guild defaults are limited to 20,000 characters of JSON; "
                               "keep only the settings that differ from DD's defaults")
        gid, now = sid(guild_id), await self._db.clock()
        async with self._db.transaction() as conn:
            await _ensure_row(conn, gid, now)
            await conn.execute("UPDATE guild_settings SET defaults_json = ?, updated_at = ? "
                               "WHERE guild_id = ?", (text, now, gid))
            await write_audit(conn, now, gid, actor_id, "defaults.set", None, defaults)

    async def add_banned_word(self, guild_id: Snowflake, word: str, *,
                              actor_id: Snowflake | None = None) -> None:
        cleaned = " ".join(word.lower().split())
        if not 1 <= len(cleaned) <= 100:
            raise InvalidValue("a banned word or phrase must be 1 to 100 characters long")
        gid, now = sid(guild_id), await self._db.clock()
        async with self._db.transaction() as conn:
            count = (await conn.execute_fetchall(
                "SELECT COUNT(*) FROM banned_words WHERE guild_id = ?", (gid,)))[0][0]
            if count >= MAX_BANNED_WORDS:
                raise InvalidValue(f"this server already has {MAX_BANNED_WORDS} banned words, the "
                                   f"most allowed; remove some before adding more")
            await conn.execute("INSERT INTO banned_words (guild_id, word) VALUES (?, ?) "
                               "ON CONFLICT DO NOTHING", (gid, cleaned))
            await write_audit(conn, now, gid, actor_id, "banned_words.add", cleaned, {})

    async def remove_banned_word(self, guild_id: Snowflake, word: str, *,
                                 actor_id: Snowflake | None = None) -> bool:
        cleaned = " ".join(word.lower().split())
        gid, now = sid(guild_id), await self._db.clock()
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(
                "DELETE FROM banned_words WHERE guild_id = ? AND word = ? RETURNING word",
                (gid, cleaned))
            if rows:
                await write_audit(conn, now, gid, actor_id, "banned_words.remove", cleaned, {})
            return bool(rows)
