"""Buttons on job messages that keep working after a restart.

Each button is a `JobButton` (a discord.py `DynamicItem`): its custom_id is
`disco:<action>:<job id>`, or `disco:<action>:<job id>:<image>` for an action on one image of the
result (image 0 is the first; at most 42 characters, well under Discord's 100), and all state
comes from SQLite when it is clicked, so nothing lives in memory and a restarted bot answers every
button it ever posted. `DiscoBot.setup_hook` registers the classes with `add_dynamic_items`.

Still results get one row of job actions (🔄 new seed, 🎯 same seed, ✏️ remix (bot/remix.py),
📋 recipe, ❌ delete) and one row per image with that image's actions (`IMAGE_ACTIONS`: 🌗 vary,
🎞 animate this, ⬆ GoBig (bot/gobig.py, `disco:gobig:<job id>:<image index>`)). Discord allows 5
rows of 5, so with more than 4 images the first 3 get rows and the rest are picked in a select
menu (`ImageSelect`, `disco:image:<job>`, restart-proof like the buttons), which answers
privately with that image and its row. Buttons posted before images had rows
(`disco:vary:<job>`) act on the first image. Animation results get 🔄 🎯 📋 ❌
(bot/animate.py re-queues them); progress messages (and `/queue`) get ⏹ cancel. Every click is
acknowledged at once with an ephemeral defer (Discord's 3 s window; ✏️ answers with its form
instead) and answered privately; what a click raises is answered by
`bot.answers.answer_error`, as for a slash command. Re-queues go through
`bot.queueing.enqueue_options`, the same limits and quota path as `/disco`.
"""
from __future__ import annotations

import io
import logging
import re
from dataclasses import replace
from typing import Any, Callable

import discord

from bot.animate import animate_still, recipe_file, requeue_animation
from bot.answers import NO_MENTIONS, NOT_DONE, REQUEUE, AnsweringView, Wording, answers_errors, think
from bot.attachments import finished_image, kept_copy, read_result_image
from bot.checks import is_moderator, job_of_this_server, rules_channel_id
from bot.gobig import GoBigButton
from bot.remix import open_remix
from bot.queueing import Lineage, caller_defaults, enqueue_options, rerun_options
from commands.echo import recipe
from engine.spec.render import RenderSpec
from storage import Job, JobKind, JobState

log = logging.getLogger("disco.bot.views")

ACTIONS = {  # action -> (emoji, label, style)
    "new": ("🔄", "New seed", discord.ButtonStyle.secondary),
    "same": ("🎯", "Same seed", discord.ButtonStyle.secondary),
    "vary": ("🌗", "Vary", discord.ButtonStyle.secondary),
    "animate": ("🎞", "Animate", discord.ButtonStyle.secondary),
    "remix": ("✏️", "Remix", discord.ButtonStyle.secondary),
    "recipe": ("📋", "Recipe", discord.ButtonStyle.secondary),
    "delete": ("❌", "Delete", discord.ButtonStyle.danger),
    "cancel": ("⏹", "Cancel", discord.ButtonStyle.danger),
}
RESULT_ACTIONS = {JobKind.STILL: ("new", "same", "remix", "recipe", "delete"),
                  JobKind.ANIMATION: ("new", "same", "recipe", "delete")}
REQUEUE_ACTIONS = ("new", "same", "vary", "animate")
MESSAGE_LIMIT = 2000
ROWS, ROW_WIDTH = 5, 5      # Discord: 5 action rows of 5 buttons; a select fills a row
MAX_SELECT_OPTIONS = 25
IMAGES_WITH_ACTIONS = ROWS - 2 + MAX_SELECT_OPTIONS  # 3 image rows, then the select's 25


def job_link(job: Job, message_id: str) -> str:
    """A jump link to a message of `job`'s result, in its channel or, where it went, the DM."""
    if job.result_channel_id:
        return f"https://discord.com/channels/@me/{job.result_channel_id}/{message_id}"
    return f"https://discord.com/channels/{job.guild_id}/{job.channel_id}/{message_id}"


