"""The world a FakeDiscord serves: users, roles, members, channels and guilds.

Tests describe their guilds with these small dataclasses; the fake turns them into the JSON shapes
Discord sends (READY, GUILD_CREATE, interaction ``member`` objects, ...). Only the fields discord.py
2.7 reads are produced. Ids are plain ints here and strings on the wire, as in Discord's API.
"""
from __future__ import annotations

import datetime
import itertools
import threading
from dataclasses import dataclass, field
from typing import Optional

# Discord's epoch (2015-01-01T00:00:00Z) in milliseconds: snowflakes count from it.
DISCORD_EPOCH_MS = 1420070400000

MIB = 1024 * 1024
# Per-file upload limit by boost tier (what discord.py's Guild.filesize_limit also assumes).
UPLOAD_LIMIT_BY_TIER = {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}


class Perm:
    """Permission bits the bot's checks are likely to look at (Discord's documented values)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    USE_EXTERNAL_EMOJIS = 1 << 18
    MANAGE_ROLES = 1 << 28
    USE_APPLICATION_COMMANDS = 1 << 31
    SEND_MESSAGES_IN_THREADS = 1 << 38
    # Every bit Discord currently defines fits below 2**51; owners and admins get all of them.
    ALL = (1 << 51) - 1
    # What @everyone gets in a fresh server, roughly: read, write, react, use commands.
    EVERYONE_DEFAULT = (VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY | ADD_REACTIONS | EMBED_LINKS
                        | ATTACH_FILES | USE_EXTERNAL_EMOJIS | USE_APPLICATION_COMMANDS | CREATE_INSTANT_INVITE
                        | SEND_MESSAGES_IN_THREADS)


# Permissions the bot's managed role grants in every guild: enough to post results with buttons.
BOT_PERMISSIONS = (Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | Perm.EMBED_LINKS | Perm.ATTACH_FILES
                   | Perm.READ_MESSAGE_HISTORY | Perm.ADD_REACTIONS | Perm.USE_EXTERNAL_EMOJIS
                   | Perm.SEND_MESSAGES_IN_THREADS)


class Snowflakes:
    """Makes unique, increasing snowflake ids whose timestamp part follows a clock.

    discord.py derives ``created_at`` from the id, so ids carry the fake's (possibly shifted) time.
    """

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._last = 0

    def make(self, unix_seconds: float) -> int:
        ms = max(int(unix_seconds * 1000) - DISCORD_EPOCH_MS, 0)
        with self._lock:
            value = (ms << 22) | (next(self._counter) & 0xFFF)
            # Keep ids strictly increasing even if the clock is moved backwards by a test.
            value = max(value, self._last + 1)
            self._last = value
        return value


def iso(unix_seconds: float) -> str:
    """ISO-8601 timestamp with a UTC offset, the format Discord uses in payloads."""
    return datetime.datetime.fromtimestamp(unix_seconds, tz=datetime.timezone.utc).isoformat()


@dataclass
class FakeUser:
    id: int
    username: str
    bot: bool = False
    global_name: Optional[str] = None

    def payload(self) -> dict:
        return {
            "id": str(self.id), "username": self.username, "discriminator": "0",
            "global_name": self.global_name, "avatar": None, "bot": self.bot,
            "public_flags": 0, "flags": 0,
        }


@dataclass
class FakeRole:
    id: int
    name: str
    permissions: int = 0
    position: int = 0
    managed: bool = False

    def payload(self) -> dict:
        return {
            "id": str(self.id), "name": self.name, "permissions": str(self.permissions),
            "position": self.position, "color": 0, "hoist": False, "managed": self.managed,
            "mentionable": False, "flags": 0, "icon": None, "unicode_emoji": None,
        }


@dataclass
class FakeMember:
    user: FakeUser
    roles: list[int] = field(default_factory=list)
    nick: Optional[str] = None
    # If set, used as the interaction's ``member.permissions`` instead of the computed role union.
    permissions: Optional[int] = None
    joined_at: float = 1600000000.0

    @property
    def id(self) -> int:
        return self.user.id

    def payload(self, permissions: Optional[int] = None) -> dict:
        data = {
            "user": self.user.payload(), "roles": [str(r) for r in self.roles], "nick": self.nick,
            "avatar": None, "joined_at": iso(self.joined_at), "premium_since": None,
            "deaf": False, "mute": False, "flags": 0, "pending": False,
        }
        if permissions is not None:
            data["permissions"] = str(permissions)
        return data


THREAD_TYPES = (10, 11, 12)  # announcement, public and private threads


@dataclass
class FakeChannel:
    id: int
    name: str
    type: int = 0  # 0 = GUILD_TEXT, 1 = DM, 11 = public thread, ...
    nsfw: bool = False
    position: int = 0
    parent_id: Optional[int] = None
    guild_id: Optional[int] = None  # filled in by FakeGuild
    recipients: list[FakeUser] = field(default_factory=list)  # DMs only

    def payload(self) -> dict:
        if self.type == 1:
            return {"id": str(self.id), "type": 1, "last_message_id": None,
                    "recipients": [u.payload() for u in self.recipients]}
        data = {
            "id": str(self.id), "type": self.type, "name": self.name, "position": self.position,
            "guild_id": str(self.guild_id) if self.guild_id else None,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": [], "nsfw": self.nsfw, "topic": None,
            "rate_limit_per_user": 0, "last_message_id": None,
        }
        if self.type in THREAD_TYPES:  # what Discord adds for a thread (its parent is parent_id)
            data.update(owner_id="0", message_count=0, member_count=1,  # no thread owner modelled
                        thread_metadata={"archived": False, "auto_archive_duration": 1440,
                                         "archive_timestamp": iso(0), "locked": False})
        return data


@dataclass
class FakeGuild:
    id: int
    name: str = "Test Guild"
    owner_id: Optional[int] = None
    channels: list[FakeChannel] = field(default_factory=list)
    # The @everyone role (id == guild id) is added automatically when missing.
    roles: list[FakeRole] = field(default_factory=list)
    members: list[FakeMember] = field(default_factory=list)
    premium_tier: int = 0
    # Per-file upload limit in bytes; None means "what the boost tier allows".
    upload_limit: Optional[int] = None
    locale: str = "en-US"

    def __post_init__(self) -> None:
        if not any(r.id == self.id for r in self.roles):
            self.roles.insert(0, FakeRole(self.id, "@everyone", Perm.EVERYONE_DEFAULT))
        for channel in self.channels:
            channel.guild_id = self.id

    @property
    def filesize_limit(self) -> int:
        if self.upload_limit is not None:
            return self.upload_limit
        return UPLOAD_LIMIT_BY_TIER.get(self.premium_tier, 10 * MIB)

    def channel(self, id_or_name) -> FakeChannel:
        for channel in self.channels:
            if channel.id == id_or_name or channel.name == id_or_name:
                return channel
        raise KeyError(f"guild {self.id} has no channel {id_or_name!r}")

    def member(self, user_id: int) -> Optional[FakeMember]:
        return next((m for m in self.members if m.user.id == user_id), None)

    def role(self, role_id: int) -> Optional[FakeRole]:
        return next((r for r in self.roles if r.id == role_id), None)

    def permissions_of(self, member: FakeMember) -> int:
        """Guild-level permissions: the owner and administrators get everything (no overwrites)."""
        if member.permissions is not None:
            return member.permissions
        if member.user.id == self.owner_id:
            return Perm.ALL
        bits = 0
        for role_id in [self.id, *member.roles]:
            role = self.role(role_id)
            if role is not None:
                bits |= role.permissions
        return Perm.ALL if bits & Perm.ADMINISTRATOR else bits

    def create_payload(self, now: float) -> dict:
        """The GUILD_CREATE body (also the base of GET /guilds/{id})."""
        return {
            "id": str(self.id), "name": self.name, "unavailable": False, "icon": None,
            "owner_id": str(self.owner_id or 0), "member_count": len(self.members),
            "large": False, "premium_tier": self.premium_tier, "premium_subscription_count": 0,
            "preferred_locale": self.locale, "features": [], "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
            "nsfw_level": 0, "afk_timeout": 300, "afk_channel_id": None, "system_channel_id": None,
            "system_channel_flags": 0, "rules_channel_id": None, "description": None,
            "joined_at": iso(now), "emojis": [], "stickers": [], "threads": [],
            "stage_instances": [], "guild_scheduled_events": [], "voice_states": [],
            "presences": [], "soundboard_sounds": [],
            "channels": [c.payload() for c in self.channels],
            "roles": [r.payload() for r in self.roles],
            "members": [m.payload() for m in self.members],
        }


@dataclass
class FakeFile:
    """A file a test user attaches to a slash command (an ATTACHMENT option)."""

    filename: str
    data: bytes
    content_type: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None


# Fixed ids for the default world, so failing tests print recognisable numbers.
BOT_USER_ID = 100000000000000001
APP_OWNER_ID = 100000000000000002
DEFAULT_GUILD_ID = 200000000000000001
ADMIN_ROLE_ID = 300000000000000001
BOT_ROLE_ID = 300000000000000002
GENERAL_CHANNEL_ID = 400000000000000001
SECOND_CHANNEL_ID = 400000000000000002
OWNER_USER_ID = 500000000000000001
ADMIN_USER_ID = 500000000000000002
MEMBER_USER_ID = 500000000000000003


def default_guild(guild_id: int = DEFAULT_GUILD_ID, name: str = "Test Guild", **kwargs) -> FakeGuild:
    """A ready-made guild: two text channels, an owner, an admin (Manage Guild), a plain member.

    The bot's own member is added by FakeDiscord (every configured guild gets one).
    Ids are derived from ``guild_id`` so several default guilds don't collide.
    """
    k = guild_id - DEFAULT_GUILD_ID  # 0 for the first guild
    owner = FakeUser(OWNER_USER_ID + 10 * k, "owner")
    admin = FakeUser(ADMIN_USER_ID + 10 * k, "admin")
    member = FakeUser(MEMBER_USER_ID + 10 * k, "member")
    admin_role = FakeRole(ADMIN_ROLE_ID + 10 * k, "Admin", Perm.MANAGE_GUILD | Perm.MANAGE_MESSAGES, position=2)
    return FakeGuild(
        id=guild_id, name=name, owner_id=owner.id,
        channels=[FakeChannel(GENERAL_CHANNEL_ID + 10 * k, "general"),
                  FakeChannel(SECOND_CHANNEL_ID + 10 * k, "renders", position=1)],
        roles=[admin_role],
        members=[FakeMember(owner), FakeMember(admin, roles=[admin_role.id]), FakeMember(member)],
        **kwargs,
    )
