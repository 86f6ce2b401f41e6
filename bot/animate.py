"""Animations on Discord: queueing an `/animate`, the 🎞 "animate this" button, re-runs, and
the result's MP4 fitted to the server's upload limit.

Queueing: the still part (every frame's settings) goes through the same option pipeline as
`/disco` (`bot.queueing.build_options`: the guild's defaults and limits), then
`commands.animate_options.build_animation` adds the animation part under the same limits. The
job is stored with kind 'animation' and its size (`commands.job_size.animation_size`: frames,
and the average denoising steps a frame costs, so the queue's ETA fits it).

🎞 on a still result animates that image: it becomes frame 0 as it is (`init_frame`), followed
by a gentle 2D zoom (`ANIMATE_THIS`) with the still's own settings and seed, charged to whoever
clicked. 🔄 / 🎯 on an animation result queue the same animation with a new / the same seed.

Delivery: the MP4 is re-encoded (`engine.media.fit.fit_to_size`) when it is over the upload limit;
when no encode fits, the GIF preview is posted instead and the note says so. The frames stay on
the server. Torch-free: only engine.media (video, fit) and the spec modules are imported from the engine.
"""
from __future__ import annotations

import asyncio
import io
import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import discord

from bot.attachments import finished_image, kept_copy, local_file, missing_files
from bot.jobtext import kind_words
from bot.queueing import Lineage, build_options, echo_for, enqueue_spec, prompt_texts, spec_preset
from commands.animate_options import (
    PATH_KEYS,
    AnimateOptions,
    animation_line,
    build_animation,
    with_animation_notes,
)
from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits
from engine.errors import EngineError
from engine.media.fit import fit_to_size
from engine.media.video import probe_video
from storage import Job, JobKind

log = logging.getLogger("disco.bot.animate")

ANIMATE_THIS = {"zoom": "0: (1.02)"}  # a slow push in; DD's 2D defaults for everything else
ANIMATE_THIS_FRAMES = 36             # 3 s at DD's 12 fps
SETTINGS_MARGIN = 256 * 1024         # room left under the upload limit for the settings JSON


async def enqueue_animation(bot: Any, interaction: discord.Interaction, still: DiscoOptions,
                            options: AnimateOptions, *, preset_name: str | None = None,
                            preset: dict[str, Any] | None = None, parent: Job | None = None,
                            lineage: Lineage | None = None) -> tuple[Job, str]:
    """Build, check and enqueue an animation; returns the job and its echo. Raises the refusal.
    `parent`: the job this one comes from (🎞, 🔄, 🎯); `preset` then holds its still settings."""
    still = replace(still, n=1)  # frames are single images
    parsed = await build_options(bot, interaction, still, parent=parent, preset=preset,
                                 preset_name=None if parent else preset_name)
    guild = await bot.db.guilds.get(interaction.guild_id)
    animation = build_animation(parsed, options, limits=JobLimits.from_guild(guild.limits))
    job = await enqueue_spec(bot, interaction, animation.spec, parent=parent, lineage=lineage,
                             own_defaults=parsed.own_defaults)
    echo = await echo_for(bot.db, job, with_animation_notes(animation), limit=1500)
    head, _, rest = echo.partition("\n")
    return job, "\n".join(part for part in (head, animation_line(animation.spec)[:480], rest) if part)[:2000]


async def animate_still(bot: Any, interaction: discord.Interaction, job: Job, image: int = 0) -> str:
    """🎞: the still's image `image` (the first by default) as frame 0 of a gentle 2D zoom with
    the still's settings."""
    if job.kind != JobKind.STILL:
        raise CommandError(f"job {job.id} is {kind_words(job.kind)}; 🎞 animates finished still images",
                           "job", rule="animate_still_only")
    source = await finished_image(bot.db, job, "animate", "use /animate with its prompt instead",
                                  "animate_needs_image", image)
    data = json.loads(job.spec_json)
    guild = await bot.db.guilds.get(interaction.guild_id)
    frame = await kept_copy(bot.db, source, "init_frame.png")
    options = AnimateOptions(mode="2D", frames=min(ANIMATE_THIS_FRAMES, guild.limits.max_frames),
                             motion=dict(ANIMATE_THIS), init_frame=frame)
    new, text = await enqueue_animation(
        bot, interaction, DiscoOptions(seed=job.seed, image_prompts=await _kept_images(bot, data)),
        options, preset=spec_preset(data), parent=job, lineage=Lineage("animate", image))
    log.info("🎞 on job %s queued animation %s for user %s", job.id, new.id, new.user_id)
    return text


