"""Per-guild settings: size and queue limits, allowed channels, render defaults (the server's and
per channel), allowed diffusion and CLIP models, paused intake, banned words. A guild with no
row gets `DEFAULT_LIMITS`; a limit stored as NULL means "the default", so raising a default in
code reaches every guild that never changed it. Model names and defaults are opaque here: the
commands layer checks them.

Every admin change is written to the audit log in the same transaction.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from .audit import write_audit
from .errors import ChannelNotAllowed, IntakePaused, InvalidValue

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
    `max_frames` applies to animations; `max_images` is the most images (n_batches) per job.
    """

    max_steps: int = 500
    max_pixels: int = 1280 * 768  # DD's default size
    max_cuts: int = 128
    max_frames: int = 300
    max_queued_per_user: int = 3
    max_running_per_user: int = 1
    max_queued_per_guild: int = 50
    max_images: int = 4


DEFAULT_LIMITS = GuildLimits()
LIMIT_NAMES = tuple(f.name for f in fields(GuildLimits))
MAX_BANNED_WORDS = 500
MAX_CHANNEL_DEFAULTS = 100   # channels with defaults of their own, per guild
MAX_DEFAULTS_JSON = 20_000
MAX_ALLOWED_MODELS = 64
MODEL_LISTS = {"diffusion": "allowed_models_json", "clip": "allowed_clip_models_json"}


@dataclass(frozen=True)
class GuildSettings:
    guild_id: str
    limits: GuildLimits = DEFAULT_LIMITS
    intake_paused: bool = False
    pause_reason: str | None = None
    allowed_channel_ids: frozenset[str] = frozenset()  # empty: every channel is allowed
    defaults: dict[str, Any] = field(default_factory=dict)  # opaque render defaults
    banned_words: tuple[str, ...] = ()
    channel_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)  # channel → defaults
    allowed_models: tuple[str, ...] | None = None       # None: every diffusion model
    allowed_clip_models: tuple[str, ...] | None = None  # None: every CLIP model

    def channel_allowed(self, channel_id: Snowflake) -> bool:
        return not self.allowed_channel_ids or str(channel_id) in self.allowed_channel_ids

    def check_intake(self, channel_id: Snowflake) -> None:
        """Raise when the server takes no new job in this channel now: intake paused
        (`IntakePaused`), or the channel not allowed (`ChannelNotAllowed`). `Jobs.enqueue` checks
        it in its transaction; a command may check it earlier, before asking the member for more."""
        if self.intake_paused:
            reason = f" ({self.pause_reason})" if self.pause_reason else ""
            raise IntakePaused(f"this server's admins paused new renders{reason}; try again later")
        if not self.channel_allowed(channel_id):
            allowed = ", ".join(f"<#{c}>" for c in sorted(self.allowed_channel_ids))
            raise ChannelNotAllowed(f"renders are not allowed in this channel; use {allowed}")

    def defaults_for(self, channel_id: Snowflake | None) -> dict[str, Any]:
        """The render defaults in a channel: the server's, with the channel's own over them."""
        own = self.channel_defaults.get(str(channel_id), {}) if channel_id is not None else {}
        return {**self.defaults, **own}


async def load_settings(conn: Any, guild_id: str) -> GuildSettings:
    """The guild's settings, read on `conn` (so callers can use them inside their transaction)."""
    rows = await conn.execute_fetchall("SELECT * FROM guild_settings WHERE guild_id = ?", (guild_id,))
    channels = frozenset(r[0] for r in await conn.execute_fetchall(
        "SELECT channel_id FROM guild_channels WHERE guild_id = ?", (guild_id,)))
    words = tuple(r[0] for r in await conn.execute_fetchall(
        "SELECT word FROM banned_words WHERE guild_id = ? ORDER BY word", (guild_id,)))
    per_channel = {r[0]: json_dict(r[1]) for r in await conn.execute_fetchall(
        "SELECT channel_id, defaults_json FROM channel_defaults WHERE guild_id = ?", (guild_id,))}
    if not rows:
        return GuildSettings(guild_id, allowed_channel_ids=channels, banned_words=words,
                             channel_defaults=per_channel)
    row = rows[0]
    stored = {name: row[name] for name in LIMIT_NAMES if row[name] is not None}
    return GuildSettings(
        guild_id=guild_id, limits=replace(DEFAULT_LIMITS, **stored),
        intake_paused=bool(row["intake_paused"]), pause_reason=row["pause_reason"],
        allowed_channel_ids=channels, defaults=json_dict(row["defaults_json"]),
        banned_words=words, channel_defaults=per_channel,
        allowed_models=_json_names(row["allowed_models_json"]),
        allowed_clip_models=_json_names(row["allowed_clip_models_json"]))