class JobButton(discord.ui.DynamicItem[discord.ui.Button],
                template=r"disco:(?P<action>new|same|vary|animate|remix|recipe|delete|cancel)"
                         r":(?P<job>[0-9A-Z]{26})(?::(?P<image>[0-9]{1,3}))?"):
    """One button about one job (and, for image actions, one image of its result); the action,
    the job id and the image index are all it carries."""

    def __init__(self, action: str, job_id: str, *, label: str | None = None, image: int | None = None) -> None:
        emoji, default_label, style = ACTIONS[action]
        custom_id = f"disco:{action}:{job_id}" + (f":{image}" if image is not None else "")
        super().__init__(discord.ui.Button(label=label or default_label, emoji=emoji, style=style,
                                           custom_id=custom_id))
        self.action = action
        self.job_id = job_id
        self.image = image or 0

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> JobButton:
        # Nothing slow here: the 3 s acknowledgement window is spent in callback's defer.
        image = int(match["image"]) if match["image"] is not None else None
        return cls(match["action"], match["job"], label=item.label, image=image)

    @property
    def wording(self) -> Wording:
        """How a refusal or failure of this click begins (bot.answers)."""
        return REQUEUE if self.action in REQUEUE_ACTIONS else NOT_DONE

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        if self.action == "remix":  # a form must be the first answer: no defer before it
            await open_remix(interaction.client, interaction, self.job_id)
            return
        await think(interaction, private=True)
        text, file = await self._act(interaction)
        kwargs: dict[str, Any] = {"file": file} if file is not None else {}
        await interaction.followup.send(text[:MESSAGE_LIMIT], ephemeral=True, allowed_mentions=NO_MENTIONS, **kwargs)

    async def _act(self, interaction: discord.Interaction) -> tuple[str, discord.File | None]:
        bot = interaction.client
        job = await job_of_this_server(bot.db, interaction, self.job_id, fix="use the buttons there")
        if self.action == "animate":
            return await animate_still(bot, interaction, job, self.image), None
        if self.action in REQUEUE_ACTIONS:
            if job.kind == JobKind.ANIMATION:
                return await requeue_animation(bot, interaction, job, self.action), None
            return await requeue(bot, interaction, job, self.action, self.image), None
        if self.action == "recipe":
            return recipe_file(job) if job.kind == JobKind.ANIMATION else await recipe_answer(bot, interaction, job)
        if self.action == "delete":
            return await delete_result(bot, interaction, job), None
        return await cancel_job(bot, interaction, job), None


