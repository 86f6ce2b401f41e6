"""`/study`: queue a parameter study — one or two settings varied over a shared base image.

    /study prompt:"a lighthouse" x:"clip_guidance_scale=1500,5000,15000" y:"steps=50,100"

Like `/disco` it defers at once, then builds the base settings through the same option
pipeline (banned words, the guild's defaults and limits), adds the axes (`bot/study.py`) and
enqueues one job of kind 'study'. The echo gives the number of cells, the axes, the queue place
and the ETA; the poster shows "cell k of n" with the partial grid, then posts the grid with one
button per cell. A refusal is ephemeral and names the bad axis value and what is allowed.
"""
from __future__ import annotations

from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import read_settings_file, save_image
from bot.cogs.disco import MODELS, SAMPLERS, SIZES, preset_choices
from bot.queueing import answer_request
from bot.study import enqueue_study
from commands.job_options import DiscoOptions

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
        settings='any other DD settings for every cell: "key=value; key=value"',
        clip_guidance_scale="how strongly CLIP pulls toward the prompts (DD's default 5000)",
        skip_steps="steps skipped at the start", sampling_mode="the sampler", model="the diffusion model",
        init_image="an image every cell starts from", init_scale="how closely to keep the init image",
        image_prompt="an image to steer toward, like a prompt",
        preset="a saved preset (/preset list) under these options",
        settings_file="a DD *_settings.txt or our settings JSON for every cell")
    @app_commands.choices(size=SIZES, model=MODELS, sampling_mode=SAMPLERS)
    async def study(self, interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 1500],
                    x: app_commands.Range[str, 3, 2000], y: Optional[app_commands.Range[str, 3, 2000]] = None,
                    seed: Optional[app_commands.Range[int, 0, 2**32 - 1]] = None,
                    steps: Optional[app_commands.Range[int, 2, 1000]] = None,
                    width: Optional[app_commands.Range[int, 64, 4096]] = None,
                    height: Optional[app_commands.Range[int, 64, 4096]] = None,
                    size: Optional[str] = None,
                    cutn_batches: Optional[app_commands.Range[int, 1, 64]] = None,
                    settings: Optional[app_commands.Range[str, 1, 4000]] = None,
                    clip_guidance_scale: Optional[app_commands.Range[float, 0, 10_000_000]] = None,
                    skip_steps: Optional[app_commands.Range[int, 0, 999]] = None,
                    sampling_mode: Optional[str] = None, model: Optional[str] = None,
                    init_image: Optional[discord.Attachment] = None,
                    init_scale: Optional[app_commands.Range[float, 0, 10_000_000]] = None,
                    image_prompt: Optional[discord.Attachment] = None,
                    preset: Optional[app_commands.Range[str, 1, 32]] = None,
                    settings_file: Optional[discord.Attachment] = None) -> None:
        await interaction.response.defer(thinking=True)
        folder = self.bot.config.data_dir / "uploads" / str(interaction.id)

        async def queue():
            limit = interaction.filesize_limit
            options = DiscoOptions(
                prompt=prompt, seed=seed, steps=steps, width=width, height=height, size=size,
                cutn_batches=cutn_batches, settings=settings, clip_guidance_scale=clip_guidance_scale,
                skip_steps=skip_steps, sampling_mode=sampling_mode, model=model, init_scale=init_scale,
                init_image=await save_image(init_image, folder, "init_image", limit) if init_image else None,
                image_prompts=(await save_image(image_prompt, folder, "image_prompts", limit),)
                if image_prompt else (), settings_file=await read_settings_file(settings_file))
            return await enqueue_study(self.bot, interaction, options, x, y, preset_name=preset)
        await answer_request(interaction, folder, "study", queue)

    study.autocomplete("preset")(preset_choices)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.study")` (needs bot.db, bot.config)."""
    await bot.add_cog(StudyCog(bot))
