"""Per-user preferences (`db.users`): how a member hears that a job of theirs finished, and the
render defaults every job of theirs starts from.

`notify` is one of NOTIFY_CHOICES: 'channel' (the default: the result is posted in the job's
channel and pings its requester), 'dm' (also a direct message, and the result goes there
when the channel is gone or the bot may not post in it) or 'off' (the result is posted without
a ping). The preference belongs to the user, not to a server: a DM is the same person
whichever server the job came from. A user who never chose has no row.

`defaults` (`/disco-settings defaults:`) is a JSON object of setting → value, opaque here like a
server's defaults (storage/guilds.py): the commands layer checks it when it is set and again
when a job reads it. It too belongs to the user, in every server; each server's limits and
allowed models still apply to the jobs it gives.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .errors import InvalidValue
from .guilds import Snowflake, json_dict, sid

if TYPE_CHECKING:
    from .backend import Store

NOTIFY_CHOICES = ("channel", "dm", "off")
DEFAULT_NOTIFY = "channel"
MAX_USER_DEFAULTS = 24             # settings in one member's defaults
MAX_USER_DEFAULTS_JSON = 8_000     # their stored JSON


class Users:
    """User preference API (`db.users`)."""

    def __init__(self, db: Store):
        self._db = db

    async def notify(self, user_id: Snowflake) -> str:
        """The user's choice, else DEFAULT_NOTIFY."""
        rows = await self._db.execute("SELECT notify FROM user_settings WHERE user_id = ?", (sid(user_id),))
        return rows[0]["notify"] if rows else DEFAULT_NOTIFY

    async def set_notify(self, user_id: Snowflake, notify: str) -> str:
        if notify not in NOTIFY_CHOICES:
            raise InvalidValue(f"notify {notify!r} is not a choice (rule: notify_choice); use "
                               f"{', '.join(NOTIFY_CHOICES)}")
        await self._set(user_id, "notify", notify)
        return notify

    async def defaults(self, user_id: Snowflake) -> dict[str, Any]:
        """The user's own render defaults ({} when none, or when the stored value is damaged)."""
        rows = await self._db.execute("SELECT defaults_json FROM user_settings WHERE user_id = ?",
                                      (sid(user_id),))
        return json_dict(rows[0]["defaults_json"]) if rows else {}

    async def set_defaults(self, user_id: Snowflake, defaults: dict[str, Any]) -> dict[str, Any]:
        """Store the user's whole set of defaults (`{}` removes them all); returns what is stored.
        Only the size is checked here: the commands layer validates the settings."""
        if not isinstance(defaults, dict) or not all(isinstance(key, str) for key in defaults):
            raise InvalidValue("defaults must be a JSON object of setting → value")
        if len(defaults) > MAX_USER_DEFAULTS:
            raise InvalidValue(f"{len(defaults)} default settings; at most {MAX_USER_DEFAULTS} "
                               f"(rule: user_defaults_count) — remove some first")
        text = json.dumps(defaults, sort_keys=True)
        if len(text) > MAX_USER_DEFAULTS_JSON:
            raise InvalidValue(f"defaults are limited to {MAX_USER_DEFAULTS_JSON:,} characters of JSON "
                               f"(rule: user_defaults_size); keep only the settings you always change")
        await self._set(user_id, "defaults_json", text)
        return json.loads(text)

    async def _set(self, user_id: Snowflake, column: str, value: str) -> None:
        """One preference of the user's row, made when the user has none (other columns keep
        their defaults). `column`: one of this class's own names, never a caller's text."""
        now = await self._db.clock()
        async with self._db.transaction() as conn:
            await conn.execute(
                f"INSERT INTO user_settings (user_id, {column}, updated_at) VALUES (?, ?, ?) "
                f"ON CONFLICT (user_id) DO UPDATE SET {column} = excluded.{column}, "
                "updated_at = excluded.updated_at", (sid(user_id), value, now))
