"""The caller's own things: `/history` (their jobs here, paged, each with "show here") and
`/disco-settings` (how they hear that a job finished). Both answer only the caller.

`/history` is bot/history.py's first page; its buttons carry on from there. `/disco-settings
notify:` stores the choice per user (`db.users`, storage/users.py): `channel` (the default:
the result in the job's channel, with a ping), `dm` (also a DM, and the result goes to the DM
when the channel is gone or closed to the bot), `off` (no ping). `defaults:` adds settings every
job of the member's starts from ("steps=150; eta=0.5", over the server's and channel's
defaults, commands/own_defaults.py); `reset:` removes one, or `all`. Without an option it shows
the current choices.
"""
from __future__ import annotations

import logging
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import NO_MENTIONS, NOT_DONE, think
from bot.checks import rules_channel_id
from bot.history import history_page
from bot.params import Settings
from commands.job_options import JobLimits
from commands.own_defaults import (
    MAX_KEY_CHARS,
    add_own_defaults,
    own_defaults_here,
    own_defaults_lines,
    remove_own_default,
    reset_choices,
)
from storage import NOTIFY_CHOICES

log = logging.getLogger("disco.bot.mine")

NOTIFY_TEXT = {
    "channel": "results are posted in the job's channel and ping you",
    "dm": "results are posted in the job's channel and also sent to you by DM; when the channel is gone or "
          "closed to me, the result goes to your DMs (keep DMs from server members open)",
    "off": "results are posted in the job's channel without pinging you",
}


class MineCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="history", description="Your jobs in this server, newest first",
                          extras=NOT_DONE.extras())
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        page = await history_page(self.bot, interaction.guild_id, interaction.user.id, 0)
        await interaction.followup.send(page["content"], embeds=page["embeds"], files=page["files"],
                                        view=page["view"], ephemeral=True, allowed_mentions=NO_MENTIONS)

    @app_commands.command(name="disco-settings",
                          description="Your own settings: how you hear that a job finished, your default settings",
                          extras=NOT_DONE.extras())
    @app_commands.describe(notify="channel: a ping with the result (default) · dm: also a DM · off: no ping",
                           defaults='settings every job of yours starts from, e.g. "steps=150; eta=0.5"',
                           reset="remove one of your default settings, or all")
    @app_commands.choices(notify=[app_commands.Choice(name=choice, value=choice) for choice in NOTIFY_CHOICES])
    async def settings(self, interaction: discord.Interaction, notify: Optional[str] = None,
                       defaults: Optional[Settings] = None,
                       reset: Optional[app_commands.Range[str, 1, MAX_KEY_CHARS]] = None) -> None:
        await think(interaction, private=True)
        users, user_id = self.bot.db.users, interaction.user.id
        saved = notify is not None or defaults is not None
        current = stored = await users.defaults(user_id)
        lines = []
        if reset is not None:  # first, so that `reset:all defaults:…` replaces them all
            current, removed = remove_own_default(current, reset)
            key = reset.strip().lower()[:MAX_KEY_CHARS]
            lines.append(f"Removed {removed}." if removed else
                         f"**Unchanged:** {f'`{key}`' if key else 'a blank name'} is not one of your "
                         f"defaults (yours: {', '.join(sorted(current)) or 'none'})")
        if defaults is not None:
            current = add_own_defaults(current, defaults)  # checked before anything is written
        if notify is not None:
            notify = await users.set_notify(user_id, notify)
            log.info("user %s chose notify=%s", user_id, notify)
        else:
            notify = await users.notify(user_id)
        if current != stored:
            current = await users.set_defaults(user_id, current)
            log.info("user %s set their defaults to %s", user_id, sorted(current))
        if saved:  # a line of its own: what was saved is what the lines below show
            lines.insert(0, "Saved.")
        lines.append(f"notify: **{notify}** — {NOTIFY_TEXT[notify]}. Change it with `/disco-settings notify:`.")
        lines += own_defaults_lines(current)
        lines += await self._here(interaction, current)
        await interaction.followup.send("\n".join(lines)[:2000], ephemeral=True, allowed_mentions=NO_MENTIONS)

    @settings.autocomplete("reset")
    async def _reset_choices(self, interaction: discord.Interaction,
                             current: str) -> list[app_commands.Choice[str]]:
        """The caller's own default settings, then `all`."""
        names = reset_choices(await self.bot.db.users.defaults(interaction.user.id), current)
        return [app_commands.Choice(name=name, value=name) for name in names]

    async def _here(self, interaction: discord.Interaction, own: dict) -> list[str]:
        """In a server: what its limits and allowed models do to jobs that keep these defaults."""
        if interaction.guild_id is None:
            return []
        guild = await self.bot.db.guilds.get(interaction.guild_id)
        return own_defaults_here(guild.defaults_for(rules_channel_id(interaction)), own,
                                 JobLimits.from_guild(guild.limits), guild.allowed_models,
                                 guild.allowed_clip_models)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.mine")` (needs bot.db)."""
    await bot.add_cog(MineCog(bot))
