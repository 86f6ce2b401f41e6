"""`/disco-info`: the caller's remaining GPU-time budget and this server's limits, defaults (the
server's and this channel's, and the caller's own from `/disco-settings defaults:`) and allowed
models, ephemeral.

A root command of its own (not a `/disco` subcommand: `/disco` paints, and a root command with
subcommands cannot itself be run). Reset times are Discord timestamps (`<t:…:R>`), which every
client shows in its own time zone and keeps counting down.
"""
from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import SETTINGS, as_typed, say
from bot.checks import rules_channel_id
from bot.settings_text import channels_text, limits_text, seconds_text
from commands.defaults import usable_own_defaults
from commands.server_rules import defaults_text, rules_lines


def window_line(use) -> str:
    """One window: the member's budget, and the server's total when that is limited too."""
    period = "Today" if use.window == "day" else "This month"
    if use.user_limit is None:
        text = f"{period}: used {seconds_text(use.user_used)}, no personal limit"
    else:
        text = (f"{period}: {seconds_text(use.user_remaining)} left of {seconds_text(use.user_limit)} "
                f"(used {seconds_text(use.user_used)})")
    if use.guild_limit is not None:
        text += f"; server total {seconds_text(use.guild_used)} of {seconds_text(use.guild_limit)}"
    return f"{text}; resets <t:{int(use.resets_at)}:R>"


class InfoCog(commands.Cog):
    def __init__(self, bot: commands.Bot, db) -> None:
        self.bot = bot
        self.db = db

    @app_commands.command(name="disco-info", description="Your remaining GPU time and this server's limits",
                          extras=SETTINGS.extras())
    @app_commands.guild_only()
    async def info(self, interaction: discord.Interaction) -> None:
        roles = [role.id for role in getattr(interaction.user, "roles", [])]
        status = await self.db.quotas.status(interaction.guild_id, interaction.user.id, roles)
        settings = await self.db.guilds.get(interaction.guild_id)
        lines = ["**Your GPU time**"] + [window_line(use) for use in status.values()]
        lines += ["**This server's limits**", limits_text(settings), channels_text(settings)]
        lines += rules_lines(settings.defaults,
                             settings.channel_defaults.get(str(rules_channel_id(interaction)), {}),
                             settings.allowed_models, settings.allowed_clip_models)
        own = usable_own_defaults(await self.db.users.defaults(interaction.user.id), [])
        if own:
            lines.append(f"Your own defaults (`/disco-settings`, over these): {defaults_text(own)}")
        if settings.intake_paused:
            lines.append(f"New jobs are **paused**: {as_typed(settings.pause_reason or 'no reason given')}")
        await say(interaction, "\n".join(lines))


async def setup(bot: commands.Bot) -> None:
    """Extension entry point (needs bot.db, opened in setup_hook before the cogs load)."""
    await bot.add_cog(InfoCog(bot, bot.db))
