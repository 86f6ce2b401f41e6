"""Per-user preferences (`db.users`): how a member hears that a job of theirs finished.

`notify` is one of NOTIFY_CHOICES: 'channel' (the default: the result is posted in the job's
channel and pings its requester), 'dm' (also a direct message, and the result goes there
when the channel is gone or the bot may not post in it) or 'off' (the result is posted without
a ping). The preference belongs to the user, not to a server: a DM is the same person
whichever server the job came from. A user who never chose has no row.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InvalidValue
from .guilds import Snowflake, sid

if TYPE_CHECKING:
    from .backend import Store

NOTIFY_CHOICES = ("channel", "dm", "off")
DEFAULT_NOTIFY = "channel"


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
        now = await self._db.clock()
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO user_settings (user_id, notify, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET notify = excluded.notify, "
                "updated_at = excluded.updated_at", (sid(user_id), notify, now))
        return notify
