"""The message context menus (right-click a message → Apps): "Describe image" and "Paint from
this image", so a member uses an image already in the channel without downloading it first.

Both read only the message's attachments (`commands.message_image`: the first still image; a
link or an embed is never fetched) and refuse before anything is queued when there is none.
"Describe image" queues like `/describe image:` (`bot.describe.queue_description`). "Paint from
this image" answers with a form (a modal must be the first answer: only a permission check and
one database read happen before it): the prompt and optional settings, as `/disco`'s, in the ✏️
remix form's style (`bot.remix.add_fields`). Its submit, read by `DiscoBot.on_interaction`
through `submit_paint_form`, may come minutes later or after a restart, so it keeps nothing in
memory: the custom_id (`disco:paintform:<channel>:<message>:<opening interaction>`) names the
message, which is fetched again for fresh attachment URLs (the bot needs Read Message History),
and the image is queued as `init_image` of a `/disco` still through `bot.queueing.enqueue_options`
(the server's limits, defaults, banned words, quota, allowed channels). DD keeps an init image
only when steps are skipped, so unless the member set skip_steps, half of the final steps are;
and it stretches the image to the render's size, so unless the member chose a size, the
painting takes the image's shape (`--ar`, at the pixel count the server's defaults give).

The menus' refusals go through the command tree's error path (discord.py 2.7 hands what a
context menu raises, wrapped in `CommandInvokeError`, to `DiscoTree.on_error`); the submit's
are answered by `answer_error` with the same wording, as for the remix form.
"""
from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import NO_MENTIONS, NOT_QUEUED, answer_error, think
from bot.attachments import save_image
from bot.checks import rules_channel_id
from bot.describe import queue_description
from bot.queueing import answer_request, build_options, enqueue_options
from bot.remix import add_fields, form_values
from commands.job_options import DiscoOptions
from commands.message_image import (
    DESCRIBE_MENU,
    PAINT_FIELD_KEYS,
    PAINT_FIELDS,
    PAINT_MENU,
    AttachedFile,
    Picked,
    cannot_read_history,
    chosen_settings,
    form_elsewhere,
    message_gone,
    paint_form_values,
    paint_note,
    pick_still_image,
    shape_flag,
    with_notes,
)
from storage import ChannelNotAllowed

log = logging.getLogger("disco.bot.apps")

FORM_TIMEOUT_SECONDS = 30 * 60  # Discord never says a form was closed: forget it after this
FORM_PREFIX = "disco:paintform:"
FORM_ID = re.compile(re.escape(FORM_PREFIX) + r"(?P<channel>\d{1,20}):(?P<message>\d{1,20}):(?P<opened>\d{1,20})")
DESCRIBE_INSTEAD = "/describe image:"
PAINT_INSTEAD = "/disco init_image:"


def picked_attachment(message: discord.Message, menu: str, instead: str) -> tuple[discord.Attachment, Picked]:
    """The message's first still-image attachment and which it was; the refusal when none is."""
    picked = pick_still_image((AttachedFile(a.filename, a.content_type) for a in message.attachments), menu,
                              instead)
    return message.attachments[picked.index], picked


@app_commands.guild_only()
async def describe_image(interaction: discord.Interaction, message: discord.Message) -> None:
    """Apps → Describe image: the message's image described as a prompt, as `/describe` does."""
    attachment, picked = picked_attachment(message, DESCRIBE_MENU, DESCRIBE_INSTEAD)
    await think(interaction)

    async def queue():
        job, text = await queue_description(interaction.client, interaction, attachment)
        return job, with_notes(text, picked.note())
    await answer_request(interaction, "describe (message menu)", queue)


@app_commands.guild_only()
async def paint_from_image(interaction: discord.Interaction, message: discord.Message) -> None:
    """Apps → Paint from this image: the form, once the message is known to carry a still image,
    the bot may read the message again and the channel takes renders."""
    permissions = interaction.app_permissions
    if not (permissions.view_channel and permissions.read_message_history):
        raise cannot_read_history(PAINT_MENU)
    picked_attachment(message, PAINT_MENU, PAINT_INSTEAD)
    guild = await interaction.client.db.guilds.get(interaction.guild_id)
    if not guild.channel_allowed(rules_channel_id(interaction)):  # before the member fills the form
        allowed = ", ".join(f"<#{c}>" for c in sorted(guild.allowed_channel_ids))
        raise ChannelNotAllowed(f"renders are not allowed in this channel; use {allowed}")
    await interaction.response.send_modal(PaintModal(message.channel.id, message.id, interaction.id))


