"""REST routes authorised with the bot token: login, command sync, channels, messages, guilds, CDN.

Each handler reads the body the middleware already parsed (``request[PAYLOAD]``,
``request[FILES]``) and raises ``wire.DiscordError`` for Discord's error answers.
Interaction callbacks and interaction webhooks live in interactions.py.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from aiohttp import web

from .models import FakeChannel, FakeGuild, FakeUser, Perm
from .store import StoredMessage
from .wire import (
    FILES,
    PAYLOAD,
    RECORD,
    UNKNOWN_APPLICATION_COMMAND,
    UNKNOWN_CHANNEL,
    UNKNOWN_GUILD,
    UNKNOWN_MEMBER,
    UNKNOWN_MESSAGE,
    UNKNOWN_USER,
    DiscordError,
    empty_response,
    json_response,
    not_found,
)

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeDiscord


class RestRoutes:
    def __init__(self, fake: "FakeDiscord") -> None:
        self.fake = fake

    def register(self, router: web.UrlDispatcher, prefix: str) -> None:
        routes = [
            ("GET", "/users/@me", self.get_me),
            ("GET", "/oauth2/applications/@me", self.get_application),
            ("GET", "/applications/@me", self.get_application),
            ("GET", "/gateway", self.get_gateway),
            ("GET", "/gateway/bot", self.get_gateway),
            ("POST", "/users/@me/channels", self.create_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/applications/{app}/commands", self.list_commands),
            ("PUT", "/applications/{app}/commands", self.put_commands),
            ("POST", "/applications/{app}/commands", self.upsert_command),
            ("PATCH", "/applications/{app}/commands/{cmd}", self.upsert_command),
            ("DELETE", "/applications/{app}/commands/{cmd}", self.delete_command),
            ("GET", "/applications/{app}/guilds/{guild_id}/commands", self.list_commands),
            ("PUT", "/applications/{app}/guilds/{guild_id}/commands", self.put_commands),
            ("POST", "/applications/{app}/guilds/{guild_id}/commands", self.upsert_command),
            ("PATCH", "/applications/{app}/guilds/{guild_id}/commands/{cmd}", self.upsert_command),
            ("DELETE", "/applications/{app}/guilds/{guild_id}/commands/{cmd}", self.delete_command),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("POST", "/channels/{channel_id}/typing", self.no_content),
            ("GET", "/channels/{channel_id}/messages", self.list_messages),
            ("POST", "/channels/{channel_id}/messages", self.create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.no_content),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me", self.no_content),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.get_guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.get_guild_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member),
        ]
        for method, path, handler in routes:
            router.add_route(method, prefix + path, handler)
        # The CDN: files the bot uploaded and files test users attached, outside the API prefix.
        router.add_get("/attachments/{channel_id}/{att_id}/{filename}", self.cdn)

    # -- login ---------------------------------------------------------------------------------

    async def get_me(self, request: web.Request) -> web.Response:
        return json_response({**self.fake.bot_user.payload(), "verified": True, "mfa_enabled": False})

    async def get_application(self, request: web.Request) -> web.Response:
        fake = self.fake
        owner = FakeUser(fake.guild.owner_id or 1, "owner") if fake.guilds else FakeUser(1, "owner")
        # interactions_endpoint_url must be null, or discord.py warns that no gateway interactions come.
        return json_response({
            "id": str(fake.application_id), "name": fake.bot_user.username, "description": "", "icon": None,
            "bot_public": True, "bot_require_code_grant": False, "owner": owner.payload(),
            "verify_key": "0" * 64, "flags": 0, "team": None, "summary": "", "rpc_origins": [],
            "interactions_endpoint_url": None, "bot": fake.bot_user.payload(),
            "approximate_guild_count": len(fake.guilds),
        })

    async def get_gateway(self, request: web.Request) -> web.Response:
        return json_response({"url": self.fake.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}})

    # -- users ---------------------------------------------------------------------------------

    def _user(self, user_id: int) -> Optional[FakeUser]:
        if user_id == self.fake.bot_user.id:
            return self.fake.bot_user
        for guild in self.fake.guilds:
            member = guild.member(user_id)
            if member is not None:
                return member.user
        return None

    async def get_user(self, request: web.Request) -> web.Response:
        user = self._user(_int(request, "user_id"))
        if user is None:
            raise not_found(UNKNOWN_USER, "User")
        return json_response(user.payload())

    async def create_dm(self, request: web.Request) -> web.Response:
        payload = request[PAYLOAD] or {}
        user = self._user(int(payload.get("recipient_id", 0)))
        if user is None:
            raise not_found(UNKNOWN_USER, "User")
        return json_response(self.fake.dm_channel(user).payload())

    # -- application commands ------------------------------------------------------------------

    def _commands(self, request: web.Request) -> tuple[Optional[int], list[dict]]:
        if _int(request, "app") != self.fake.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "guild_id" not in request.match_info:
            return None, self.fake.global_commands
        guild_id = _int(request, "guild_id")
        if self.fake.find_guild(guild_id) is None:
            raise DiscordError(403, 50001, "Missing Access")
        return guild_id, self.fake.guild_commands.setdefault(guild_id, [])

    def _stored(self, data: dict, guild_id: Optional[int], old: Optional[dict]) -> dict:
        """A command as Discord echoes it: the sent fields plus ids, version and defaults."""
        out = {"type": 1, "description": "", "options": [], "default_member_permissions": None,
               "nsfw": False, "name_localizations": None, "description_localizations": None}
        out.update(data)
        out.update(id=old["id"] if old else str(self.fake.new_id()), application_id=str(self.fake.application_id),
                   version=str(self.fake.new_id()))
        if guild_id is not None:
            out["guild_id"] = str(guild_id)
        return out

    async def list_commands(self, request: web.Request) -> web.Response:
        return json_response(self._commands(request)[1])

    async def put_commands(self, request: web.Request) -> web.Response:
        guild_id, current = self._commands(request)
        by_key = {(c["name"], c.get("type", 1)): c for c in current}
        new = [self._stored(c, guild_id, by_key.get((c["name"], c.get("type", 1))))
               for c in request[PAYLOAD] or []]
        current[:] = new  # bulk overwrite replaces the whole list
        return json_response(new)

    async def upsert_command(self, request: web.Request) -> web.Response:
        guild_id, current = self._commands(request)
        data = request[PAYLOAD] or {}
        if "cmd" in request.match_info:
            old = next((c for c in current if c["id"] == request.match_info["cmd"]), None)
            if old is None:
                raise not_found(UNKNOWN_APPLICATION_COMMAND, "application command")
            data = {**old, **data}
        else:
            old = next((c for c in current if c["name"] == data.get("name")
                        and c.get("type", 1) == data.get("type", 1)), None)
        stored = self._stored(data, guild_id, old)
        if old is not None:
            current[current.index(old)] = stored
        else:
            current.append(stored)
        return json_response(stored, 200 if old is not None else 201)

    async def delete_command(self, request: web.Request) -> web.Response:
        _, current = self._commands(request)
        old = next((c for c in current if c["id"] == request.match_info["cmd"]), None)
        if old is None:
            raise not_found(UNKNOWN_APPLICATION_COMMAND, "application command")
        current.remove(old)
        return empty_response()

    # -- channels and messages -----------------------------------------------------------------

    def _channel(self, request: web.Request) -> tuple[Optional[FakeGuild], FakeChannel]:
        guild, channel = self.fake.find_channel(_int(request, "channel_id"))
        if channel is None:
            raise not_found(UNKNOWN_CHANNEL, "Channel")
        return guild, channel

    def _message(self, request: web.Request) -> StoredMessage:
        _, channel = self._channel(request)
        msg = self.fake.messages.get(_int(request, "message_id"))
        # Ephemeral messages exist only for their interaction's webhook, not the channel API.
        if msg is None or msg.deleted or msg.channel_id != channel.id or msg.ephemeral:
            raise not_found(UNKNOWN_MESSAGE, "Message")
        return msg

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self._channel(request)[1].payload())

    async def no_content(self, request: web.Request) -> web.Response:
        self._channel(request)
        return empty_response()

    async def list_messages(self, request: web.Request) -> web.Response:
        _, channel = self._channel(request)
        limit = max(1, min(int(request.query.get("limit", 50)), 100))
        msgs = self.fake.messages_in(channel.id, include_ephemeral=False)
        if "before" in request.query:
            msgs = [m for m in msgs if m.id < int(request.query["before"])]
        if "after" in request.query:
            msgs = [m for m in msgs if m.id > int(request.query["after"])][:limit]
        if "around" in request.query:
            around = int(request.query["around"])
            older = [m for m in msgs if m.id <= around][-(limit - limit // 2):]
            newer = [m for m in msgs if m.id > around][:limit // 2]
            msgs = older + newer
        # Discord lists newest first.
        return json_response([self.fake.message_ops.seen_by_bot(m) for m in reversed(msgs[-limit:])])

    async def create_message(self, request: web.Request) -> web.Response:
        _, channel = self._channel(request)
        msg = await self.fake.message_ops.create(channel.id, request[PAYLOAD], request[FILES])
        return json_response(msg.payload())

    async def get_message(self, request: web.Request) -> web.Response:
        guild, _ = self._channel(request)
        if guild is not None:  # reading one message needs both, as on Discord
            perms = guild.permissions_of(guild.member(self.fake.bot_user.id))
            needed = Perm.VIEW_CHANNEL | Perm.READ_MESSAGE_HISTORY
            if perms & needed != needed and not perms & Perm.ADMINISTRATOR:
                raise DiscordError(403, 50001, "Missing Access")
        return json_response(self.fake.message_ops.seen_by_bot(self._message(request)))

    async def edit_message(self, request: web.Request) -> web.Response:
        msg = self._message(request)
        await self.fake.message_ops.edit(msg, request[PAYLOAD], request[FILES])
        return json_response(msg.payload())

    async def delete_message(self, request: web.Request) -> web.Response:
        await self.fake.message_ops.delete(self._message(request))
        return empty_response()

    # -- guilds --------------------------------------------------------------------------------

    def _guild(self, request: web.Request) -> FakeGuild:
        guild = self.fake.find_guild(_int(request, "guild_id"))
        if guild is None:
            raise not_found(UNKNOWN_GUILD, "Guild")
        return guild

    async def get_guild(self, request: web.Request) -> web.Response:
        guild = self._guild(request)
        data = self.fake.guild_create_payload(guild)
        for key in ("channels", "members", "threads", "voice_states", "presences", "joined_at"):
            data.pop(key, None)  # REST guild objects don't carry the gateway-only fields
        if request.query.get("with_counts") in ("true", "1"):
            data.update(approximate_member_count=len(guild.members), approximate_presence_count=0)
        return json_response(data)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        return json_response([c.payload() for c in self._guild(request).channels])

    async def get_guild_roles(self, request: web.Request) -> web.Response:
        return json_response([r.payload() for r in self._guild(request).roles])

    async def get_member(self, request: web.Request) -> web.Response:
        member = self._guild(request).member(_int(request, "user_id"))
        if member is None:
            raise not_found(UNKNOWN_MEMBER, "Member")
        return json_response(member.payload())

    # -- CDN -----------------------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.Response:
        att = self.fake.attachments.get(_int(request, "att_id"))
        if att is None or att.filename != request.match_info["filename"] or self._of_deleted_message(att.id):
            return web.Response(status=404, text="Not Found")
        self.fake.downloads.append(request[RECORD])
        return web.Response(body=att.data, content_type=att.content_type or "application/octet-stream")

    def _of_deleted_message(self, att_id: int) -> bool:
        """Discord's CDN stops serving the files of a deleted message."""
        return any(m.deleted and any(a.id == att_id for a in m.attachments) for m in self.fake.messages.values())


def _int(request: web.Request, key: str) -> int:
    try:
        return int(request.match_info[key])
    except ValueError:
        raise DiscordError(404, 0, "404: Not Found")
