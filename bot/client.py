"""`DiscoBot`: the discord.py client of the bot process.

Its command tree is a `bot.tree.DiscoTree`, whose `on_error` answers every failed slash command.
`setup_hook` (run once after login, before the gateway connects) opens the database, loads the
cogs, registers the restart-proof job buttons (bot/views.py), starts the poster, the retention
sweep and the scheduled backups (bot/backups.py, when configured), optionally starts the engine
supervisor, and syncs the command tree (`sync_commands`: to `dev_guild_id` when one is
configured, else globally when the tree changed).
Intents are the defaults: slash commands need no privileged intent.
"""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from typing import Optional

import discord
from discord.ext import commands

from bot.backups import run_backups
from bot.cogs import EXTENSIONS
from bot.cogs.apps import submit_menu_form
from bot.config import BotConfig
from bot.describe import UsePromptButton
from bot.gobig import GoBigButton
from bot.poster import Poster
from bot.remix import submit_remix_form
from bot.study import CellButton
from bot.supervisor import EngineSupervisor, supervise_devices
from bot.tree import DiscoTree
from bot.history import HistoryPage, ShowButton
from bot.views import ImageSelect, JobButton
from storage import Database, DatabaseError, StorageError

log = logging.getLogger("disco.bot")


SWEEP_SECONDS = 3600.0  # how often delivered jobs' files past their retention are deleted
# Discord answers a login in well under a second; discord.py's HTTP session would wait aiohttp's
# default of 5 minutes for an address (a proxy, a wrong api_base) that accepts and never answers.
LOGIN_TIMEOUT_S = 30.0
# In the data folder: the application, the hash of the tree synced globally, the dev guild synced.
SYNCED_COMMANDS_FILE = "synced-commands.json"


class LoginTimeout(Exception):
    """The API accepted the connection but did not answer the login within LOGIN_TIMEOUT_S."""


async def sweep_blobs(db: Database, retention_s: float, every_s: float = SWEEP_SECONDS) -> None:
    """The retention sweep (storage/blobs.py): at start, then every `every_s` seconds. A failed
    sweep (the database is away) is logged and tried again next time."""
    while True:
        try:
            swept = await db.blobs.sweep(retention_s)
            if swept.blobs or swept.job_files:
                log.info("blob sweep: %d job file(s) past retention, %d blob(s) (%.1f MiB) deleted",
                         swept.job_files, swept.blobs, swept.bytes / 2**20)
        except StorageError as exc:
            log.warning("blob sweep failed (%s); next try in %.0f s", exc, every_s)
        await asyncio.sleep(every_s)


