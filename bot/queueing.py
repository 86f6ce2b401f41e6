"""Queueing a job from an interaction: the one path shared by `/disco`, `/rerun` and the buttons.

Every still goes through `enqueue_options`: `build_job` under the guild's limits and defaults
(with the member's own, `/disco-settings defaults:`, over the server's and the channel's),
then `enqueue_spec`, the one way any job (still, animation, study) enters the queue: the banned
words on the final spec's prompts, the server's allowed diffusion and CLIP models, then `db.jobs.enqueue` (pause, channel, caps and quota
checked in the insert's transaction). A re-run passes the earlier job's settings as a preset, so the same
limits apply to it as to a fresh `/disco` and nothing can slip past them by clicking a button.

Refusals are raised, never answered here: the command tree's error path (bot/tree.py,
bot/answers.py) shows them only to the caller.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from typing import Any, Awaitable, Callable, NamedTuple, Optional

import discord

from bot.answers import NO_MENTIONS
from bot.attachments import missing_files
from bot.checks import CANNOT_POST, bot_can_post, rules_channel_id
from bot.jobtext import kind_words
from commands.defaults import defaults_here
from commands.echo import format_echo
from commands.errors import CommandError
from commands.gpu_memory import check_gpu_memory
from commands.job_options import DiscoOptions, JobLimits, ParsedJob, build_job
from commands.job_size import job_size
from commands.moderation import check_spec
from commands.server_rules import check_allowed_models
from engine.spec.animation import AnimationSpec
from engine.spec.render import SCHEMA_VERSION, RenderSpec
from engine.spec.study import StudySpec
from storage import Database, Job, JobKind, JobRequest

log = logging.getLogger("disco.bot.queueing")

# Spec fields a re-run must not take from the stored spec: images come back as options (so the
# attachments-only rule holds), the seed is the caller's choice.
_NOT_PRESET = ("init_image", "image_prompts", "gobig_init", "seed", "schema_version")


class Lineage(NamedTuple):
    """How a child job comes from its parent: the action ("remix", "vary", …) and, for an action
    on one image of the parent's result, its index (0 = the first). `/job show` says it."""

    action: str
    image: Optional[int] = None


def prompt_texts(prompts: Any) -> tuple[str, ...]:
    """The texts of a stored spec's prompt list (``{"text", "weight"}`` items or plain strings);
    for image prompts these are the kept files' paths."""
    return tuple(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in prompts or ())


def job_preset(job: Job) -> dict[str, Any]:
    """The stored spec as a preset for `build_job`: everything but the images and the seed."""
    return spec_preset(json.loads(job.spec_json))


def spec_preset(data: dict[str, Any]) -> dict[str, Any]:
    """A spec's settings (`RenderSpec.to_dict`) as a preset: all but the images and the seed."""
    return {key: value for key, value in data.items() if key not in _NOT_PRESET}


async def rerun_options(db: Database, job: Job, **overrides: Any) -> DiscoOptions:
    """Options that give `job`'s spec back (with its images, if still kept), plus `overrides`
    (None = keep)."""
    data = json.loads(job.spec_json)
    if job.kind != JobKind.STILL:
        raise CommandError(f"job {job.id} is {kind_words(job.kind)}; only still images can be re-run here — "
                           f"start it again with its own command", "job", rule="rerun_still_only")
    options = DiscoOptions(init_image=data.get("init_image") or None,
                           image_prompts=prompt_texts(data.get("image_prompts")),
                           gobig_init=data.get("gobig_init") or None)
    options = replace(options, **{k: v for k, v in overrides.items() if v is not None})
    missing = await missing_files(db, (options.init_image, options.gobig_init, *options.image_prompts))
    if missing:
        raise CommandError(f"job {job.id}'s image {missing[0]} is no longer kept on the server; "
                           f"start a new /disco and attach it again", "init_image", rule="images_kept")
    return options


async def build_options(bot: Any, interaction: discord.Interaction, options: DiscoOptions, *,
                        parent: Optional[Job] = None, preset_name: Optional[str] = None,
                        preset: Optional[dict[str, Any]] = None) -> ParsedJob:
    """The caller's checked spec: `build_job` under the guild's limits and defaults, and the
    caller's own defaults. Shared by every way in (`enqueue_options`, `/animate`, `/study`).
    Raises the refusal.

    `parent`: the job being re-run; its settings are the preset under the caller's options
    (unless `preset` gives the settings, e.g. one cell of a study).
    `preset_name`: a stored preset (the caller's own, else the server's) under the options.
    """
    db = bot.db
    guild = await db.guilds.get(interaction.guild_id)
    if preset is None and parent is not None:
        preset = job_preset(parent)
    if preset_name and parent is None:
        stored = await db.presets.get(interaction.guild_id, preset_name, owner_id=interaction.user.id)
        preset = json.loads(stored.spec_json)
    limits = JobLimits.from_guild(guild.limits, gpu_memory_gb=bot.config.engine.gpu_memory_gb)
    return build_job(options, limits=limits, guild_defaults=guild.defaults,
                     channel_defaults=guild.channel_defaults.get(str(rules_channel_id(interaction))),
                     own_defaults=await db.users.defaults(interaction.user.id),
                     preset=preset, preset_name=f"job {parent.id}" if parent else preset_name)


