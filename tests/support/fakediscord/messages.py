"""Creating, editing and deleting stored messages, shared by channel routes and interaction webhooks.

Discord semantics kept here:
- uploads: files arrive as multipart ``files[n]``; ``payload.attachments`` entries with
  ``id: n`` give them a filename/description. A file over the channel's upload limit fails the whole
  request with 413 / 40005 and stores nothing.
- edits: a field present in the payload replaces the old value. If ``attachments`` is present it is
  the list of existing attachments to keep (by id) plus the new uploads (by index); if it is absent,
  new files are appended (message.mdx, "Edit Message").
- nonces: ``enforce_nonce`` with a nonce the same author used in the same channel a few minutes ago
  returns that message instead of creating a duplicate.
- gateway: MESSAGE_CREATE/UPDATE/DELETE are dispatched for non-ephemeral messages when the
  bot's intents ask for them (and ``fake.dispatch_message_events`` is on).
- message content: a bot that did not IDENTIFY with the privileged MESSAGE_CONTENT intent gets
  empty ``content``, ``attachments``, ``embeds`` and ``components`` in the messages it fetches
  (one message, a channel's history) and in MESSAGE_CREATE/UPDATE, except in its own messages,
  messages that mention it and DMs (``seen_by_bot``). An interaction's resolved messages are
  whole (builders.py sends ``payload()``).
"""
from __future__ import annotations

import mimetypes
import re
from typing import TYPE_CHECKING, Any, Optional, Sequence

from .gateway import INTENT_DIRECT_MESSAGES, INTENT_GUILD_MESSAGES, INTENT_MESSAGE_CONTENT
from .models import FakeFile, FakeMember
from .store import FLAG_EPHEMERAL, FLAG_LOADING, StoredAttachment, StoredMessage
from .validate import check_message
from .wire import CANNOT_EDIT_OTHERS_MESSAGE, OLD_MESSAGE_EDIT_LIMIT, DiscordError, too_large

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeDiscord

_FILE_FIELD = re.compile(r"files\[(\d+)\]|file(\d*)$")
ONE_HOUR = 3600.0
# Message flags a bot may set itself (suppress embeds, ephemeral, suppress notifications, components v2).
_SETTABLE_FLAGS = (1 << 2) | FLAG_EPHEMERAL | (1 << 12) | (1 << 15)

Files = list[tuple[str, str, bytes, Optional[str]]]


