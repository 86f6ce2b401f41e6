"""What a test user does: slash commands, autocomplete, button clicks, modal submits.

Each method builds the INTERACTION_CREATE payload Discord would send, dispatches it over the
gateway and returns the InteractionRecord that collects the bot's callbacks and follow-ups.
Payload fields follow discord.py 2.7's reader (interactions.py ``_from_data``): notably the
required ``attachment_size_limit``, and ``data.guild_id`` for commands synced to a guild
(without it discord.py looks only at global commands and raises CommandNotFound).

Option values for slash commands are given as ``{name: value}``; the option types come from the
commands the bot synced (so the fake sends exactly what Discord would), or are guessed from the
Python value for unsynced commands. Subcommands are addressed with spaces: ``"disco-admin quota set"``.
"""
from __future__ import annotations

import asyncio
import secrets
from typing import Any, Optional, Union

from .models import BOT_PERMISSIONS, FakeChannel, FakeFile, FakeGuild, FakeMember, FakeRole, FakeUser, Perm
from .store import InteractionRecord, StoredAttachment

UserLike = Union[FakeMember, FakeUser, int, None]
# Application command option types (Discord's numbering).
SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN = 1, 2, 3, 4, 5
USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 6, 7, 8, 9, 10, 11
MESSAGE_MENU = 3  # application command type of a message context menu (1: slash, 2: user menu)


def _humans(guild: FakeGuild, bot_id: int) -> list[FakeMember]:
    return [m for m in guild.members if m.user.id not in (bot_id, guild.owner_id) and not m.user.bot]


def ordinary_member(guild: FakeGuild, bot_id: int) -> FakeMember:
    """A member without Manage Guild / Administrator (the default user of interactions)."""
    for member in _humans(guild, bot_id):
        if not guild.permissions_of(member) & (Perm.MANAGE_GUILD | Perm.ADMINISTRATOR):
            return member
    raise LookupError(f"guild {guild.id} has no ordinary member")


def admin_member(guild: FakeGuild, bot_id: int) -> FakeMember:
    for member in _humans(guild, bot_id):
        if guild.permissions_of(member) & Perm.MANAGE_GUILD:
            return member
    raise LookupError(f"guild {guild.id} has no non-owner member with Manage Guild")


def resolve_member(guild: Optional[FakeGuild], user: UserLike, bot_id: int) -> FakeMember:
    """Accept a FakeMember, FakeUser, user id or None (an ordinary member of ``guild``)."""
    if isinstance(user, FakeMember):
        return user
    if user is None:
        if guild is None:
            raise ValueError("a DM interaction needs an explicit user")
        return ordinary_member(guild, bot_id)
    user_id = user.id if isinstance(user, FakeUser) else int(user)
    member = guild.member(user_id) if guild is not None else None
    if member is not None:
        return member
    if isinstance(user, FakeUser):
        return FakeMember(user)  # not in the guild (e.g. a DM user): a throwaway membership
    raise LookupError(f"user {user_id} is not a member of guild {guild.id if guild else None}")


def as_member(fake, channel_id: int, user: UserLike) -> FakeMember:
    guild, _ = fake.find_channel(channel_id)
    return resolve_member(guild, user, fake.bot_user.id)


def _guess_type(value: Any) -> int:
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    if isinstance(value, (FakeFile, StoredAttachment)):
        return ATTACHMENT
    if isinstance(value, (FakeUser, FakeMember)):
        return USER
    if isinstance(value, FakeChannel):
        return CHANNEL
    if isinstance(value, FakeRole):
        return ROLE
    return STRING


