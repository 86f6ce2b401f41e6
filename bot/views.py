"""Buttons on job messages that keep working after a restart.

Each button is a `JobButton` (a discord.py `DynamicItem`): its custom_id is
`disco:<action>:<job id>` (at most 38 characters, well under Discord's 100), and all state comes
from SQLite when it is clicked, so nothing lives in memory and a restarted bot answers every
button it ever posted. `DiscoBot.setup_hook` registers the class with `add_dynamic_items`.

Still results get 🔄 new seed, 🎯 same seed, 🌗 vary, 🎞 animate this, 📋 recipe, ❌ delete and
⬆ GoBig (bot/gobig.py, `disco:gobig:<job id>:<image index>`);
animation results 🔄 🎯 📋 ❌ (bot/animate.py re-queues them); progress messages (and `/queue`)
get ⏹ cancel. Every click is acknowledged at once with an ephemeral
defer (Discord's 3 s window) and answered privately; what a click raises is answered by
`bot.answers.answer_error`, as for a slash command. Re-queues go through
`bot.queueing.enqueue_options`, the same limits and quota path as `/disco`.
"""
from __future__ import annotations

import io
import logging
import re
from dataclasses import replace
from typing import Any

import discord

from bot.animate import animate_still, recipe_file, requeue_animation
from bot.answers import NO_MENTIONS, NOT_DONE, REQUEUE, AnsweringView, Wording, answers_errors, think
from bot.attachments import finished_image, keep_copy, removed_unless_queued, request_folder
from bot.checks import is_moderator
from bot.gobig import GoBigButton
from bot.queueing import enqueue_options, rerun_options
from commands.echo import recipe
from commands.errors import CommandError
from engine.spec.render import RenderSpec
from storage import Job, JobKind, JobState

log = logging.getLogger("disco.bot.views")

ACTIONS = {  # action -> (emoji, label, style)
    "new": ("🔄", "New seed", discord.ButtonStyle.secondary),
    "same": ("🎯", "Same seed", discord.ButtonStyle.secondary),
    "vary": ("🌗", "Vary", discord.ButtonStyle.secondary),
    "animate": ("🎞", "Animate", discord.ButtonStyle.secondary),
    "recipe": ("📋", "Recipe", discord.ButtonStyle.secondary),
    "delete": ("❌", "Delete", discord.ButtonStyle.danger),
    "cancel": ("⏹", "Cancel", discord.ButtonStyle.danger),
}
RESULT_ACTIONS = {JobKind.STILL: ("new", "same", "vary", "animate", "recipe", "delete"),
                  JobKind.ANIMATION: ("new", "same", "recipe", "delete")}
REQUEUE_ACTIONS = ("new", "same", "vary", "animate")
MESSAGE_LIMIT = 2000


def job_link(job: Job, message_id: str) -> str:
    return f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{message_id}"


class JobButton(discord.ui.DynamicItem[discord.ui.Button],
                template=r"disco:(?P<action>new|same|vary|animate|recipe|delete|cancel):(?P<job>[0-9A-Z]{26})"):
    """One button about one job; the action and the job id are all it carries."""

    def __init__(self, action: str, job_id: str, *, label: str | None = None) -> None:
        emoji, default_label, style = ACTIONS[action]
        super().__init__(discord.ui.Button(label=label or default_label, emoji=emoji, style=style,
                                           custom_id=f"disco:{action}:{job_id}"))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> JobButton:
        # Nothing slow here: the 3 s acknowledgement window is spent in callback's defer.
        return cls(match["action"], match["job"], label=item.label)

    @property
    def wording(self) -> Wording:
        """How a refusal or failure of this click begins (bot.answers)."""
        return REQUEUE if self.action in REQUEUE_ACTIONS else NOT_DONE

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        text, file = await self._act(interaction)
        kwargs: dict[str, Any] = {"file": file} if file is not None else {}
        await interaction.followup.send(text[:MESSAGE_LIMIT], ephemeral=True, allowed_mentions=NO_MENTIONS, **kwargs)

    async def _act(self, interaction: discord.Interaction) -> tuple[str, discord.File | None]:
        bot = interaction.client
        job = await bot.db.jobs.get(self.job_id)
        if job.guild_id != str(interaction.guild_id):
            raise CommandError(f"job {job.id} belongs to another server; use the buttons there",
                               "job", rule="same_server")
        if self.action == "animate":
            return await animate_still(bot, interaction, job), None
        if self.action in REQUEUE_ACTIONS:
            if job.kind == JobKind.ANIMATION:
                return await requeue_animation(bot, interaction, job, self.action), None
            return await requeue(bot, interaction, job, self.action), None
        if self.action == "recipe":
            return recipe_file(job) if job.kind == JobKind.ANIMATION else await recipe_answer(bot, job)
        if self.action == "delete":
            return await delete_result(bot, interaction, job), None
        return await cancel_job(bot, interaction, job), None