class MessageOps:
    def __init__(self, fake: "FakeDiscord") -> None:
        self.fake = fake

    # -- attachments ---------------------------------------------------------------------------

    def store_file(self, channel_id: int, filename: str, data: bytes, content_type: Optional[str] = None,
                   description: Optional[str] = None, ephemeral: bool = False) -> StoredAttachment:
        """Keep bytes at a CDN-like URL on the fake, so the bot can download them back."""
        att_id = self.fake.new_id()
        url = f"{self.fake.base_url}/attachments/{channel_id}/{att_id}/{filename}"
        att = StoredAttachment(att_id, filename, data, url, content_type, description, ephemeral)
        self.fake.attachments[att_id] = att
        return att

    def _uploads(self, channel_id: int, payload: dict, files: Files, limit: int) -> dict[int, StoredAttachment]:
        """Store the uploaded files, keyed by their ``files[n]`` index. Checks sizes first."""
        for _, filename, data, _ in files:
            if len(data) > limit:
                raise too_large()
        meta = {}
        for entry in payload.get("attachments") or []:
            try:
                meta[int(entry["id"])] = entry
            except (KeyError, TypeError, ValueError):
                continue
        out: dict[int, StoredAttachment] = {}
        for order, (field_name, filename, data, ctype) in enumerate(files):
            match = _FILE_FIELD.match(field_name)
            index = int(match.group(1) or match.group(2) or order) if match else order
            info = meta.get(index, {})
            ctype = None if ctype == "application/octet-stream" else ctype
            out[index] = self.store_file(channel_id, info.get("filename") or filename, data,
                                         ctype or _guess_type(filename), info.get("description"))
        return out

    # -- create / edit / delete ----------------------------------------------------------------

    async def create(self, channel_id: int, payload: Optional[dict], files: Files, *,
                     author: Optional[dict] = None, msg_type: int = 0, limit: Optional[int] = None,
                     extra_flags: int = 0, attached: Sequence[StoredAttachment] = (),
                     **fields: Any) -> StoredMessage:
        """Validate and store a new message from the bot (or ``author``, with files already stored
        as ``attached``); dispatch MESSAGE_CREATE."""
        fake = self.fake
        payload = payload or {}
        check_message(payload, len(files) + len(attached), creating=not extra_flags & FLAG_LOADING)
        nonce = payload.get("nonce")
        author = author or fake.bot_user.payload()
        if nonce is not None and payload.get("enforce_nonce"):
            existing = self._find_by_nonce(channel_id, str(nonce), author["id"])
            if existing is not None:
                return existing
        uploads = self._uploads(channel_id, payload, files, limit if limit is not None else fake.upload_limit(channel_id))
        guild, _ = fake.find_channel(channel_id)
        msg = StoredMessage(
            id=fake.new_id(), channel_id=channel_id, author=author, time=fake.now(), type=msg_type,
            content=payload.get("content") or "", embeds=payload.get("embeds") or [],
            components=payload.get("components") or [],
            attachments=[uploads[i] for i in sorted(uploads)] + list(attached),
            flags=(int(payload.get("flags") or 0) & _SETTABLE_FLAGS) | extra_flags,
            nonce=str(nonce) if nonce is not None else None, guild_id=guild.id if guild else None,
            allowed_mentions=payload.get("allowed_mentions"), message_reference=payload.get("message_reference"),
            **fields,
        )
        for att in msg.attachments:
            att.ephemeral = msg.ephemeral
        fake.messages[msg.id] = msg
        await self._dispatch("MESSAGE_CREATE", msg)
        return msg

    async def edit(self, msg: StoredMessage, payload: Optional[dict], files: Files, *,
                   limit: Optional[int] = None, via_webhook: bool = False) -> StoredMessage:
        """Apply an edit; ``via_webhook`` edits (interaction tokens) skip the author check."""
        fake = self.fake
        payload = payload or {}
        if not via_webhook and msg.author.get("id") != str(fake.bot_user.id):
            raise DiscordError(403, CANNOT_EDIT_OTHERS_MESSAGE, "Cannot edit a message authored by another user")
        check_message(payload, len(files), creating=False)
        if not via_webhook and fake.old_message_edit_limit is not None and fake.now() - msg.time > ONE_HOUR:
            if msg.old_edits >= fake.old_message_edit_limit:
                raise DiscordError(400, OLD_MESSAGE_EDIT_LIMIT,
                                   "Maximum number of edits to messages older than 1 hour reached. Try again later")
            msg.old_edits += 1
        uploads = self._uploads(msg.channel_id, payload, files,
                                limit if limit is not None else fake.upload_limit(msg.channel_id))
        for key in ("content", "embeds", "components"):
            if key in payload:
                setattr(msg, key, payload[key] if payload[key] is not None else ("" if key == "content" else []))
        if "allowed_mentions" in payload:
            msg.allowed_mentions = payload["allowed_mentions"]
        if payload.get("flags") is not None:
            # Only suppress-embeds can change on edit; ephemeral/loading stay as they were.
            keep = msg.flags & ~(1 << 2)
            msg.flags = keep | (int(payload["flags"]) & (1 << 2))
        if "attachments" in payload:
            by_id = {a.id: a for a in msg.attachments}
            kept: list[StoredAttachment] = []
            for entry in payload["attachments"] or []:
                ref = int(entry["id"])
                if ref in by_id:
                    kept.append(by_id[ref])
                elif ref in uploads:
                    kept.append(uploads.pop(ref))
            msg.attachments = kept + [uploads[i] for i in sorted(uploads)]
        else:
            msg.attachments = msg.attachments + [uploads[i] for i in sorted(uploads)]
        msg.flags &= ~FLAG_LOADING  # any edit of a "thinking..." message resolves it
        msg.edited_time = fake.now()
        msg.edits.append({"payload": payload, "files": [f[1] for f in files], "time": msg.edited_time})
        await self._dispatch("MESSAGE_UPDATE", msg)
        return msg

    async def delete(self, msg: StoredMessage) -> None:
        msg.deleted = True
        if self._wanted(msg):
            data = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            await self.fake.gateway.dispatch("MESSAGE_DELETE", data)

    async def post_as_user(self, channel_id: int, member: FakeMember, content: str,
                           files: Sequence[FakeFile] = ()) -> StoredMessage:
        """A member's message, with ``files`` attached (measured as Discord measures images: the
        FakeFile's width and height)."""
        attached = []
        for file in files:
            att = self.store_file(channel_id, file.filename, file.data, file.content_type)
            att.width, att.height = file.width, file.height
            attached.append(att)
        return await self.create(channel_id, {"content": content}, [], author=member.user.payload(),
                                 attached=attached)

    # -- what the bot may read -----------------------------------------------------------------

    def seen_by_bot(self, msg: StoredMessage) -> dict:
        """The message object as the bot gets it over REST and the gateway: emptied of what the
        MESSAGE_CONTENT intent guards unless the bot asked for it or the message is exempt."""
        data = msg.payload()
        if self.fake.gateway.wants(INTENT_MESSAGE_CONTENT) or self._content_exempt(msg):
            return data
        return {**data, "content": "", "attachments": [], "embeds": [], "components": []}

    def _content_exempt(self, msg: StoredMessage) -> bool:
        """Discord's exceptions to the intent: the bot's own messages, DMs, messages mentioning it."""
        bot_id = self.fake.bot_user.id
        return (msg.author.get("id") == str(bot_id) or msg.guild_id is None
                or re.search(rf"<@!?{bot_id}>", msg.content) is not None)

    # -- helpers -------------------------------------------------------------------------------

    def _find_by_nonce(self, channel_id: int, nonce: str, author_id: str) -> Optional[StoredMessage]:
        horizon = self.fake.now() - self.fake.nonce_window
        for msg in self.fake.messages.values():
            if (msg.channel_id == channel_id and msg.nonce == nonce and msg.author.get("id") == author_id
                    and msg.time >= horizon and not msg.deleted):
                return msg
        return None

    def _wanted(self, msg: StoredMessage) -> bool:
        gw = self.fake.gateway
        if not self.fake.dispatch_message_events or msg.ephemeral or gw.session is None:
            return False
        return gw.wants(INTENT_GUILD_MESSAGES if msg.guild_id is not None else INTENT_DIRECT_MESSAGES)

    async def _dispatch(self, event: str, msg: StoredMessage) -> None:
        if self._wanted(msg):
            await self.fake.gateway.dispatch(event, self.seen_by_bot(msg))


def _guess_type(filename: str) -> Optional[str]:
    return mimetypes.guess_type(filename)[0]