async def requeue_animation(bot: Any, interaction: discord.Interaction, job: Job, action: str) -> str:
    """🔄 / 🎯 on an animation: its settings again (new or same seed), under today's limits."""
    data = json.loads(job.spec_json)
    render = data.get("render") or {}
    images = prompt_texts(render.get("image_prompts"))
    still = DiscoOptions(seed=job.seed if action == "same" else None, init_image=render.get("init_image"),
                         image_prompts=images)
    paths = {"init_image": still.init_image, **{key: data.get(key) for key in PATH_KEYS}}
    missing = await missing_files(bot.db, (*paths.values(), *images))
    if missing:
        raise CommandError(f"job {job.id}'s file {missing[0]} is no longer kept on the server; "
                           f"start a new /animate and attach it again", "job", rule="files_kept")
    video = data.get("video_init_path") if data.get("animation_mode") == "Video Input" else None
    info = None
    if video:
        async with local_file(bot.db, video) as path:
            info = await asyncio.to_thread(probe_video, path)
    values = {k: v for k, v in data.items() if k not in ("render", "schema_version", *PATH_KEYS)}
    options = AnimateOptions(values=values, values_label=f"job {job.id}", video=video, video_info=info,
                             init_frame=data.get("init_frame"))
    new, text = await enqueue_animation(bot, interaction, still, options, preset=spec_preset(render),
                                        parent=job, lineage=Lineage(action))
    log.info("button %s on animation %s queued job %s for user %s", action, job.id, new.id, new.user_id)
    return text


async def _kept_images(bot: Any, data: dict[str, Any]) -> tuple[str, ...]:
    """The still's image prompts that are still kept (they steer every frame)."""
    return tuple([p for p in prompt_texts(data.get("image_prompts")) if p and not await missing_files(bot.db, [p])])


def recipe_file(job: Job) -> tuple[str, discord.File]:
    """📋 for an animation: its settings JSON, which `/animate settings_file:` reads back."""
    data = json.loads(job.spec_json)
    note = " Attach the video again with the video option." if data.get("animation_mode") == "Video Input" else ""
    file = discord.File(io.BytesIO(json.dumps(data, indent=2, sort_keys=True).encode()), f"{job.id}_animation.json")
    return (f"**Recipe** for animation `{job.id}`: attach this file as `settings_file` to /animate "
            f"(with a prompt) to render it again.{note}", file)


def result_files(job: Job, upload_limit: int) -> tuple[list[discord.File], list[str]]:
    """The MP4 (and the VR MP4) fitted to `upload_limit`, and the animation JSON; blocking —
    run it in a thread. Notes say what was re-encoded or left out."""
    files, notes = [], []
    artifacts = [Path(p) for p in job.artifacts]
    mp4s = [p for p in artifacts if p.suffix == ".mp4"]
    gif = next((p for p in artifacts if p.suffix == ".gif"), None)
    # The MP4s share one message, so they share the limit (VR mode has two).
    budget = max(64 * 1024, (upload_limit - SETTINGS_MARGIN) // max(1, len(mp4s)))
    with tempfile.TemporaryDirectory(prefix="disco-post-") as tmp:
        for path in mp4s:
            name = f"{job.id}{'_vr' if path.stem.endswith('_vr') else ''}.mp4"
            try:
                fitted = fit_to_size(path, Path(tmp) / name, max_bytes=budget)
            except (EngineError, OSError) as exc:
                notes.append(f"{path.name} could not be made to fit this server's upload limit ({exc})")
                continue
            if fitted.changes:
                notes.append(f"{name}: " + "; ".join(fitted.changes) + " (the full-quality file stays on the server)")
            files.append(discord.File(io.BytesIO(fitted.path.read_bytes()), name))
    if not files and gif is not None and gif.is_file() and gif.stat().st_size <= upload_limit - SETTINGS_MARGIN:
        files.append(discord.File(io.BytesIO(gif.read_bytes()), f"{job.id}_preview.gif"))
        notes.append("the MP4 did not fit, so the GIF preview is posted instead")
    settings = json.dumps(json.loads(job.spec_json), indent=2, sort_keys=True).encode()
    files.append(discord.File(io.BytesIO(settings), f"{job.id}_animation.json"))
    return files, notes
