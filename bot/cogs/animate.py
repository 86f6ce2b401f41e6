"""`/animate`: queue a Disco Diffusion animation — 2D, 3D or from a video — delivered as an MP4.

    /animate prompt:"0: a castle || 60: a city" mode:3D frames:120 translation_z:"0: (10)"

Like `/disco` it defers at once; the still options build every frame's settings through the
same pipeline (banned words, the guild's defaults and limits), the animation options are added
by `bot.animate.enqueue_animation`, and the echo gives the frames, the motion, the queue place and
the ETA (frames × seconds per frame). The poster shows "frame k of n" with the latest frame, then
posts the MP4 fitted to the upload limit. A refusal is raised; the command tree's error path shows
it only to the requester, naming the rule and the fix.
"""
from __future__ import annotations

from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.animate import enqueue_animation
from bot.answers import NOT_QUEUED, think
from bot.attachments import read_settings_file, save_image, save_video
from bot.params import (
    SIZES,
    Fps,
    Frames,
    GuidanceScale,
    Keyframes,
    PresetName,
    Prompt,
    Seed,
    Settings,
    Side,
    Steps,
    describe,
    preset_choices,
)
from bot.queueing import answer_request
from commands.animate_options import AnimateOptions, read_animation_file, split_prompt, still_settings
from commands.job_options import DiscoOptions

MODES = [app_commands.Choice(name=name, value=value)
         for name, value in (("2D: rotate, zoom and pan", "2D"), ("3D: a camera moving through depth", "3D"),
                             ("video: restyle an attached video", "video"))]
KEYFRAMES = 'keyframes "frame: (value)", e.g. '


class AnimateCog(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="animate", description="Animate with Disco Diffusion: 2D, 3D or a video, as an MP4",
                          extras=NOT_QUEUED.extras())
    @app_commands.guild_only()
    @app_commands.describe(**describe(
        "width", "height", "size", "clip_guidance_scale",
        prompt='prompts for every frame ("a | b:-0.5"), or by frame: "0: a castle || 60: a city"',
        mode="2D, 3D or video (default 2D; video when a video is attached)",
        frames="how many frames (in video mode: at most this many of the video's)",
        fps="frames per second of the MP4 (DD's default 12)",
        zoom=KEYFRAMES + '"0: (1), 10: (1.02)" (2D; above 1 zooms in)',
        angle=KEYFRAMES + '"0: (0), 30: (2)" (2D, degrees per frame)',
        translation_x=KEYFRAMES + '"0: (0), 30: (3)" (pixels per frame in 2D)',
        translation_y=KEYFRAMES + '"0: (0)" (pixels per frame in 2D)',
        translation_z=KEYFRAMES + '"0: (10)" (3D: forward speed)',
        rotation_3d_x=KEYFRAMES + '"0: (0)" (3D: degrees per frame)',
        rotation_3d_y=KEYFRAMES + '"0: (0)" (3D: degrees per frame)',
        rotation_3d_z=KEYFRAMES + '"0: (0)" (3D: degrees per frame)',
        turbo="3D: diffuse only every few frames and blend the rest (much faster)",
        vr="3D: also render left/right eye views and a side-by-side MP4",
        video="video mode: the video to restyle (MP4, MOV, WebM, AVI or GIF)",
        seed="the noise seed of frame 0 (frame n uses seed + n)", steps="diffusion steps per frame",
        settings='any other DD settings: "frames_skip_steps=60%; turbo_steps=3; cutn_batches=2"',
        settings_file="a DD *_settings.txt, an animation JSON or a frame/still PNG the bot posted",
        init_image="an image frame 0 starts from (DD's init_image; set skip_steps too)",
        preset="a saved preset (/preset list) for every frame's settings"))
    @app_commands.choices(mode=MODES, size=SIZES)
    async def animate(self, interaction: discord.Interaction, prompt: Prompt,
                      mode: Optional[str] = None, frames: Optional[Frames] = None, fps: Optional[Fps] = None,
                      zoom: Optional[Keyframes] = None, angle: Optional[Keyframes] = None,
                      translation_x: Optional[Keyframes] = None, translation_y: Optional[Keyframes] = None,
                      translation_z: Optional[Keyframes] = None, rotation_3d_x: Optional[Keyframes] = None,
                      rotation_3d_y: Optional[Keyframes] = None, rotation_3d_z: Optional[Keyframes] = None,
                      turbo: Optional[bool] = None, vr: Optional[bool] = None,
                      video: Optional[discord.Attachment] = None, seed: Optional[Seed] = None,
                      steps: Optional[Steps] = None, width: Optional[Side] = None,
                      height: Optional[Side] = None, size: Optional[str] = None,
                      clip_guidance_scale: Optional[GuidanceScale] = None,
                      settings: Optional[Settings] = None,
                      settings_file: Optional[discord.Attachment] = None,
                      init_image: Optional[discord.Attachment] = None,
                      preset: Optional[PresetName] = None) -> None:
        await think(interaction)

        async def queue():
            limit = interaction.filesize_limit
            still_prompt, frame_prompts = split_prompt(prompt)
            still_file, file_values, file_notes = read_animation_file(
                await read_settings_file(settings_file, limit, animation=True), mode or ("video" if video else None))
            video_path, video_info = await save_video(self.bot.db, video, limit) if video else (None, None)
            motion = {"zoom": zoom, "angle": angle, "translation_x": translation_x,
                      "translation_y": translation_y, "translation_z": translation_z,
                      "rotation_3d_x": rotation_3d_x, "rotation_3d_y": rotation_3d_y,
                      "rotation_3d_z": rotation_3d_z}
            still = DiscoOptions(
                prompt=still_prompt, seed=seed, steps=steps, width=width, height=height, size=size,
                clip_guidance_scale=clip_guidance_scale, settings=still_settings(settings),
                settings_file=still_file,
                init_image=await save_image(self.bot.db, init_image, "init_image", limit) if init_image else None)
            options = AnimateOptions(
                mode=mode, frames=frames, fps=fps, motion={k: v for k, v in motion.items() if v},
                turbo=turbo, vr=vr, settings=settings, values=file_values, notes=tuple(file_notes),
                frame_prompts=frame_prompts, prompt_typed=True, video=video_path, video_info=video_info)
            return await enqueue_animation(self.bot, interaction, still, options, preset_name=preset)
        await answer_request(interaction, "animate", queue)

    animate.autocomplete("preset")(preset_choices)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.animate")` (needs bot.db, bot.config)."""
    await bot.add_cog(AnimateCog(bot))
