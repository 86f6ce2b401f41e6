"""The caller's own things: `/history` (their jobs here, paged, each with "show here") and
`/disco-settings` (how they hear that a job finished). Both answer only the caller.

`/history` is bot/history.py's first page; its buttons carry on from there. `/disco-settings
notify:` stores the choice per user (`db.users`, storage/users.py): `channel` (the default:
the result in the job's channel, with a ping), `dm` (also a DM, and the result goes to the DM
when the channel is gone or closed to the bot), `off` (no ping). Without an option it shows the
current choice.
"""
from __future__ import annotations

import logging
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import NO_MENTIONS, NOT_DONE, think
from bot.history import history_page
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

    @app_commands.command(name="disco-settings", description="Your own settings: how you hear that a job finished",
                          extras=NOT_DONE.extras())
    @app_commands.describe(notify="channel: a ping with the result (default) · dm: also a DM · off: no ping")
    @app_commands.choices(notify=[app_commands.Choice(name=choice, value=choice) for choice in NOTIFY_CHOICES])
    async def settings(self, interaction: discord.Interaction, notify: Optional[str] = None) -> None:
        await think(interaction, private=True)
        if notify is None:
            current = await self.bot.db.users.notify(interaction.user.id)
            text = f"notify: **{current}** — {NOTIFY_TEXT[current]}. Change it with `/disco-settings notify:`."
        else:
            chosen = await self.bot.db.users.set_notify(interaction.user.id, notify)
            log.info("user %s chose notify=%s", interaction.user.id, chosen)
            text = f"Saved. notify: **{chosen}** — {NOTIFY_TEXT[chosen]}."
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.mine")` (needs bot.db)."""
    await bot.add_cog(MineCog(bot))
