"""`/study`: queue a parameter study — one or two settings varied over a shared base image.

    /study prompt:"a lighthouse" x:"clip_guidance_scale=1500,5000,15000" y:"steps=50,100"

Like `/disco` it defers at once, then builds the base settings through the same option
pipeline (banned words, the guild's defaults and limits), adds the axes (`bot/study.py`) and
enqueues one job of kind 'study'. The echo gives the number of cells, the axes, the queue place
and the ETA; the poster shows "cell k of n" with the partial grid, then posts the grid with one
button per cell. A refusal is ephemeral and names the bad axis value and what is allowed.
"""
from __future__ import annotations

import logging
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.disco import SIZES
from bot.queueing import REFUSALS, refusal_text, send_refusal
from bot.study import enqueue_study
from commands.job_options import DiscoOptions

log = logging.getLogger("disco.bot.study")

AXIS_HELP = 'setting=value,value,… e.g. "clip_guidance_scale=1500,5000,15000" (at most 8 values)'


class StudyCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="study",
                          description="Compare settings: a grid of images that differ in one or two settings")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt='prompts joined by "|" with optional weights, e.g. "a lighthouse:2 | yellow:-0.5"',
        x="the setting across the grid: " + AXIS_HELP, y="optional: the setting down the grid, same form",
        seed="the seed every cell shares (random if not given)", steps="diffusion steps of every cell",
        width="width in pixels (multiple of 64)", height="height in pixels (multiple of 64)",
        size="a named size (instead of width and height)",
        cutn_batches="how many times the cut schedule runs per step",
        settings='any other DD settings for every cell: "key=value; key=value"')
    @app_commands.choices(size=SIZES)
    async def study(self, interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 1500],
                    x: app_commands.Range[str, 3, 2000], y: Optional[app_commands.Range[str, 3, 2000]] = None,
                    seed: Optional[app_commands.Range[int, 0, 2**32 - 1]] = None,
                    steps: Optional[app_commands.Range[int, 2, 1000]] = None,
                    width: Optional[app_commands.Range[int, 64, 4096]] = None,
                    height: Optional[app_commands.Range[int, 64, 4096]] = None,
                    size: Optional[str] = None,
                    cutn_batches: Optional[app_commands.Range[int, 1, 64]] = None,
                    settings: Optional[app_commands.Range[str, 1, 4000]] = None) -> None:
        await interaction.response.defer(thinking=True)
        options = DiscoOptions(prompt=prompt, seed=seed, steps=steps, width=width, height=height, size=size,
                               cutn_batches=cutn_batches, settings=settings)
        try:
            job, text = await enqueue_study(self.bot, interaction, options, x, y)
        except REFUSALS as err:
            await send_refusal(interaction, refusal_text(err, interaction.id), public_deferred=True)
            return
        except Exception:
            log.exception("/study failed (interaction %s, user %s)", interaction.id, interaction.user.id)
            await send_refusal(interaction, refusal_text(None, interaction.id), public_deferred=True)
            return
        log.info("queued study %s (%d cells) for user %s in guild %s", job.id, job.frames, job.user_id,
                 job.guild_id)
        await interaction.followup.send(text, allowed_mentions=discord.AllowedMentions.none())


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.study")` (needs bot.db, bot.config)."""
    await bot.add_cog(StudyCog(bot))
