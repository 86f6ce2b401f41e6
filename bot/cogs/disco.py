"""`/disco`: queue a Disco Diffusion still image.

The command defers at once (the 3 s answer window), then parses and checks everything with
the Discord-free `commands.job_options.build_job`, enqueues the job (storage checks the guild's
caps and quotas in the same transaction as the insert) and answers with the echo: queue place,
ETA, prompts, settings and every note. Progress and the result are the poster's job, in the
channel, so nothing depends on the 15-minute interaction token.

A refusal (a bad setting, a cap, a quota, a paused server) is raised, and the command tree's error
path (bot/tree.py, bot/answers.py) shows it only to the requester: the public "thinking…" message
is deleted and an ephemeral follow-up names the rule and the fix. Anything unexpected is logged
with the interaction id and answered with a short generic line.
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
    Images,
    InitScale,
    PresetName,
    Prompt,
    Seed,
    Settings,
    Side,
    SkipSteps,
    Steps,
    describe,
    model_choices,
    preset_choices,
)
from bot.queueing import answer_request, enqueue_options
from commands.job_options import DiscoOptions


class DiscoCog(commands.Cog):
    """Holds the bot's database and engine model set; registered by `setup` in setup_hook."""

    def __init__(self, bot: commands.Bot, db, model_set: str) -> None:
        self.bot = bot
        self.db = db
        self.model_set = model_set

    @app_commands.command(name="disco", description="Paint an image with Disco Diffusion",
                          extras=NOT_QUEUED.extras())
    @app_commands.guild_only()
    @app_commands.describe(**describe(
        "prompt", "steps", "width", "height", "size", "seed", "clip_guidance_scale", "cutn_batches",
        "skip_steps", "sampling_mode", "settings", "settings_file", "init_image", "init_scale",
        "image_prompt", "model", "preset", n="how many images",
        gobig="then enlarge each image 2× tile by tile (GoBig; more tiles = more GPU time)"))
    @app_commands.choices(size=SIZES, sampling_mode=SAMPLERS)
    @app_commands.autocomplete(model=model_choices)
    async def disco(self, interaction: discord.Interaction, prompt: Prompt,
                    steps: Optional[Steps] = None, width: Optional[Side] = None,
                    height: Optional[Side] = None, size: Optional[str] = None,
                    seed: Optional[Seed] = None, clip_guidance_scale: Optional[GuidanceScale] = None,
                    cutn_batches: Optional[CutnBatches] = None, skip_steps: Optional[SkipSteps] = None,
                    sampling_mode: Optional[str] = None, n: Optional[Images] = None,
                    settings: Optional[Settings] = None,
                    settings_file: Optional[discord.Attachment] = None,
                    init_image: Optional[discord.Attachment] = None,
                    image_prompt: Optional[discord.Attachment] = None,
                    init_scale: Optional[InitScale] = None, model: Optional[str] = None,
                    preset: Optional[PresetName] = None, gobig: Optional[bool] = None) -> None:
        await think(interaction)

        async def queue():
            limit = interaction.filesize_limit
            options = DiscoOptions(
                init_image=await save_image(self.db, init_image, "init_image", limit) if init_image else None,
                image_prompts=(await save_image(self.db, image_prompt, "image_prompts", limit),)
                if image_prompt else (),
                prompt=prompt, steps=steps, width=width, height=height, size=size, seed=seed,
                clip_guidance_scale=clip_guidance_scale, cutn_batches=cutn_batches,
                skip_steps=skip_steps, sampling_mode=sampling_mode, n=n, settings=settings,
                init_scale=init_scale, model=model, gobig=gobig,
                settings_file=await read_settings_file(settings_file, limit))
            # bot.queueing: the one enqueue path, shared with /rerun and the buttons
            return await enqueue_options(self.bot, interaction, options, preset_name=preset)
        await answer_request(interaction, "disco", queue)

    disco.autocomplete("preset")(preset_choices)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.disco")` (needs bot.db, bot.config)."""
    await bot.add_cog(DiscoCog(bot, bot.db, bot.config.engine.model_set))
