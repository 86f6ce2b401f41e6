"""FakeDiscord: a loopback Discord (REST v10 + gateway) for end-to-end tests of a discord.py bot.

Usage (inside a sync test, with ``asyncio.run``)::

    async with FakeDiscord() as fake:                      # one default guild, see models.default_guild
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.default(),
                           guild_ready_timeout=0.1)       # on_ready waits 2 s without this
        async with fake.run_client(bot):                   # patches discord.py, starts, waits for ready
            await bot.tree.sync()                          # stored in fake.global_commands
            rec = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.member, "ping")
            cb = await fake.wait_for_callback(rec)         # cb.type == 4, cb.delay < 3.0
            assert fake.original_response(rec.id).content == "pong"

The server binds 127.0.0.1 on a free port. ``fake.api_base`` and ``fake.gateway_url`` are the
values for a bot's ``[discord] api_base`` / ``gateway_url`` settings; ``fake.patch_discord()``
sets discord.py's own class attributes (``Route.BASE``, ``DiscordWebSocket.DEFAULT_GATEWAY``)
for bots without such settings. Routes live in rest.py (bot-token REST), interactions.py
(callbacks and interaction webhooks), builders.py (what tests send) and gateway.py.

discord.py pauses 5 s before every re-IDENTIFY (``Client.before_identify_hook``); tests that make
the fake forget a session should replace that hook on their client with a no-op coroutine.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any, AsyncIterator, Callable, Iterator, Optional, Sequence

from aiohttp import web

from . import builders, interactions, messages, rest
from .gateway import Gateway
from .models import (
    BOT_PERMISSIONS,
    BOT_USER_ID,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Snowflakes,
    default_guild,
)
from .store import (
    CallbackRecord,
    ForcedResponse,
    InteractionRecord,
    RecordedRequest,
    StoredAttachment,
    StoredMessage,
)
from .wire import FILES, PAYLOAD, RECORD, DiscordError, path_matches, rate_limit_response, read_body

API_PREFIX = "/api/v10"
# Paths authorised by the token in the URL (or public, like the CDN) rather than "Bot <token>".
_NO_AUTH_PREFIXES = ("/interactions/", "/webhooks/", "/attachments/")


class FakeDiscord(builders.InteractionSender):
    """The loopback Discord. All state is public so tests can assert on it.

    Recorded data: ``requests`` (every HTTP request), ``messages`` (id -> StoredMessage, deleted
    ones kept with ``deleted=True``), ``interactions`` (id -> InteractionRecord with its
    ``callbacks``), ``attachments`` (id -> StoredAttachment, bot uploads and test files),
    ``downloads`` (attachments the bot fetched), ``global_commands`` / ``guild_commands``
    (what tree.sync() stored), ``gateway.frames`` (every gateway frame).
    """

    def __init__(
        self,
        guilds: Optional[list[FakeGuild]] = None,
        *,
        token: str = "fake-bot-token",
        application_id: int = BOT_USER_ID,
        bot_user: Optional[FakeUser] = None,
        initial_response_timeout: Optional[float] = 3.0,
        token_lifetime: float = 15 * 60,
        nonce_window: float = 5 * 60,
        old_message_edit_limit: Optional[int] = None,
        allow_privileged_intents: bool = True,
        dispatch_message_events: bool = True,
    ) -> None:
        self.guilds: list[FakeGuild] = guilds if guilds is not None else [default_guild()]
        self.token = token
        self.application_id = application_id
        self.bot_user = bot_user or FakeUser(application_id, "DiscoBot", bot=True)
        # Discord's rules, adjustable per test: 3 s to acknowledge, 15 min token, nonce dedup window.
        self.initial_response_timeout = initial_response_timeout
        self.token_lifetime = token_lifetime
        self.nonce_window = nonce_window
        # Hidden budget for edits of messages older than 1 hour (error 30046); None = unlimited.
        self.old_message_edit_limit = old_message_edit_limit
        self.allow_privileged_intents = allow_privileged_intents
        self.dispatch_message_events = dispatch_message_events

        self.snowflakes = Snowflakes()
        self.clock_offset = 0.0
        self.requests: list[RecordedRequest] = []
        self.messages: dict[int, StoredMessage] = {}
        self.attachments: dict[int, StoredAttachment] = {}
        self.downloads: list[RecordedRequest] = []
        self.interactions: dict[int, InteractionRecord] = {}
        self.global_commands: list[dict] = []
        self.guild_commands: dict[int, list[dict]] = {}
        self.dm_channels: dict[int, FakeChannel] = {}  # user id -> DM channel
        self.forced: list[ForcedResponse] = []
        self.errors: list[BaseException] = []  # exceptions raised inside the fake's own handlers
        self.gateway = Gateway(self)
        self.message_ops = messages.MessageOps(self)
        self.port = 0
        self._runner: Optional[web.AppRunner] = None
        self._changed: Optional[asyncio.Event] = None
        for guild in self.guilds:
            self._add_bot_member(guild)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> "FakeDiscord":
        # Large bodies must reach our own 413 check instead of aiohttp's 1 MiB default limit.
        app = web.Application(middlewares=[self._middleware], client_max_size=512 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        rest.RestRoutes(self).register(app.router, API_PREFIX)
        interactions.InteractionRoutes(self).register(app.router, API_PREFIX)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._unhandled)  # must stay last
        app.on_shutdown.append(self._close_sockets)
        self._changed = asyncio.Event()
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeDiscord":
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    async def _close_sockets(self, _app: web.Application) -> None:
        await self.gateway.close(code=1001)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @contextlib.contextmanager
    def patch_discord(self) -> Iterator["FakeDiscord"]:
        """Point discord.py's REST base and default gateway at this fake; restored on exit.

        ``_set_api_version`` rewrites Route.BASE, so don't call it while patched.
        """
        import discord.gateway
        import discord.http
        import yarl

        old = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield self
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old

    @contextlib.asynccontextmanager
    async def run_client(self, client: Any, *, timeout: float = 60.0) -> AsyncIterator[Any]:
        """Patch discord.py, start ``client`` with this fake's token, wait until it is ready.

        On exit the client is closed and any exception it died with is re-raised.
        Create clients with ``guild_ready_timeout=0.1``, or on_ready waits 2 s.
        """
        with self.patch_discord():
            task = asyncio.create_task(client.start(self.token))
            deadline = asyncio.get_running_loop().time() + timeout
            # wait_until_ready() can't be used before login, so poll is_ready().
            while not client.is_ready():
                if task.done():
                    task.result()  # re-raise the start failure
                    raise RuntimeError("client stopped before it became ready")
                if asyncio.get_running_loop().time() > deadline:
                    await client.close()  # closes its HTTP session too, so no "unclosed" warnings
                    task.cancel()
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await task
                    raise TimeoutError(f"client not ready after {timeout} s")
                await asyncio.sleep(0.01)
            try:
                yield client
            finally:
                await client.close()
                try:
                    await asyncio.wait_for(task, 5)
                except asyncio.CancelledError:
                    pass

    # -- world ---------------------------------------------------------------------------------

    def _add_bot_member(self, guild: FakeGuild) -> None:
        if guild.member(self.bot_user.id) is not None:
            return
        role = FakeRole(self.snowflakes.make(time.time()), self.bot_user.username, BOT_PERMISSIONS,
                        position=1, managed=True)
        guild.roles.append(role)
        guild.members.append(FakeMember(self.bot_user, roles=[role.id]))

    @property
    def guild(self) -> FakeGuild:
        """The first configured guild (the only one in most tests)."""
        return self.guilds[0]

    @property
    def channel(self) -> FakeChannel:
        """The first channel of the first guild."""
        return self.guild.channels[0]

    @property
    def member(self) -> FakeMember:
        """A member of the first guild without Manage Guild (an ordinary user)."""
        return builders.ordinary_member(self.guild, self.bot_user.id)

    @property
    def admin(self) -> FakeMember:
        """A member of the first guild who has Manage Guild but is not the owner."""
        return builders.admin_member(self.guild, self.bot_user.id)

    def find_guild(self, guild_id: int) -> Optional[FakeGuild]:
        return next((g for g in self.guilds if g.id == guild_id), None)

    def find_channel(self, channel_id: int) -> tuple[Optional[FakeGuild], Optional[FakeChannel]]:
        for guild in self.guilds:
            for channel in guild.channels:
                if channel.id == channel_id:
                    return guild, channel
        dm = next((c for c in self.dm_channels.values() if c.id == channel_id), None)
        return None, dm

    def dm_channel(self, user: FakeUser) -> FakeChannel:
        """The DM channel between the bot and ``user`` (created on first use)."""
        channel = self.dm_channels.get(user.id)
        if channel is None:
            channel = FakeChannel(self.new_id(), "", type=1, recipients=[user])
            self.dm_channels[user.id] = channel
        return channel

    def upload_limit(self, channel_id: int) -> int:
        guild, _ = self.find_channel(channel_id)
        return guild.filesize_limit if guild is not None else 10 * 1024 * 1024

    def guild_create_payload(self, guild: FakeGuild) -> dict:
        return guild.create_payload(self.now())

    async def join_guild(self, guild: FakeGuild) -> None:
        """Add a guild at runtime and send GUILD_CREATE (the bot was invited somewhere)."""
        self._add_bot_member(guild)
        self.guilds.append(guild)
        await self.gateway.dispatch("GUILD_CREATE", self.guild_create_payload(guild))

    # -- clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock (Unix seconds): real time plus ``clock_offset``."""
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Jump the fake's clock forward, e.g. 16 * 60 to expire every interaction token."""
        self.clock_offset += seconds

    def new_id(self) -> int:
        return self.snowflakes.make(self.now())

    # -- fault injection -----------------------------------------------------------------------

    def fail_next(self, method: str, path: str, status: int = 500, *, code: int = 0,
                  message: Optional[str] = None, retry_after: float = 0.2, global_: bool = False,
                  times: int = 1, body: Any = None, headers: Optional[dict] = None,
                  delay: float = 0.0) -> ForcedResponse:
        """Answer the next ``times`` requests matching ``method`` + ``path`` with an error.

        ``path`` is relative to the API base; ``{name}`` matches any one segment, e.g.
        ``"/channels/{id}/messages/{mid}"``. A 429 gets Discord's body and headers
        (``retry_after``, ``global_``). The route is not run, so nothing changes server-side.
        """
        extra = {}
        if body is None and status == 429:
            body, extra = rate_limit_response(retry_after, global_)
        elif body is None:
            body = {"message": message or f"{status}: fake failure", "code": code}
        rule = ForcedResponse(method.upper(), path, status, body, {**extra, **(headers or {})}, delay, times)
        self.forced.append(rule)
        return rule

    def delay_next(self, method: str, path: str, seconds: float, *, times: int = 1) -> ForcedResponse:
        """Hold the next matching request(s) for ``seconds``, then answer normally."""
        rule = ForcedResponse(method.upper(), path, None, delay=seconds, times=times)
        self.forced.append(rule)
        return rule

    def _take_forced(self, method: str, path: str) -> Optional[ForcedResponse]:
        for rule in self.forced:
            if rule.method in (method, "*") and path_matches(rule.pattern, path):
                rule.times -= 1
                if rule.times <= 0:
                    self.forced.remove(rule)
                return rule
        return None

    async def close_gateway(self, code: int = 4000, *, forget_session: bool = False) -> None:
        """Drop the bot's gateway connection (it resumes; see Gateway.close)."""
        await self.gateway.close(code, forget_session=forget_session)

    # -- HTTP plumbing -------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX + "/"):
            rel = request.path[len(API_PREFIX):]
        elif request.path.startswith("/attachments/"):
            rel = request.path
        else:
            return await handler(request)
        loop = asyncio.get_running_loop()
        rec = RecordedRequest(request.method, rel, dict(request.query), None, [], self.now(), loop.time())
        self.requests.append(rec)
        request[RECORD] = rec
        try:
            rec.json, files = await read_body(request)
            rec.files = [(name, filename, data) for name, filename, data, _ in files]
            request[PAYLOAD], request[FILES] = rec.json, files
            if not rel.startswith(_NO_AUTH_PREFIXES) and request.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordError(401, 0, "401: Unauthorized")
            rule = self._take_forced(request.method, rel)
            if rule is not None and rule.delay:
                await asyncio.sleep(rule.delay)
            if rule is not None and rule.status is not None:
                rec.forced = True
                response: web.StreamResponse = web.Response(
                    status=rule.status, body=json.dumps(rule.body).encode(),
                    headers={"Content-Type": "application/json", **rule.headers})
            else:
                response = await handler(request)
        except DiscordError as err:
            response = err.response()
        except Exception as err:  # a bug in the fake: answer 400 (500 would make discord.py retry for 16 s)
            self.errors.append(err)
            response = DiscordError(400, 0, f"FakeDiscord internal error: {err!r}").response()
        rec.status = response.status
        body = getattr(response, "body", None)
        if (isinstance(body, bytes) and body and not rel.startswith("/attachments/")  # a file is no reply
                and response.headers.get("Content-Type") == "application/json"):
            rec.response = json.loads(body)
        self.notify()
        return response

    async def _unhandled(self, request: web.Request) -> web.Response:
        request[RECORD].unhandled = True
        raise DiscordError(404, 0, f"404: Not Found (FakeDiscord has no route {request.method} {request.path})")

    # -- waiting and querying ------------------------------------------------------------------

    def notify(self) -> None:
        """Wake wait_for() callers; called after every request and gateway event."""
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after each request); return its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"FakeDiscord.wait_for timed out after {timeout} s {what}".rstrip())
            assert self._changed is not None, "FakeDiscord not started"
            try:
                # Poll at least every 50 ms so predicates about the bot's own state work too.
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.05))
            except asyncio.TimeoutError:
                pass

    def messages_in(self, channel_id: int, *, include_deleted: bool = False,
                    include_ephemeral: bool = True) -> list[StoredMessage]:
        """Messages in a channel, oldest first."""
        return sorted((m for m in self.messages.values() if m.channel_id == channel_id
                       and (include_deleted or not m.deleted) and (include_ephemeral or not m.ephemeral)),
                      key=lambda m: m.id)

    def message(self, message_id: int) -> StoredMessage:
        return self.messages[message_id]

    async def wait_for_message(self, channel_id: int, predicate: Callable[[StoredMessage], bool] = lambda m: True,
                               timeout: float = 30.0) -> StoredMessage:
        """The first (oldest) live message in ``channel_id`` satisfying ``predicate``."""
        def find():
            return next((m for m in self.messages_in(channel_id) if predicate(m)), None)
        return await self.wait_for(find, timeout, f"for a message in channel {channel_id}")

    def callbacks_for(self, interaction_id: int) -> list[CallbackRecord]:
        return list(self.interactions[interaction_id].callbacks)

    async def wait_for_callback(self, record: InteractionRecord, timeout: float = 30.0) -> CallbackRecord:
        await self.wait_for(lambda: record.callbacks, timeout, f"for a callback to interaction {record.id}")
        return record.callbacks[0]

    def followups_for(self, interaction_id: int) -> list[StoredMessage]:
        return [self.messages[i] for i in self.interactions[interaction_id].followup_ids]

    def original_response(self, interaction_id: int) -> Optional[StoredMessage]:
        mid = self.interactions[interaction_id].original_message_id
        return self.messages.get(mid) if mid is not None else None

    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests matching ``method`` ("*" for any) and a fail_next-style ``path``."""
        return [r for r in self.requests
                if method.upper() in (r.method, "*") and path_matches(path, r.path)]

    @property
    def unhandled(self) -> list[RecordedRequest]:
        """Requests no route knew: gaps in the fake (or typos in the bot)."""
        return [r for r in self.requests if r.unhandled]

    async def user_message(self, channel_id: int, user: Any, content: str, files: Sequence[Any] = ()) -> StoredMessage:
        """A user posts ``content`` in a channel, with ``files`` (FakeFile) attached (stored, and
        dispatched as MESSAGE_CREATE)."""
        return await self.message_ops.post_as_user(channel_id, builders.as_member(self, channel_id, user), content,
                                                   files)
