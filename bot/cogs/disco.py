"""`/disco`: queue a Disco Diffusion still image.

The command defers at once (the 3 s answer window), then parses and checks everything with
the Discord-free `commands.job_options.build_job`, enqueues the job (storage checks the guild's
caps and quotas in the same transaction as the insert) and answers with the echo: queue place,
ETA, prompts, settings and every note. Progress and the result are the poster's job, in the
channel, so nothing depends on the 15-minute interaction token.

A refusal (a bad setting, a cap, a quota, a paused server) is shown only to the requester: the
public "thinking…" message is deleted and an ephemeral follow-up names the rule and the fix.
Anything unexpected is logged with the interaction id and answered with a short generic line.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import read_settings_file, save_image
from bot.queueing import answer_request, enqueue_options
from commands.job_options import DiscoOptions
from commands.sizes import SIZE_CHOICES
from engine.spec.fields import DIFFUSION_MODELS

log = logging.getLogger("disco.bot.disco")

SIZES = [app_commands.Choice(name=f"{key}: {choice.label}"[:100], value=key)
         for key, choice in SIZE_CHOICES.items()]
MODELS = [app_commands.Choice(name=name, value=name) for name in DIFFUSION_MODELS]
SAMPLERS = [app_commands.Choice(name=mode, value=mode) for mode in ("ddim", "plms")]


async def preset_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete for `preset`: the caller's and the server's presets whose name contains what
    was typed (≤ 25); shared by /disco, /study and /animate."""
    presets = await interaction.client.db.presets.list(interaction.guild_id, owner_id=interaction.user.id)
    names = dict.fromkeys(p.name for p in presets if current.lower() in p.name)
    return [app_commands.Choice(name=name, value=name) for name in list(names)[:25]]


class DiscoCog(commands.Cog):
    """Holds the bot's database and engine model set; registered by `setup` in setup_hook."""

    def __init__(self, bot: commands.Bot, db, model_set: str, uploads: Path) -> None:
        self.bot = bot
        self.db = db
        self.model_set = model_set
        self.uploads = uploads  # <data>/uploads/<interaction id>/ per request with images

    @app_commands.command(name="disco", description="Paint an image with Disco Diffusion")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt='prompts joined by "|" with optional weights, e.g. "a lighthouse:2 | yellow:-0.5"',
        steps="diffusion steps (more is finer and slower; DD's default 250)",
        width="width in pixels (multiple of 64)", height="height in pixels (multiple of 64)",
        size="a named size (instead of width and height)",
        seed="the noise seed: the same seed and settings paint the same image",
        clip_guidance_scale="how strongly CLIP pulls toward the prompts (DD's default 5000)",
        cutn_batches="how many times the cut schedule runs per step (better, slower)",
        skip_steps="steps skipped at the start", sampling_mode="the sampler",
        n="how many images", settings='any other DD settings: "key=value; key=value"',
        settings_file="a DD *_settings.txt or our settings JSON",
        init_image="an image to start from (set skip_steps to about half of steps)",
        init_scale="how closely to keep the init image (DD's default 1000)",
        image_prompt="an image to steer toward, like a prompt",
        model="the diffusion model", preset="a saved preset (/preset list) under these options")
    @app_commands.choices(size=SIZES, model=MODELS, sampling_mode=SAMPLERS)
    async def disco(self, interaction: discord.Interaction, prompt: app_commands.Range[str, 1, 1500],
                    steps: Optional[app_commands.Range[int, 2, 1000]] = None,
                    width: Optional[app_commands.Range[int, 64, 4096]] = None,
                    height: Optional[app_commands.Range[int, 64, 4096]] = None,
                    size: Optional[str] = None,
                    seed: Optional[app_commands.Range[int, 0, 2**32 - 1]] = None,
                    clip_guidance_scale: Optional[app_commands.Range[float, 0, 10_000_000]] = None,
                    cutn_batches: Optional[app_commands.Range[int, 1, 64]] = None,
                    skip_steps: Optional[app_commands.Range[int, 0, 999]] = None,
                    sampling_mode: Optional[str] = None,
                    n: Optional[app_commands.Range[int, 1, 100]] = None,
                    settings: Optional[app_commands.Range[str, 1, 4000]] = None,
                    settings_file: Optional[discord.Attachment] = None,
                    init_image: Optional[discord.Attachment] = None,
                    image_prompt: Optional[discord.Attachment] = None,
                    init_scale: Optional[app_commands.Range[float, 0, 10_000_000]] = None,
                    model: Optional[str] = None,
                    preset: Optional[app_commands.Range[str, 1, 32]] = None) -> None:
        await interaction.response.defer(thinking=True)
        folder = self.uploads / str(interaction.id)

        async def queue():
            limit = interaction.filesize_limit
            options = DiscoOptions(
                init_image=await save_image(init_image, folder, "init_image", limit) if init_image else None,
                image_prompts=(await save_image(image_prompt, folder, "image_prompts", limit),)
                if image_prompt else (),
                prompt=prompt, steps=steps, width=width, height=height, size=size, seed=seed,
                clip_guidance_scale=clip_guidance_scale, cutn_batches=cutn_batches,
                skip_steps=skip_steps, sampling_mode=sampling_mode, n=n, settings=settings,
                init_scale=init_scale, model=model,
                settings_file=await read_settings_file(settings_file))
            # bot.queueing: the one enqueue path, shared with /rerun and the buttons
            return await enqueue_options(self.bot, interaction, options, preset_name=preset)
        await answer_request(interaction, folder, "disco", queue)

    disco.autocomplete("preset")(preset_choices)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.disco")` (needs bot.db, bot.config)."""
    await bot.add_cog(DiscoCog(bot, bot.db, bot.config.engine.model_set, bot.config.data_dir / "uploads"))