class DiscoBot(commands.Bot):
    def __init__(self, config: BotConfig, *, engine_env: Optional[dict[str, str]] = None,
                 **options) -> None:
        options.setdefault("allowed_mentions", discord.AllowedMentions.none())
        # A progress edit that would wait over 30 s for a rate limit is better dropped and retried.
        options.setdefault("max_ratelimit_timeout", 30.0)
        # DiscoTree.on_error answers every failed slash command (bot/tree.py).
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default(),
                         help_command=None, tree_cls=DiscoTree, **options)
        self.config = config
        self.engine_env = engine_env
        self.db: Optional[Database] = None
        self.poster: Optional[Poster] = None
        self.supervisor: Optional[EngineSupervisor] = None  # the first of `supervisors`
        self.supervisors: list[EngineSupervisor] = []  # one per [engine] devices entry
        self._poster_task: Optional[asyncio.Task] = None
        self._sweep_task: Optional[asyncio.Task] = None
        self._backup_task: Optional[asyncio.Task] = None
        self.login_timeout_s = LOGIN_TIMEOUT_S
        self._login_answered = asyncio.Event()  # set when setup_hook starts: the requests are done

    async def login(self, token: str) -> None:
        """discord.py's login, whose requests (the token, the application) must be answered within
        `login_timeout_s`; the setup hook after them waits for the database as long as it takes."""
        login = asyncio.ensure_future(super().login(token))
        answered = asyncio.ensure_future(self._login_answered.wait())
        try:
            await asyncio.wait({login, answered}, timeout=self.login_timeout_s,
                               return_when=asyncio.FIRST_COMPLETED)
            if not (login.done() or answered.done()):
                raise LoginTimeout(f"no answer to the login within {self.login_timeout_s:g} s")
        except BaseException:  # our timeout, or this start cancelled: the login goes too
            login.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await login
            raise
        finally:
            answered.cancel()
        await login

    async def setup_hook(self) -> None:
        self._login_answered.set()
        try:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a volume another user owns, a path below a file
            raise DatabaseError(f"cannot create the data folder {self.config.data_dir} ({exc.strerror}); "
                                f"point --data-dir, DISCO_DATA_DIR or [storage] data_dir in the config file "
                                f"at a writable folder",
                                str(self.config.data_dir)) from None
        # A PostgreSQL server that is down at start is waited for, one log line per try.
        self.db = await Database.open(self.config.database, wait_s=float("inf"))
        self.db.blobs.max_bytes = self.config.blob_bytes
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # Every job button ever posted routes here by its custom_id, with no per-message state.
        self.add_dynamic_items(JobButton, ImageSelect, CellButton, HistoryPage, ShowButton, GoBigButton,
                               UsePromptButton)
        self.poster = Poster(self, self.db, poll_seconds=self.config.poll_seconds,
                             status_edit_seconds=self.config.status_edit_seconds,
                             preview_seconds=self.config.preview_seconds,
                             progress_message_max_age=self.config.progress_message_max_age)
        self._poster_task = asyncio.create_task(self.poster.run(), name="poster")
        self._sweep_task = asyncio.create_task(
            sweep_blobs(self.db, self.config.retention_days * 86400.0), name="blob sweep")
        if self.config.backup_every_hours > 0:
            self._backup_task = asyncio.create_task(run_backups(self.config), name="scheduled backups")
        if self.config.spawn_engine:
            self.supervisors = supervise_devices(
                self.db, self.config.data_dir, self.config.engine, self.config.engine.devices,
                config_path=self.config.config_path, max_backoff=self.config.engine_restart_max_seconds,
                stop_grace=self.config.engine_stop_seconds, env=self.engine_env)
            self.supervisor = self.supervisors[0]
            for supervisor in self.supervisors:
                supervisor.start()
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Put the slash commands where members see them. With `dev_guild_id`: that server only,
        at every start (guild commands update at once). Otherwise the global commands, every
        server the bot is in, replaced only when the tree differs from the one last synced by
        this application, since Discord allows 200 command creates a day. A server synced to
        earlier as `dev_guild_id` loses its own copies when the setting moves on, or it would
        show each command twice. What was synced is recorded in the data folder. A refused sync
        is logged with its fix; the bot still serves what Discord has."""
        record = self._sync_record()
        earlier = record.get("dev_guild")
        if earlier and earlier != self.config.dev_guild_id:  # a server tried first: no second copy
            record.pop("dev_guild")
            self.tree.clear_commands(guild=discord.Object(earlier))
            await self._sync_to(discord.Object(earlier), f"server {earlier} (its own copies, removed)",
                                "remove them by hand if that server still shows each command twice")
            self._save_sync_record(record)
        if self.config.dev_guild_id:
            guild = discord.Object(self.config.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            if await self._sync_to(guild, f"server {guild.id}", "invite the bot to that server with the "
                                   "applications.commands scope, or fix [discord] dev_guild_id"):
                self._save_sync_record({**record, "dev_guild": guild.id})
            return
        # Every command the sync sends: the slash commands and the message menus (bot/cogs/apps.py).
        tree = json.dumps([command.to_dict(self.tree) for command in self.tree.get_commands()], sort_keys=True)
        digest = hashlib.sha256(tree.encode()).hexdigest()
        if record.get("global") == digest:
            log.info("slash commands unchanged since the last sync to every server")
        elif await self._sync_to(None, "every server (global commands)", "check the token's application"):
            self._save_sync_record({**record, "global": digest})

    async def _sync_to(self, guild: Optional[discord.Object], where: str, fix: str) -> bool:
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.HTTPException as exc:
            log.error("could not sync the slash commands to %s (HTTP %s: %s); %s",
                      where, exc.status, exc.text or "no details", fix)
            return False
        log.info("synced %d slash command(s) to %s", len(synced), where)
        return True

    def _sync_record(self) -> dict:
        """What this application last synced ({} when nothing, or another application did)."""
        try:
            record = json.loads((self.config.data_dir / SYNCED_COMMANDS_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return record if isinstance(record, dict) and record.get("application") == self.application_id else {}

    def _save_sync_record(self, record: dict) -> None:
        (self.config.data_dir / SYNCED_COMMANDS_FILE).write_text(
            json.dumps({**record, "application": self.application_id}) + "\n")

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        # A remix or message menu form's submit is answered from its custom_id (a menu form's
        # names the blob its menu kept) and values, also when the form was opened before a
        # restart (discord.py keeps modals in memory only).
        if interaction.type is discord.InteractionType.modal_submit:
            await submit_remix_form(self, interaction) or await submit_menu_form(self, interaction)

    async def close(self) -> None:
        """Stop the poster first (it uses the HTTP session), then the engine, then the database."""
        for task in (self._poster_task, self._sweep_task, self._backup_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.gather(*(supervisor.stop() for supervisor in self.supervisors))
        await super().close()
        if self.db is not None:
            await self.db.close()
            self.db = None
