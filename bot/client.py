"""`DiscoBot`: the discord.py client of the bot process.

Its command tree is a `bot.tree.DiscoTree`, whose `on_error` answers every failed slash command.
`setup_hook` (run once after login, before the gateway connects) opens the database, loads the
cogs, registers the restart-proof job buttons (bot/views.py), starts the poster, optionally
starts the engine supervisor, and syncs the command tree to `dev_guild_id` when one is
configured (guild commands update at once; a global sync is an operator's deliberate step,
since Discord allows 200 command creates a day per guild).
Intents are the defaults: slash commands need no privileged intent.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Optional

import discord
from discord.ext import commands

from bot.cogs import EXTENSIONS
from bot.config import BotConfig
from bot.describe import UsePromptButton
from bot.gobig import GoBigButton
from bot.poster import Poster
from bot.study import CellButton
from bot.supervisor import EngineSupervisor
from bot.tree import DiscoTree
from bot.views import JobButton
from storage import Database

log = logging.getLogger("disco.bot")


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
        self.supervisor: Optional[EngineSupervisor] = None
        self._poster_task: Optional[asyncio.Task] = None

    async def setup_hook(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        # A PostgreSQL server that is down at start is waited for, one log line per try.
        self.db = await Database.open(self.config.database, wait_s=float("inf"))
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # Every job button ever posted routes here by its custom_id, with no per-message state.
        self.add_dynamic_items(JobButton, CellButton, GoBigButton, UsePromptButton)
        self.poster = Poster(self, self.db, poll_seconds=self.config.poll_seconds,
                             status_edit_seconds=self.config.status_edit_seconds,
                             preview_seconds=self.config.preview_seconds,
                             progress_message_max_age=self.config.progress_message_max_age)
        self._poster_task = asyncio.create_task(self.poster.run(), name="poster")
        if self.config.spawn_engine:
            self.supervisor = EngineSupervisor(
                self.db, self.config.data_dir, self.config.engine.arguments(),
                config_path=self.config.config_path, max_backoff=self.config.engine_restart_max_seconds,
                stop_grace=self.config.engine_stop_seconds, env=self.engine_env)
            self.supervisor.start()
        if self.config.dev_guild_id:
            guild = discord.Object(self.config.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d command(s) to guild %s", len(synced), self.config.dev_guild_id)

    async def close(self) -> None:
        """Stop the poster first (it uses the HTTP session), then the engine, then the database."""
        if self._poster_task is not None:
            self._poster_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poster_task
        if self.supervisor is not None:
            await self.supervisor.stop()
        await super().close()
        if self.db is not None:
            await self.db.close()
            self.db = None