class PaintModal(discord.ui.Modal):
    """The paint form of one message, opened by one click; `submit_paint_form` answers its submit."""

    def __init__(self, channel_id: int, message_id: int, opened_by: int) -> None:
        super().__init__(title=PAINT_MENU, timeout=FORM_TIMEOUT_SECONDS,
                         custom_id=f"{FORM_PREFIX}{channel_id}:{message_id}:{opened_by}")
        add_fields(self, PAINT_FIELDS, {})


async def submit_paint_form(bot: Any, interaction: discord.Interaction) -> bool:
    """Queue the still of a submitted paint form; False when the interaction is no paint form.
    The submit defers publicly (the echo of a queued job is public, as for `/disco`); refusals
    are answered privately like a command's."""
    form = FORM_ID.fullmatch(str((interaction.data or {}).get("custom_id", "")))
    if form is None:
        return False
    await think(interaction)
    try:
        text = await _paint(bot, interaction, int(form["channel"]), int(form["message"]))
    except Exception as error:
        await answer_error(interaction, error, NOT_QUEUED)
        return True
    await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)
    return True


async def _paint(bot: Any, interaction: discord.Interaction, channel_id: int, message_id: int) -> str:
    """Fetch the form's message again, keep its image and queue the painting; returns the echo."""
    if interaction.guild_id is None or channel_id != interaction.channel_id:
        raise form_elsewhere(PAINT_MENU)
    values = {key: value for key, value in form_values(interaction.data.get("components", [])).items()
              if key in PAINT_FIELD_KEYS}
    prompt, settings = paint_form_values(values)
    message = await _fetch_message(bot, interaction, channel_id, message_id)
    attachment, picked = picked_attachment(message, PAINT_MENU, PAINT_INSTEAD)
    init = await save_image(bot.db, attachment, "init_image", interaction.filesize_limit)
    chosen = chosen_settings(prompt, settings)
    shape = shape_flag(chosen, attachment.width, attachment.height)
    options = DiscoOptions(prompt=f"{prompt} {shape}".strip(), settings=settings, init_image=init)
    if "skip_steps" not in chosen:  # half of the steps the server's limits and defaults settle on
        steps = (await build_options(bot, interaction, options)).spec.steps
        options = replace(options, skip_steps=steps // 2)
    job, text = await enqueue_options(bot, interaction, options)
    log.info("paint from message %s queued job %s for user %s in guild %s", message_id, job.id, job.user_id,
             job.guild_id)
    skip = json.loads(job.spec_json)["skip_steps"]
    return with_notes(text, picked.note(), paint_note(attachment.filename, skip, job.steps,
                                                      skip_chosen="skip_steps" in chosen, shape=shape))


async def _fetch_message(bot: Any, interaction: discord.Interaction, channel_id: int,
                         message_id: int) -> discord.Message:
    """The message as Discord has it now (its attachments' URLs are fresh)."""
    channel = bot.get_partial_messageable(channel_id, guild_id=interaction.guild_id)
    try:
        return await channel.fetch_message(message_id)
    except discord.NotFound:
        raise message_gone(PAINT_MENU) from None
    except discord.Forbidden:
        raise cannot_read_history(PAINT_MENU) from None


MENUS = ((DESCRIBE_MENU, describe_image), (PAINT_MENU, paint_from_image))


class AppsCog(commands.Cog):
    """Adds the message menus to the command tree (a cog cannot declare a context menu itself)."""

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.menus = [app_commands.ContextMenu(name=name, callback=callback, extras=NOT_QUEUED.extras())
                      for name, callback in MENUS]

    async def cog_load(self) -> None:
        for menu in self.menus:
            self.bot.tree.add_command(menu)

    async def cog_unload(self) -> None:
        for menu in self.menus:
            self.bot.tree.remove_command(menu.name, type=menu.type)


async def setup(bot: commands.Bot) -> None:
    """Extension entry point (needs bot.db)."""
    await bot.add_cog(AppsCog(bot))
