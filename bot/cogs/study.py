"""`/study`: queue a parameter study — one or two settings varied over a shared base image.

    /study prompt:"a lighthouse" x:"clip_guidance_scale=1500,5000,15000" y:"steps=50,100"

Like `/disco` it defers at once, then builds the base settings through the same option
pipeline (banned words, the guild's defaults and limits), adds the axes (`bot/study.py`) and
enqueues one job of kind 'study'. The echo gives the number of cells, the axes, the queue place
and the ETA; the poster shows "cell k of n" with the partial grid, then posts the grid with one
button per cell. A refusal is raised; the command tree's error path shows it only to the
requester, naming the bad axis value and what is allowed.
"""
from __future__ import annotations

from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import NOT_QUEUED, think
from bot.attachments import read_settings_file, save_image
from bot.params import (
    SAMPLERS,
    SIZES,
    CutnBatches,
    GuidanceScale,
    InitScale,
    PresetName,
    Prompt,
    Seed,
    Settings,
    Side,
    SkipSteps,
    Steps,
    StudyAxis,
    describe,
    model_choices,
    preset_choices,
)
from bot.queueing import answer_request
from bot.study import enqueue_study
from commands.job_options import DiscoOptions

AXIS_HELP = 'setting=value,value,… e.g. "clip_guidance_scale=1500,5000,15000" (at most 8 values)'


class StudyCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="study",
                          description="Compare settings: a grid of images that differ in one or two settings",
                          extras=NOT_QUEUED.extras())
    @app_commands.guild_only()
    @app_commands.describe(**describe(
        "prompt", "width", "height", "size", "cutn_batches", "clip_guidance_scale", "skip_steps",
        "sampling_mode", "model", "init_scale", "image_prompt", "preset",
        x="the setting across the grid: " + AXIS_HELP, y="optional: the setting down the grid, same form",
        seed="the seed every cell shares (random if not given)", steps="diffusion steps of every cell",
        settings='any other DD settings for every cell: "key=value; key=value"',
        init_image="an image every cell starts from",
        settings_file="a DD *_settings.txt, our settings JSON or a PNG the bot posted, for every cell"))
    @app_commands.choices(size=SIZES, sampling_mode=SAMPLERS)
    @app_commands.autocomplete(model=model_choices)
    async def study(self, interaction: discord.Interaction, prompt: Prompt,
                    x: StudyAxis, y: Optional[StudyAxis] = None, seed: Optional[Seed] = None,
                    steps: Optional[Steps] = None, width: Optional[Side] = None,
                    height: Optional[Side] = None, size: Optional[str] = None,
                    cutn_batches: Optional[CutnBatches] = None, settings: Optional[Settings] = None,
                    clip_guidance_scale: Optional[GuidanceScale] = None,
                    skip_steps: Optional[SkipSteps] = None,
                    sampling_mode: Optional[str] = None, model: Optional[str] = None,
                    init_image: Optional[discord.Attachment] = None,
                    init_scale: Optional[InitScale] = None,
                    image_prompt: Optional[discord.Attachment] = None,
                    preset: Optional[PresetName] = None,
                    settings_file: Optional[discord.Attachment] = None) -> None:
        await think(interaction)

        async def queue():
            limit = interaction.filesize_limit
            options = DiscoOptions(
                prompt=prompt, seed=seed, steps=steps, width=width, height=height, size=size,
                cutn_batches=cutn_batches, settings=settings, clip_guidance_scale=clip_guidance_scale,
                skip_steps=skip_steps, sampling_mode=sampling_mode, model=model, init_scale=init_scale,
                init_image=await save_image(self.bot.db, init_image, "init_image", limit) if init_image else None,
                image_prompts=(await save_image(self.bot.db, image_prompt, "image_prompts", limit),)
                if image_prompt else (), settings_file=await read_settings_file(settings_file, limit))
            return await enqueue_study(self.bot, interaction, options, x, y, preset_name=preset)
        await answer_request(interaction, "study", queue)

    study.autocomplete("preset")(preset_choices)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.study")` (needs bot.db, bot.config)."""
    await bot.add_cog(StudyCog(bot))
