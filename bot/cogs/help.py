"""`/disco-help [setting]`: how to paint with the bot, or one Disco Diffusion setting explained
(what it does, its allowed values, its default and this server's, how to type it), ephemeral.
`setting:` autocompletes over every still and animation setting and prompt flag. The texts are
commands.help_text's.
"""
from __future__ import annotations

from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import SETTINGS, say
from bot.checks import rules_channel_id
from commands.defaults import usable_own_defaults
from commands.help_text import guide_text, help_topics, setting_text
from commands.job_options import JobLimits

SettingName = app_commands.Range[str, 1, 100]
MAX_CHOICES = 25  # Discord's cap on autocomplete choices


def matching_topics(current: str) -> list[tuple[str, str]]:
    """(value, label) of the settings and flags for what has been typed: those whose name it
    begins first, then those whose label contains it ("guidance" finds --cgs)."""
    typed = current.strip().lstrip("-—").lower()
    topics = help_topics()
    first = [topic for topic in topics if topic[0].startswith(typed)]
    return (first + [topic for topic in topics if typed in topic[1] and topic not in first])[:MAX_CHOICES]


class HelpCog(commands.Cog):
    def __init__(self, bot: commands.Bot, db) -> None:
        self.bot = bot
        self.db = db

    async def setting_choices(self, interaction: discord.Interaction,
                              current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=label, value=value) for value, label in matching_topics(current)]

    @app_commands.command(name="disco-help", description="How to paint with this bot, or what a setting does",
                          extras=SETTINGS.extras())
    @app_commands.guild_only()
    @app_commands.describe(setting="a Disco Diffusion setting or prompt flag to explain, e.g. cut_ic_pow, zoom or --ar")
    @app_commands.autocomplete(setting=setting_choices)
    async def help(self, interaction: discord.Interaction, setting: Optional[SettingName] = None) -> None:
        if setting is None:
            await say(interaction, guide_text())
            return
        guild = await self.db.guilds.get(interaction.guild_id)
        await say(interaction, setting_text(
            setting, server_defaults=guild.defaults,
            channel_defaults=guild.channel_defaults.get(str(rules_channel_id(interaction)), {}),
            own_defaults=usable_own_defaults(await self.db.users.defaults(interaction.user.id), []),
            limits=JobLimits.from_guild(guild.limits)))


async def setup(bot: commands.Bot) -> None:
    """Extension entry point (needs bot.db, opened in setup_hook before the cogs load)."""
    await bot.add_cog(HelpCog(bot, bot.db))
