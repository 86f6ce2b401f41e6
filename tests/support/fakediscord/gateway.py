"""The gateway half of the fake: one websocket endpoint speaking Discord's gateway v10 in JSON text.

Protocol as discord.py 2.7 uses it:
  connect -> HELLO (op 10) -> the client heartbeats (op 1, answered with op 11) and IDENTIFYs
  (op 2) -> READY (guilds listed as unavailable) -> one GUILD_CREATE per guild. After a drop the
  client reconnects to READY's ``resume_gateway_url`` and sends RESUME (op 6); the fake replays the
  dispatches the client missed and sends RESUMED, or answers INVALID_SESSION (op 9, d=false) for a
  session it has forgotten, after which the client identifies again.

Frames are sent as plain text: discord.py only decompresses binary frames, so the
``compress=zlib-stream`` query the client asks for can be ignored.
"""
from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from aiohttp import WSMsgType, web

from .store import GatewayFrame

if TYPE_CHECKING:  # pragma: no cover
    from .server import FakeDiscord

HEARTBEAT_INTERVAL_MS = 41250
# Intents Discord makes a bot enable in the developer portal (members, presences, message content).
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15  # privileged: the content of members' messages


@dataclass
class GatewaySession:
    id: str
    intents: int
    seq: int = 0
    # Every dispatch sent in this session, kept so RESUME can replay what a client missed.
    log: list[dict] = field(default_factory=list)
    ws: Optional[web.WebSocketResponse] = None


class Gateway:
    """Serves ``/gateway`` for one FakeDiscord; at most one live session (one unsharded bot)."""

    def __init__(self, fake: "FakeDiscord") -> None:
        self.fake = fake
        self.session: Optional[GatewaySession] = None
        self.sockets: set[web.WebSocketResponse] = set()
        self.frames: list[GatewayFrame] = []
        self.identify_count = 0
        self.resume_count = 0
        self._send_lock = asyncio.Lock()

    # -- connection handling -------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            await self._send(ws, {"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                self._log("in", op, None, None, data)
                await self._on_frame(ws, op, data)
        finally:
            self.sockets.discard(ws)
            if self.session is not None and self.session.ws is ws:
                self.session.ws = None  # keep the session: the client may RESUME it
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, op: int, data: Any) -> None:
        if op == 1:  # heartbeat
            await self._send(ws, {"op": 11})
        elif op == 2:
            await self._identify(ws, data)
        elif op == 6:
            await self._resume(ws, data)
        elif op == 8:  # request guild members: everything we know, in one chunk
            await self._send_member_chunks(ws, data)
        # op 3 (presence) and op 4 (voice state) are only logged.

    async def _identify(self, ws: web.WebSocketResponse, data: dict) -> None:
        if data.get("token") != self.fake.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if intents & PRIVILEGED_INTENTS and not self.fake.allow_privileged_intents:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        self.identify_count += 1
        self.session = GatewaySession(id=uuid.uuid4().hex, intents=intents, ws=ws)
        fake = self.fake
        ready = {
            "v": 10, "user": {**fake.bot_user.payload(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(g.id), "unavailable": True} for g in fake.guilds],
            "session_id": self.session.id, "resume_gateway_url": fake.gateway_url,
            "application": {"id": str(fake.application_id), "flags": 0},
            "private_channels": [], "relationships": [], "presences": [],
            "geo_ordered_rtc_regions": [], "session_type": "normal", "_trace": ["fakediscord"],
        }
        await self.dispatch("READY", ready)
        for guild in fake.guilds:
            await self.dispatch("GUILD_CREATE", fake.guild_create_payload(guild))

    async def _resume(self, ws: web.WebSocketResponse, data: dict) -> None:
        session = self.session
        if session is None or data.get("session_id") != session.id or data.get("token") != self.fake.token:
            # d=false: not resumable, the client must identify from scratch.
            await self._send(ws, {"op": 9, "d": False})
            return
        self.resume_count += 1
        session.ws = ws
        last_seen = data.get("seq") or 0
        for frame in [f for f in session.log if f["s"] > last_seen]:
            await self._send(ws, frame)
        await self.dispatch("RESUMED", {"_trace": ["fakediscord"]})

    async def _send_member_chunks(self, ws: web.WebSocketResponse, data: dict) -> None:
        guild_ids = data.get("guild_id")
        for gid in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            guild = self.fake.find_guild(int(gid))
            if guild is None:
                continue
            chunk = {"guild_id": str(guild.id), "members": [m.payload() for m in guild.members],
                     "chunk_index": 0, "chunk_count": 1, "not_found": []}
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            await self.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    # -- sending -------------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict) -> int:
        """Send a dispatch (op 0) in the current session; returns its sequence number.

        While the client is disconnected the frame is only logged; RESUME replays it.
        """
        session = self.session
        if session is None:
            raise RuntimeError("no gateway session: the bot has not identified yet")
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.log.append(frame)
        if session.ws is not None and not session.ws.closed:
            try:
                await self._send(session.ws, frame)
            except ConnectionError:
                pass  # the socket died under us; the frame is in the log for RESUME
        return session.seq

    def wants(self, intent_bit: int) -> bool:
        return self.session is not None and bool(self.session.intents & intent_bit)

    async def _send(self, ws: web.WebSocketResponse, frame: dict) -> None:
        self._log("out", frame.get("op"), frame.get("t"), frame.get("s"), frame.get("d"))
        async with self._send_lock:  # one frame at a time on the wire
            await ws.send_str(json.dumps(frame))

    def _log(self, direction: str, op: Any, t: Optional[str], s: Optional[int], d: Any) -> None:
        self.frames.append(GatewayFrame(direction, op, t, s, d, asyncio.get_running_loop().time()))

    # -- fault injection -----------------------------------------------------------------------

    async def close(self, code: int = 4000, *, forget_session: bool = False) -> None:
        """Close every open gateway socket with ``code``.

        Codes such as 4000 (unknown error) or 1001 make discord.py RESUME at once; 4004
        (authentication failed) and 4014 (disallowed intents) make it give up.
        ``forget_session`` drops the session so the RESUME gets INVALID_SESSION and the client
        identifies again (a fresh READY).
        """
        if forget_session:
            self.session = None
        for ws in list(self.sockets):
            await ws.close(code=code, message=b"closed by FakeDiscord")

    async def send_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client closes the socket itself and resumes."""
        if self.session and self.session.ws is not None:
            await self._send(self.session.ws, {"op": 7, "d": None})