def json_dict(text: str | None) -> dict[str, Any]:
    """A stored defaults object; a damaged one reads as empty rather than failing every job."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _json_names(text: str | None) -> tuple[str, ...] | None:
    """A stored list of allowed model names; NULL (or a damaged value) means every model."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return tuple(str(v) for v in value) if isinstance(value, list) else None


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
                           channel_id: Snowflake | None = None,
                           actor_id: Snowflake | None = None) -> GuildSettings:
        """Store the render defaults of the guild, or of one channel (over the guild's); `{}`
        removes a channel's own. Opaque to storage: the commands layer validates them."""
        if not isinstance(defaults, dict):
            raise InvalidValue("defaults must be a JSON object of setting → value")
        text = json.dumps(defaults, sort_keys=True)
        if len(text) > MAX_DEFAULTS_JSON:
            raise InvalidValue(f"defaults are limited to {MAX_DEFAULTS_JSON:,} characters of JSON; "
                               f"keep only the settings that differ from DD's defaults")
        gid, now = sid(guild_id), await self._db.clock()
        cid = sid(channel_id) if channel_id is not None else None
        async with self._db.transaction() as conn:
            await _ensure_row(conn, gid, now)
            if cid is None:
                await conn.execute("UPDATE guild_settings SET defaults_json = ?, updated_at = ? "
                                   "WHERE guild_id = ?", (text, now, gid))
            elif not defaults:
                await conn.execute("DELETE FROM channel_defaults WHERE guild_id = ? AND channel_id = ?",
                                   (gid, cid))
            else:
                count = (await conn.execute_fetchall(
                    "SELECT COUNT(*) FROM channel_defaults WHERE guild_id = ? AND channel_id <> ?",
                    (gid, cid)))[0][0]
                if count >= MAX_CHANNEL_DEFAULTS:
                    raise InvalidValue(f"{MAX_CHANNEL_DEFAULTS} channels already have defaults of their "
                                       f"own, the most allowed; reset some channels' defaults first")
                await conn.execute(
                    "INSERT INTO channel_defaults (guild_id, channel_id, defaults_json, updated_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (guild_id, channel_id) DO UPDATE SET "
                    "defaults_json = excluded.defaults_json, updated_at = excluded.updated_at",
                    (gid, cid, text, now))
            action = "defaults.set" if defaults else "defaults.reset"
            await write_audit(conn, now, gid, actor_id, action, cid, defaults)
            return await load_settings(conn, gid)

    async def set_allowed_models(self, guild_id: Snowflake, kind: str, names: list[str] | None, *,
                                 actor_id: Snowflake | None = None) -> GuildSettings:
        """The diffusion (`kind` "diffusion") or CLIP ("clip") models this guild allows; None
        allows every model again. Names are checked by the commands layer."""
        if kind not in MODEL_LISTS:
            raise InvalidValue(f"unknown model kind {kind!r}; choose diffusion or clip")
        if names is not None and (not names or len(names) > MAX_ALLOWED_MODELS
                                  or not all(isinstance(n, str) and 0 < len(n) <= 100 for n in names)):
            raise InvalidValue(f"allow 1 to {MAX_ALLOWED_MODELS} model names (or reset to allow every model)")
        text = json.dumps(sorted(set(names))) if names is not None else None
        gid, now = sid(guild_id), await self._db.clock()
        async with self._db.transaction() as conn:
            await _ensure_row(conn, gid, now)
            await conn.execute(f"UPDATE guild_settings SET {MODEL_LISTS[kind]} = ?, updated_at = ? "
                               f"WHERE guild_id = ?", (text, now, gid))  # column from MODEL_LISTS
            await write_audit(conn, now, gid, actor_id, f"models.{kind}.allow", None,
                              {"models": sorted(set(names)) if names is not None else "every"})
            return await load_settings(conn, gid)

    async def add_banned_word(self, guild_id: Snowflake, word: str, *,
                              actor_id: Snowflake | None = None) -> bool:
        """Ban a word or phrase; False (nothing written, nothing audited) when it is banned already."""
        cleaned = " ".join(word.lower().split())
        if not 1 <= len(cleaned) <= 100:
            raise InvalidValue("a banned word or phrase must be 1 to 100 characters long")
        gid, now = sid(guild_id), await self._db.clock()
        async with self._db.transaction() as conn:
            words = {row[0] for row in await conn.execute_fetchall(
                "SELECT word FROM banned_words WHERE guild_id = ?", (gid,))}
            if cleaned in words:
                return False
            if len(words) >= MAX_BANNED_WORDS:
                raise InvalidValue(f"this server already has {MAX_BANNED_WORDS} banned words, the "
                                   f"most allowed; remove some before adding more")
            await conn.execute("INSERT INTO banned_words (guild_id, word) VALUES (?, ?) "
                               "ON CONFLICT DO NOTHING", (gid, cleaned))
            await write_audit(conn, now, gid, actor_id, "banned_words.add", cleaned, {})
            return True

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