class InteractionSender:
    """Mixed into FakeDiscord: the methods tests call to act as a Discord user."""

    # -- public API ----------------------------------------------------------------------------

    async def send_interaction(self, guild_id: Optional[int], channel_id: int, user: UserLike, name: str,
                               options: Union[dict, list, None] = None, *, command_type: int = 1,
                               target_id: Optional[int] = None, **context: Any) -> InteractionRecord:
        """Run slash command ``name`` (``"group sub"`` for subcommands) as ``user``.

        ``guild_id=None`` means a DM with the bot (``channel_id`` is then ignored). ``context``
        takes ``locale``, ``app_permissions``, ``permissions`` (the member's, overriding roles) and
        ``attachment_size_limit``. Option values: str/int/float/bool, FakeFile for attachments,
        FakeUser/FakeMember, FakeChannel, FakeRole; or pass a list of raw option dicts.
        """
        guild, channel, member = self._where(guild_id, channel_id, user)
        # A context menu's name may hold spaces ("Describe image"); it has no subcommands.
        root, *path = name.split() if command_type == 1 else [name]
        definition = self._definition(root, guild, command_type)
        leaf = definition
        for part in path:
            leaf = next((o for o in (leaf or {}).get("options", []) if o["name"] == part), None)
        resolved: dict = {}
        opts = self._options(options, (leaf or {}).get("options", []), guild, channel, resolved)
        for depth, part in reversed(list(enumerate(path))):
            kind = SUB_COMMAND if depth == len(path) - 1 else SUB_COMMAND_GROUP
            opts = [{"type": kind, "name": part, "options": opts}]
        data: dict = {"id": definition["id"] if definition else str(self.new_id()), "name": root,
                      "type": command_type, "options": opts}
        if definition and definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        if resolved:
            data["resolved"] = resolved
        if target_id is not None:
            data["target_id"] = str(target_id)
            if command_type == MESSAGE_MENU:  # Discord sends the target message itself
                target = self.messages[target_id]
                data.setdefault("resolved", {}).setdefault("messages", {})[str(target_id)] = target.payload()
        return await self._send(2, guild, channel, member, data, **context)

    async def message_menu(self, name: str, message_id: int, *, user: UserLike = None,
                           **context: Any) -> InteractionRecord:
        """Apps → ``name`` on a stored message (a message context menu), in the message's channel."""
        guild, channel = self.find_channel(self.messages[message_id].channel_id)
        return await self.send_interaction(guild.id if guild else None, channel.id, user, name,
                                           command_type=MESSAGE_MENU, target_id=message_id, **context)

    async def slash(self, name: str, options: Union[dict, list, None] = None, *, guild_id: Optional[int] = None,
                    channel_id: Optional[int] = None, user: UserLike = None, **context: Any) -> InteractionRecord:
        """send_interaction with defaults: the first guild, its first channel, an ordinary member."""
        guild = self.find_guild(guild_id) if guild_id is not None else self.guild
        return await self.send_interaction(guild.id, channel_id or guild.channels[0].id, user, name, options,
                                           **context)

    async def autocomplete(self, name: str, options: dict, focused: str, *, guild_id: Optional[int] = None,
                           channel_id: Optional[int] = None, user: UserLike = None,
                           **context: Any) -> InteractionRecord:
        """The user is typing option ``focused``; the bot should answer with callback type 8."""
        guild = self.find_guild(guild_id) if guild_id is not None else self.guild
        guild, channel, member = self._where(guild.id, channel_id or guild.channels[0].id, user)
        root, *path = name.split()
        definition = self._definition(root, guild, 1)
        leaf = definition
        for part in path:
            leaf = next((o for o in (leaf or {}).get("options", []) if o["name"] == part), None)
        types = {o["name"]: o["type"] for o in (leaf or {}).get("options", [])}
        opts: list = [{"name": k, "type": types.get(k, STRING), "value": v if k != focused else str(v),
                       **({"focused": True} if k == focused else {})} for k, v in options.items()]
        for depth, part in reversed(list(enumerate(path))):
            opts = [{"type": SUB_COMMAND if depth == len(path) - 1 else SUB_COMMAND_GROUP,
                     "name": part, "options": opts}]
        data = {"id": definition["id"] if definition else str(self.new_id()), "name": root, "type": 1,
                "options": opts}
        if definition and definition.get("guild_id"):
            data["guild_id"] = definition["guild_id"]
        return await self._send(4, guild, channel, member, data, **context)

    async def click(self, message_id: int, custom_id: str, *, user: UserLike = None, component_type: int = 2,
                    values: Optional[list[str]] = None, **context: Any) -> InteractionRecord:
        """Press a button (or pick ``values`` in a select) on a stored message."""
        msg = self.messages[message_id]
        if custom_id not in msg.custom_ids:
            raise LookupError(f"message {message_id} has no component {custom_id!r}: {msg.custom_ids}")
        guild, channel = self.find_channel(msg.channel_id)
        member = resolve_member(guild, user, self.bot_user.id)
        data: dict = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        return await self._send(3, guild, channel, member, data, message=msg.id, **context)

    async def submit_modal(self, opened_by: Union[InteractionRecord, str], values: dict[str, str], *,
                           guild_id: Optional[int] = None, channel_id: Optional[int] = None,
                           user: UserLike = None, **context: Any) -> InteractionRecord:
        """Submit a modal: ``opened_by`` is the interaction whose callback opened it (type 9), or
        a bare modal custom_id (then guild/channel/user as for slash). ``values``: input custom_id -> text.
        """
        source_message = None
        if isinstance(opened_by, InteractionRecord):
            if opened_by.modal is None:
                raise LookupError(f"interaction {opened_by.id} did not open a modal")
            custom_id, layout = opened_by.modal["custom_id"], opened_by.modal.get("components", [])
            guild, channel = self.find_channel(opened_by.channel_id)
            member = resolve_member(guild, user if user is not None else opened_by.user_id, self.bot_user.id)
            source_message = opened_by.source_message_id
        else:
            custom_id, layout = opened_by, [{"type": 1, "components": [{"type": 4, "custom_id": k}]} for k in values]
            guild = self.find_guild(guild_id) if guild_id is not None else self.guild
            guild, channel, member = self._where(guild.id, channel_id or guild.channels[0].id, user)
        data = {"custom_id": custom_id, "components": _fill_modal(layout, values)}
        return await self._send(5, guild, channel, member, data, message=source_message, **context)

    # -- building blocks -----------------------------------------------------------------------

    def _where(self, guild_id: Optional[int], channel_id: int, user: UserLike):
        if guild_id is None:
            if not isinstance(user, (FakeUser, FakeMember)):
                raise ValueError("a DM interaction needs a FakeUser or FakeMember")
            member = resolve_member(None, user, self.bot_user.id)
            return None, self.dm_channel(member.user), member
        guild = self.find_guild(guild_id)
        if guild is None:
            raise LookupError(f"no guild {guild_id}")
        return guild, guild.channel(channel_id), resolve_member(guild, user, self.bot_user.id)

    def _definition(self, name: str, guild: Optional[FakeGuild], command_type: int) -> Optional[dict]:
        """The synced command (guild commands shadow global ones), or None if never synced."""
        pools = ([self.guild_commands.get(guild.id, [])] if guild else []) + [self.global_commands]
        for pool in pools:
            for cmd in pool:
                if cmd["name"] == name and cmd.get("type", 1) == command_type:
                    return cmd
        return None

    def _options(self, options, definitions: list, guild, channel, resolved: dict) -> list:
        if options is None:
            return []
        if isinstance(options, list):
            return options  # raw option dicts, sent as given
        types = {o["name"]: o["type"] for o in definitions}
        out = []
        for name, value in options.items():
            kind = types.get(name) or _guess_type(value)
            out.append({"name": name, "type": kind, "value": self._resolve(kind, value, guild, channel, resolved)})
        return out

    def _resolve(self, kind: int, value: Any, guild: Optional[FakeGuild], channel: FakeChannel,
                 resolved: dict) -> Any:
        """The option's wire value; users, channels, roles and files also go into ``resolved``."""
        if kind == ATTACHMENT:
            if isinstance(value, FakeFile):
                att = self.message_ops.store_file(channel.id, value.filename, value.data, value.content_type,
                                                  ephemeral=True)
                extra = {k: v for k, v in (("width", value.width), ("height", value.height)) if v is not None}
            else:
                att, extra = value, {}
            resolved.setdefault("attachments", {})[str(att.id)] = {**att.payload(), **extra}
            return str(att.id)
        is_role = isinstance(value, FakeRole) or (
            kind == MENTIONABLE and isinstance(value, int) and guild is not None and guild.role(value) is not None)
        if kind in (USER, MENTIONABLE) and not is_role:
            if isinstance(value, FakeMember):
                member, user = value, value.user
            elif isinstance(value, FakeUser):
                member, user = (guild.member(value.id) if guild else None), value
            else:
                member = guild.member(int(value)) if guild else None
                if member is None:
                    raise LookupError(f"user option {value!r}: pass a FakeUser, or the id of a guild member")
                user = member.user
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            if guild is not None and member is not None and guild.member(user.id) is not None:
                data = member.payload(guild.permissions_of(member))
                data.pop("user")
                resolved.setdefault("members", {})[str(user.id)] = data
            return str(user.id)
        if kind in (ROLE, MENTIONABLE):
            role = value if isinstance(value, FakeRole) else guild.role(int(value))
            resolved.setdefault("roles", {})[str(role.id)] = role.payload()
            return str(role.id)
        if kind == CHANNEL:
            target = value if isinstance(value, FakeChannel) else self.find_channel(int(value))[1]
            # Discord sends the invoking user's permissions here; the bot's are a close enough stand-in.
            perms = guild.permissions_of(guild.member(self.bot_user.id)) if guild else BOT_PERMISSIONS
            resolved.setdefault("channels", {})[str(target.id)] = {
                "id": str(target.id), "name": target.name, "type": target.type, "permissions": str(perms),
                "parent_id": str(target.parent_id) if target.parent_id else None, "nsfw": target.nsfw}
            return str(target.id)
        return value

    async def _send(self, itype: int, guild: Optional[FakeGuild], channel: FakeChannel, member: FakeMember,
                    data: dict, *, message: Optional[int] = None, locale: str = "en-US",
                    app_permissions: Optional[int] = None, permissions: Optional[int] = None,
                    attachment_size_limit: Optional[int] = None) -> InteractionRecord:
        iid = self.new_id()
        token = f"itok.{iid}.{secrets.token_hex(16)}"
        if app_permissions is None:
            app_permissions = guild.permissions_of(guild.member(self.bot_user.id)) if guild else BOT_PERMISSIONS
        payload: dict = {
            "id": str(iid), "application_id": str(self.application_id), "type": itype, "data": data,
            "token": token, "version": 1, "locale": locale, "app_permissions": str(app_permissions),
            "attachment_size_limit": attachment_size_limit or (guild.filesize_limit if guild else 10 * 1024 * 1024),
            "entitlements": [], "entitlement_sku_ids": [],
            # Guild install (key "0"): the value is the guild id, or "0" in the bot's DMs.
            "authorizing_integration_owners": {"0": str(guild.id) if guild else "0"},
            "context": 0 if guild else 1, "channel_id": str(channel.id), "channel": channel.payload(),
        }
        if guild is not None:
            perms = permissions if permissions is not None else guild.permissions_of(member)
            payload["channel"]["permissions"] = str(perms)
            payload.update(guild_id=str(guild.id), guild_locale=guild.locale,
                           guild={"id": str(guild.id), "locale": guild.locale, "features": []},
                           member=member.payload(perms))
        else:
            payload["user"] = member.user.payload()
        if message is not None:
            payload["message"] = self.messages[message].payload()
        loop_time = asyncio.get_running_loop().time()
        rec = InteractionRecord(iid, token, itype, payload, guild.id if guild else None, channel.id,
                                member.user.id, self.now(), loop_time, source_message_id=message)
        self.interactions[iid] = rec
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        self.notify()
        return rec


def _fill_modal(layout: list, values: dict[str, str]) -> list:
    """The submitted components: the modal's text inputs (in rows or labels) with the user's text."""
    out = []
    for node in layout:
        if node.get("type") == 1:
            out.append({"type": 1, "components": [
                {"type": c.get("type", 4), "custom_id": c["custom_id"], "value": values.get(c["custom_id"], "")}
                for c in node.get("components", []) if "custom_id" in c]})
        elif node.get("type") == 18 and "custom_id" in node.get("component", {}):
            inner = node["component"]
            out.append({"type": 18, "component": {"type": inner.get("type", 4), "custom_id": inner["custom_id"],
                                                  "value": values.get(inner["custom_id"], "")}})
    return out