async def caller_defaults(bot: Any, interaction: discord.Interaction) -> dict[str, Any]:
    """The defaults a job of the caller's starts from here: the server's, this channel's, the
    caller's own over them. A recipe built against them gives the same spec back to the caller."""
    guild = await bot.db.guilds.get(interaction.guild_id)
    return defaults_here(guild.defaults_for(rules_channel_id(interaction)),
                         await bot.db.users.defaults(interaction.user.id))


async def enqueue_options(bot: Any, interaction: discord.Interaction, options: DiscoOptions, *,
                          parent: Optional[Job] = None, preset_name: Optional[str] = None,
                          preset: Optional[dict[str, Any]] = None,
                          lineage: Optional[Lineage] = None) -> tuple[Job, str]:
    """Build, check and enqueue the caller's still job; returns it with its echo. Raises the
    refusal. The arguments are `build_options`', and `enqueue_spec`'s `lineage`."""
    db = bot.db
    parsed = await build_options(bot, interaction, options, parent=parent, preset_name=preset_name,
                                 preset=preset)
    job = await enqueue_spec(bot, interaction, parsed.spec, parent=parent, lineage=lineage,
                             own_defaults=parsed.own_defaults)
    return job, await echo_for(db, job, parsed)


async def enqueue_spec(bot: Any, interaction: discord.Interaction,
                       spec: RenderSpec | AnimationSpec | StudySpec, *, parent: Optional[Job] = None,
                       lineage: Optional[Lineage] = None,
                       own_defaults: Optional[dict[str, Any]] = None) -> Job:
    """The one way a job enters the queue from Discord: refused where the bot could not post its
    result (`check_delivery`); the final spec's prompts are checked against the guild's banned words (`commands.moderation`), its models against the ones the
    guild allows (`commands.server_rules`) and its renders against the GPU's memory
    (`commands.gpu_memory`), then it is enqueued with its size
    (the storage layer checks pause, channel, caps and quota in the insert's transaction).
    `lineage`: how it comes from `parent`, recorded with it. `own_defaults`: the caller's own
    defaults the job kept (`ParsedJob.own_defaults`), named in a model refusal."""
    await check_delivery(bot, interaction)
    guild = await bot.db.guilds.get(interaction.guild_id)
    check_spec(spec, guild.banned_words)
    check_allowed_models(spec, guild.allowed_models, guild.allowed_clip_models, own_defaults)
    check_gpu_memory(spec, bot.config.engine.gpu_memory_gb)  # every study cell, every frame
    if isinstance(spec, AnimationSpec):
        kind, seed = JobKind.ANIMATION, spec.render.seed
    elif isinstance(spec, StudySpec):
        kind, seed = JobKind.STUDY, spec.base.seed
    else:
        kind, seed = JobKind.STILL, spec.seed
    roles = [role.id for role in getattr(interaction.user, "roles", [])]
    return await bot.db.jobs.enqueue(JobRequest(
        guild_id=interaction.guild_id, channel_id=interaction.channel_id, user_id=interaction.user.id,
        kind=kind, spec_json=spec.to_json(), spec_version=SCHEMA_VERSION,
        model_set=bot.config.engine.model_set, seed=seed, parent_job_id=parent.id if parent else None,
        parent_action=lineage.action if parent and lineage else None,
        parent_image=lineage.image if parent and lineage else None,
        rules_channel_id=rules_channel_id(interaction), **job_size(spec).request_fields()), role_ids=roles)


async def check_delivery(bot: Any, interaction: discord.Interaction) -> None:
    """Refuse (rule bot_can_post) a job whose result the bot could not post where it is asked
    for, unless the caller gets results by DM (`/disco-settings notify:dm`), where it then goes."""
    if not bot_can_post(interaction) and await bot.db.users.notify(interaction.user.id) != "dm":
        raise CommandError(CANNOT_POST, rule="bot_can_post")


async def echo_for(db: Any, job: Job, parsed: ParsedJob, *, limit: int = 2000) -> str:
    """The echo of a queued job with its queue place and ETA (none once the engine has it)."""
    estimate = await db.jobs.position(job.id)
    now = time.time()
    if estimate is None:  # already claimed by the engine
        return format_echo(parsed, job_id=job.id, limit=limit)
    return format_echo(parsed, position=estimate.position, starts_at=now + estimate.starts_in,
                       finishes_at=now + estimate.finishes_in, workers=estimate.workers, job_id=job.id,
                       limit=limit)


async def answer_request(interaction: discord.Interaction, command: str,
                         queue: Callable[[], Awaitable[tuple[Job, str]]]) -> Job:
    """The end of every queueing slash command (after its public `think`): run `queue` — which
    stores the attachments as blobs, builds, checks and enqueues — and post its echo. When
    `queue` raises, nothing was queued and the error goes on to the tree's error path, which
    answers only the caller (blobs no job names are removed by the retention sweep)."""
    job, text = await queue()
    log.info("/%s queued %s job %s for user %s in guild %s", command, job.kind, job.id, job.user_id, job.guild_id)
    await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)
    return job
