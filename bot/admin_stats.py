"""`/disco-admin stats`: this server's usage over the last days — jobs by kind and outcome, GPU
time charged per member, queue wait, render time, failures by error code, retries and the
costliest settings — answered privately, cut to one message.

A mixin of `AdminCog` (bot/cogs/admin.py) rather than a cog of its own: discord.py gathers a
cog's app commands from its whole class hierarchy, so the command joins the `/disco-admin`
group with AdminCog as its binding, and AdminCog's `interaction_check` (Manage Server, then a
private "thinking…") runs before it as before every other subcommand. A second cog adding a
command to that group would bind it to itself and skip that check.
"""
from __future__ import annotations

from typing import Any, Optional

import discord
from discord import app_commands

from bot.answers import MESSAGE_LIMIT, say
from commands.stats_text import DISCORD, stats_text
from storage.stats import DEFAULT_DAYS, MAX_DAYS

Days = app_commands.Range[int, 1, MAX_DAYS]


class StatsCommand:
    """Mixed into AdminCog, which provides `db`."""

    db: Any

    @app_commands.command(name="stats", description="Who used the GPU, how long jobs waited, what failed")
    @app_commands.describe(days=f"how many days back, 1-{MAX_DAYS} (default {DEFAULT_DAYS})")
    async def stats(self, interaction: discord.Interaction, days: Optional[Days] = None) -> None:
        # storage refuses a period outside 1-90 days too (a client that skips Discord's check)
        figures = await self.db.stats.guild(interaction.guild_id, days or DEFAULT_DAYS)
        await say(interaction, stats_text(figures, DISCORD, limit=MESSAGE_LIMIT))