async def requeue(bot: Any, interaction: discord.Interaction, job: Job, action: str) -> str:
    """🔄 / 🎯 / 🌗: the job's settings again, charged to whoever clicked."""
    async with removed_unless_queued(request_folder(bot.config.data_dir, interaction)) as folder:
        if action == "vary":
            source = finished_image(job, "vary", "use 🎯 same seed or 🔄 new seed instead", "vary_needs_image")
            init = await keep_copy(source, folder, "init_image.png")
            # DD's advice for an init image: skip about half of the steps to keep its layout.
            options = rerun_options(job, init_image=str(init), skip_steps=job.steps // 2)
            # A variation of a GoBig result is a render at the size it was enlarged from.
            options = replace(options, gobig=False, gobig_init=None)
        else:
            options = rerun_options(job, seed=job.seed if action == "same" else None)
        new, text = await enqueue_options(bot, interaction, options, parent=job)
    log.info("button %s on job %s queued job %s for user %s", action, job.id, new.id, new.user_id)
    return text


async def recipe_answer(bot: Any, job: Job) -> tuple[str, discord.File | None]:
    """📋: the settings as a `/disco` command to copy; a .txt file when it is over 2000 chars."""
    guild = await bot.db.guilds.get(job.guild_id)
    spec = RenderSpec.from_json(job.spec_json)
    command = recipe(spec, defaults=guild.defaults)
    images = []
    if spec.init_image:
        images.append("init_image")
    if spec.image_prompts:
        images.append("image_prompt")
    note = (f"\nAttach the same image(s) with the {' and '.join(images)} option." if images else "")
    text = f"**Recipe** for `{job.id}`:\n```\n{command}\n```{note}"
    if len(text) <= MESSAGE_LIMIT:
        return text, None
    file = discord.File(io.BytesIO((command + "\n").encode()), f"{job.id}_recipe.txt")
    return f"**Recipe** for `{job.id}`: too long for a message, so it is attached.{note}", file


async def delete_result(bot: Any, interaction: discord.Interaction, job: Job) -> str:
    """❌: only the requester or a member with Manage Messages; checked here, not trusted to Discord."""
    if str(interaction.user.id) != job.user_id and not is_moderator(interaction):
        return (f"**Not deleted:** only the person who asked for job `{job.id}` or members with the Manage "
                f"Messages permission may delete its result (rule: delete_own_results); ask them, or a moderator")
    channel = bot.get_partial_messageable(int(job.channel_id), guild_id=int(job.guild_id))
    ids = list(job.result_message_ids) or ([str(interaction.message.id)] if interaction.message else [])
    for message_id in ids:
        try:
            await channel.get_partial_message(int(message_id)).delete()
        except discord.NotFound:
            pass  # already gone: the goal is reached
    log.info("user %s deleted the result of job %s", interaction.user.id, job.id)
    return f"Deleted the result of job `{job.id}`."


async def cancel_job(bot: Any, interaction: discord.Interaction, job: Job) -> str:
    """⏹ and /cancel: the requester, or a member with Manage Messages."""
    if str(interaction.user.id) != job.user_id and not is_moderator(interaction):
        return (f"**Not cancelled:** only the person who asked for job `{job.id}` or members with the Manage "
                f"Messages permission may cancel it (rule: cancel_own_jobs); ask them, or a moderator")
    if job.terminal:
        return f"Job `{job.id}` is already {job.state}; nothing to cancel."
    job = await bot.db.jobs.cancel(job.id)
    log.info("user %s cancelled job %s (%s)", interaction.user.id, job.id, job.state)
    if job.state == JobState.CANCELLED:
        return f"Cancelled job `{job.id}` before it started."
    return f"Cancelling job `{job.id}`: the engine stops it after the current step."


def result_view(job_id: str, kind: JobKind = JobKind.STILL) -> discord.ui.View:
    """The buttons under a finished render (a view of DynamicItems only is never stored in memory);
    a still gets ⬆ GoBig for its first image too (bot/gobig.py)."""
    view = AnsweringView(timeout=None)
    for action in RESULT_ACTIONS[kind]:
        view.add_item(JobButton(action, job_id))
    if kind == JobKind.STILL:
        view.add_item(GoBigButton(job_id, 0))
    return view


def cancel_view(job_ids: list[str] | tuple[str, ...], *, labelled: bool = False) -> discord.ui.View:
    """⏹ for each job (≤ 25, Discord's cap of 5 rows of 5); `labelled` puts the short id on it."""
    view = AnsweringView(timeout=None)
    for job_id in list(job_ids)[:25]:
        view.add_item(JobButton("cancel", job_id, label=f"Cancel …{job_id[-6:]}" if labelled else None))
    return view

