"""`/describe image:`: the image described as a DD prompt by the engine's CLIP models (bot/describe.py).

The attachment passes `/disco`'s checks (type, bytes, decoded whole, pixel cap) and is kept like
an init_image; the job is queued like any still (`bot.queueing`: the server's limits, banned
words, quota), with `describe` on and the server's CLIP models. The answer is posted in the
channel by the poster, with ▶ to paint the prompt. `bot.describe.queue_description` does it,
also for the "Describe image" message menu (bot/cogs/apps.py).
"""
from __future__ import annotations


import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import NOT_QUEUED, think
from bot.describe import queue_description
from bot.queueing import answer_request
from engine.media.still_formats import FORMAT_LIST


class DescribeCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="describe", description="Describe an image as a Disco Diffusion prompt (CLIP)",
                          extras=NOT_QUEUED.extras())
    @app_commands.guild_only()
    @app_commands.describe(image=f"a {FORMAT_LIST} to describe")
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        await think(interaction)

        await answer_request(interaction, "describe", lambda: queue_description(self.bot, interaction, image))


async def setup(bot: commands.Bot) -> None:
    """Extension entry point (needs bot.config)."""
    await bot.add_cog(DescribeCog(bot))