async def requeue(bot: Any, interaction: discord.Interaction, job: Job, action: str, image: int = 0) -> str:
    """🔄 / 🎯 / 🌗: the job's settings again, charged to whoever clicked; 🌗 starts from `image`."""
    if action == "vary":
        source = await finished_image(bot.db, job, "vary", "use 🎯 same seed or 🔄 new seed instead",
                                      "vary_needs_image", image)
        init = await kept_copy(bot.db, source, "init_image.png")
        # DD's advice for an init image: skip about half of the steps to keep its layout.
        options = await rerun_options(bot.db, job, init_image=init, skip_steps=job.steps // 2)
        # A variation of a GoBig result is a render at the size it was enlarged from.
        options = replace(options, gobig=False, gobig_init=None)
    else:
        options = await rerun_options(bot.db, job, seed=job.seed if action == "same" else None)
    lineage = Lineage(action, image if action == "vary" else None)
    new, text = await enqueue_options(bot, interaction, options, parent=job, lineage=lineage)
    log.info("button %s on job %s (image %d) queued job %s for user %s", action, job.id, image, new.id,
             new.user_id)
    return text


async def recipe_answer(bot: Any, interaction: discord.Interaction, job: Job) -> tuple[str, discord.File | None]:
    """📋: the settings as a `/disco` command to copy; a .txt file when it is over 2000 chars.
    Written against the defaults the clicker's own job would start from here (the server's, the
    channel's, their own), so pasting it gives them this job's settings, and against the
    server's and channel's alone, so it gives them to a member they share it with too."""
    spec = RenderSpec.from_json(job.spec_json)
    guild = await bot.db.guilds.get(interaction.guild_id)
    command = recipe(spec, defaults=await caller_defaults(bot, interaction),
                     shared=guild.defaults_for(rules_channel_id(interaction)))
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


ImageAction = Callable[[str, int], discord.ui.Item]  # (job id, image index) -> the item for that image

# One row per image: the actions on that image. Another image action is one more entry here.
IMAGE_ACTIONS: list[ImageAction] = [
    lambda job_id, image: JobButton("vary", job_id, image=image, label=f"Vary {image + 1}"),
    lambda job_id, image: JobButton("animate", job_id, image=image, label=f"Animate {image + 1}"),
    lambda job_id, image: GoBigButton(job_id, image, label=f"GoBig {image + 1}"),
]


def image_row(view: discord.ui.View, job_id: str, image: int, row: int | None,
              actions: list[ImageAction] | None = None) -> None:
    """Add image `image`'s actions to `view`, on `row` (≤ 5 of them: one row's width)."""
    items = [make(job_id, image) for make in (IMAGE_ACTIONS if actions is None else actions)][:ROW_WIDTH]
    for item in items:
        item.row = row
        view.add_item(item)


def result_view(job_id: str, kind: JobKind = JobKind.STILL, images: int = 1,
                actions: list[ImageAction] | None = None) -> discord.ui.View:
    """The buttons under a finished render (a view of DynamicItems only is never stored in memory):
    the job's actions on the first row; for a still, one row per image, or — past 4 images — rows
    for the first 3 and a select menu for the rest (Discord's 5 rows)."""
    view = AnsweringView(timeout=None)
    for action in RESULT_ACTIONS[kind]:
        view.add_item(_on_row(JobButton(action, job_id), 0))
    if kind != JobKind.STILL or images < 1:
        return view
    rowed = images if images <= ROWS - 1 else ROWS - 2
    for image in range(rowed):
        image_row(view, job_id, image, 1 + image, actions)
    if images > rowed:
        view.add_item(_on_row(ImageSelect(job_id, range(rowed, images)), ROWS - 1))
    return view


def _on_row(item: discord.ui.Item, row: int) -> discord.ui.Item:
    item.row = row
    return item


class ImageSelect(discord.ui.DynamicItem[discord.ui.Select], template=r"disco:image:(?P<job>[0-9A-Z]{26})"):
    """"More images": picking one answers privately with that image and its row of actions."""

    def __init__(self, job_id: str, images: range | None = None,
                 options: list[discord.SelectOption] | None = None) -> None:
        if options is None:
            shown = list(images or ())[:MAX_SELECT_OPTIONS]
            options = [discord.SelectOption(label=f"Image {i + 1}", value=str(i)) for i in shown]
        super().__init__(discord.ui.Select(custom_id=f"disco:image:{job_id}", options=options,
                                           placeholder="More images: pick one for its actions"))
        self.job_id = job_id
        self.wording = NOT_DONE

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Select,
                             match: re.Match[str], /) -> ImageSelect:
        return cls(match["job"], options=list(item.options))

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        image = int(self.item.values[0])
        job = await job_of_this_server(interaction.client.db, interaction, self.job_id, fix="use the menu there")
        data = await read_result_image(interaction.client.db, job, image)
        view = AnsweringView(timeout=None)
        image_row(view, job.id, image, 0)
        if data is None:
            text = f"Image {image + 1} of job `{job.id}` is no longer kept on the server; its actions need it."
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        file = discord.File(io.BytesIO(data), f"{job.id}_{image + 1}.png")
        await interaction.followup.send(f"Image {image + 1} of job `{job.id}`:", file=file, view=view,
                                        ephemeral=True, allowed_mentions=NO_MENTIONS)


def cancel_view(job_ids: list[str] | tuple[str, ...], *, labelled: bool = False) -> discord.ui.View:
    """⏹ for each job (≤ 25, Discord's cap of 5 rows of 5); `labelled` puts the short id on it."""
    view = AnsweringView(timeout=None)
    for job_id in list(job_ids)[:25]:
        view.add_item(JobButton("cancel", job_id, label=f"Cancel …{job_id[-6:]}" if labelled else None))
    return view

