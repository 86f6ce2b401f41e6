"""What the fake remembers: messages, attachments, interactions, and a log of every request.

Tests assert against these objects (``fake.messages_in(...)``, ``fake.requests``, ...). Times are
kept twice: ``time`` on the fake's clock (Unix seconds, shifted by ``fake.advance_clock``) for
Discord's own rules, and ``mono`` on the event loop's monotonic clock for measuring latency, e.g.
"the bot deferred within 3 s".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .models import iso

# Message flags the fake sets or reads.
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7


@dataclass
class StoredAttachment:
    id: int
    filename: str
    data: bytes
    url: str
    content_type: Optional[str] = None
    description: Optional[str] = None
    ephemeral: bool = False
    width: Optional[int] = None   # Discord measures the images it can show
    height: Optional[int] = None

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict:
        out = {"id": str(self.id), "filename": self.filename, "size": self.size, "url": self.url,
               "proxy_url": self.url, "content_type": self.content_type, "ephemeral": self.ephemeral}
        if self.description is not None:
            out["description"] = self.description
        if self.width is not None and self.height is not None:
            out.update(width=self.width, height=self.height)
        return out


@dataclass
class StoredMessage:
    id: int
    channel_id: int
    author: dict
    time: float  # creation time on the fake clock
    content: str = ""
    embeds: list = field(default_factory=list)
    components: list = field(default_factory=list)
    attachments: list[StoredAttachment] = field(default_factory=list)
    flags: int = 0
    nonce: Optional[str] = None
    type: int = 0
    guild_id: Optional[int] = None
    webhook_id: Optional[int] = None
    application_id: Optional[int] = None
    interaction_id: Optional[int] = None  # set for interaction responses and followups
    interaction_metadata: Optional[dict] = None
    message_reference: Optional[dict] = None
    allowed_mentions: Optional[dict] = None
    edited_time: Optional[float] = None
    deleted: bool = False
    # One entry per accepted edit: the payload the bot sent and the names of new files.
    edits: list[dict] = field(default_factory=list)
    # Edits accepted after the message was an hour old (for Discord's error 30046 budget).
    old_edits: int = 0

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & FLAG_EPHEMERAL)

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    @property
    def files(self) -> dict[str, bytes]:
        """Filename -> bytes of the current attachments."""
        return {a.filename: a.data for a in self.attachments}

    @property
    def custom_ids(self) -> list[str]:
        """Every custom_id found in the message's components, depth first."""
        found: list[str] = []

        def walk(node):
            if isinstance(node, dict):
                if "custom_id" in node:
                    found.append(node["custom_id"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.components)
        return found

    def payload(self) -> dict:
        """The message object Discord returns and puts in MESSAGE_CREATE."""
        data: dict[str, Any] = {
            "id": str(self.id), "channel_id": str(self.channel_id), "type": self.type,
            "content": self.content, "author": self.author, "timestamp": iso(self.time),
            "edited_timestamp": iso(self.edited_time) if self.edited_time is not None else None,
            "tts": False, "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": [a.payload() for a in self.attachments], "embeds": self.embeds,
            "components": self.components, "pinned": False, "flags": self.flags,
        }
        if self.guild_id is not None:
            data["guild_id"] = str(self.guild_id)
        if self.nonce is not None:
            data["nonce"] = self.nonce
        if self.webhook_id is not None:
            data["webhook_id"] = str(self.webhook_id)
        if self.application_id is not None:
            data["application_id"] = str(self.application_id)
        if self.interaction_metadata is not None:
            data["interaction_metadata"] = self.interaction_metadata
        if self.message_reference is not None:
            data["message_reference"] = self.message_reference
        return data


@dataclass
class RecordedRequest:
    """One HTTP request the bot made (REST, webhook or CDN)."""

    method: str
    path: str  # relative to the API base, e.g. "/channels/1/messages"; CDN paths start with "/attachments"
    query: dict
    json: Any  # the JSON body, or payload_json of a multipart body, or None
    files: list[tuple[str, str, bytes]]  # (form field, filename, bytes)
    time: float
    mono: float
    status: int = 0
    forced: bool = False  # answered by a fail_next()/delay_next() rule rather than the route
    unhandled: bool = False  # no route matched (the fake answered 404)
    response: Any = None  # the JSON the fake answered with (None for empty bodies)


@dataclass
class CallbackRecord:
    """One accepted POST /interactions/{id}/{token}/callback."""

    interaction_id: int
    type: int
    data: Optional[dict]
    files: list[tuple[str, str, bytes]]
    time: float
    mono: float
    delay: float  # seconds between the fake sending the interaction and receiving this callback


@dataclass
class InteractionRecord:
    """An interaction the test sent to the bot, and everything the bot did with its token."""

    id: int
    token: str
    type: int
    payload: dict
    guild_id: Optional[int]
    channel_id: int
    user_id: int
    time: float
    mono: float
    callbacks: list[CallbackRecord] = field(default_factory=list)
    # The message @original refers to: the response/loading message, or the component's message.
    original_message_id: Optional[int] = None
    followup_ids: list[int] = field(default_factory=list)
    modal: Optional[dict] = None  # the modal the bot opened (callback type 9)
    # True right after a type-5 defer: Discord turns the next followup into an edit of the
    # loading message instead of a new message.
    followup_edits_loading: bool = False
    # Set when the interaction came from a component on this message.
    source_message_id: Optional[int] = None

    @property
    def acknowledged(self) -> bool:
        return bool(self.callbacks)

    @property
    def callback_types(self) -> list[int]:
        return [c.type for c in self.callbacks]


@dataclass
class ForcedResponse:
    """A canned answer queued with fail_next()/delay_next() for the next matching request."""

    method: str
    pattern: str
    status: Optional[int]  # None: pass through to the real route after ``delay``
    body: Any = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1


@dataclass
class GatewayFrame:
    """One gateway frame, either direction ('in' = from the bot, 'out' = to the bot)."""

    direction: str
    op: int
    t: Optional[str]
    s: Optional[int]
    d: Any
    mono: float
