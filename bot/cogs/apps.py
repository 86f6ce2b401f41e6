"""The message context menus (right-click a message → Apps): "Describe image", "Paint from
this image" and "Enlarge (GoBig)" (bot/enlarge.py), so a member uses an image already in the
channel without downloading it first. What they share (the image they use, the checks before a
form, the kept form and its submit's checks) is bot/menus.py.

The menus read only the message's attachments (`commands.message_image`: the first still image, past
the grid of a result of the bot's; a link or an embed is never fetched) and refuse before
anything is queued when there is none. "Describe image" queues like `/describe image:`
(`bot.describe.queue_description`). "Paint from this image" answers with a form (a modal must
be the first answer, within 3 s: only a database read or two and one small write happen before
it): the prompt, optional settings as `/disco`'s,
a preset's name and, on a message of several images, which one, in the ✏️ remix form's style
(`bot.remix.add_fields`). Its submit, read by `DiscoBot.on_interaction` through
`submit_menu_form`, may come minutes later or after a restart, so nothing is kept in memory:
the menu keeps what the submit needs as a small JSON blob (`commands.message_image.MenuForm`:
the server, channel, message and member, and the message's still-image attachments as Discord
sent them in the menu's interaction), and the form's custom_id, `disco:paintform:<the blob's
sha256>`, names it. The message is not fetched again: without the privileged Message Content
intent (the bot asks for none) Discord hands a bot members' messages without their
attachments, but a menu's target message comes whole. The submit is
refused unless it comes from the same member, server and channel; the image is then downloaded
and checked as a `/disco` attachment (`bot.attachments.save_image`, a deleted message's file
refused with the fix) and queued as `init_image` of a `/disco` still through
`bot.queueing.enqueue_options` (the server's limits, defaults, banned words, quota, allowed
channels). DD keeps an init image only when steps are skipped, so unless the member set
skip_steps, half of the final steps are; and it stretches the image to the render's size, so
unless the member chose a size, the painting takes the image's shape
(`DiscoOptions.image_shape`, at the pixel count the server's defaults give), measured on the
downloaded image (upright, as the engine reads it; Discord measures no HEIC).

The menus' refusals go through the command tree's error path (discord.py 2.7 hands what a
context menu raises, wrapped in `CommandInvokeError`, to `DiscoTree.on_error`); the submit's
are answered by `answer_error` with the same wording, as for the remix form.
"""
from __future__ import annotations

import json
import logging
from typing import Any, Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import NOT_QUEUED, think
from bot.describe import queue_description
from bot.enlarge import enlarge_image, submit_enlarge_form
from bot.menus import (
    FORM_TIMEOUT_SECONDS,
    answer_submit,
    check_form_opens,
    download_image,
    form_key,
    keep_form,
    menu_form,
    picked_attachment,
    submitted_form,
)
from bot.queueing import answer_request, enqueue_options
from bot.remix import add_fields, form_values
from commands.job_options import DiscoOptions
from commands.message_image import (
    ANOTHER_IN_FORM,
    DESCRIBE_MENU,
    ENLARGE_MENU,
    PAINT_FIELD_KEYS,
    PAINT_FIELDS,
    PAINT_MENU,
    chosen_settings,
    image_field,
    image_number,
    image_shape,
    paint_form_values,
    paint_note,
    with_notes,
)

log = logging.getLogger("disco.bot.apps")

FORM_PREFIX = "disco:paintform:"  # + the kept form's sha256: 80 characters, within Discord's 100
FORM_FILE = "paint_form.json"
DESCRIBE_INSTEAD = "/describe image:"
PAINT_INSTEAD = "/disco init_image:"


@app_commands.guild_only()
async def describe_image(interaction: discord.Interaction, message: discord.Message) -> None:
    """Apps → Describe image: the message's image described as a prompt, as `/describe` does."""
    attachment, picked = picked_attachment(interaction, message, DESCRIBE_MENU, DESCRIBE_INSTEAD)
    await think(interaction)

    async def queue():
        job, text = await queue_description(interaction.client, interaction, attachment)
        return job, with_notes(text, picked.note(f"for another, attach it to {DESCRIBE_INSTEAD}"))
    await answer_request(interaction, "describe (message menu)", queue)


@app_commands.guild_only()
async def paint_from_image(interaction: discord.Interaction, message: discord.Message) -> None:
    """Apps → Paint from this image: the form, once the message is known to carry a still image,
    the server takes renders in this channel now and the bot can post the result. What the submit
    needs of this click is kept first."""
    attachment, picked = picked_attachment(interaction, message, PAINT_MENU, PAINT_INSTEAD)
    await check_form_opens(interaction)  # paused, or not here: before the member fills the form
    form = menu_form(interaction, message, attachment, picked)
    await interaction.response.send_modal(PaintModal(await keep_form(interaction.client.db, form, FORM_FILE),
                                                     picked.images))


class PaintModal(discord.ui.Modal):
    """The paint form opened by one click; `submit_paint_form` answers its submit."""

    def __init__(self, key: str, images: int) -> None:
        super().__init__(title=PAINT_MENU, timeout=FORM_TIMEOUT_SECONDS, custom_id=f"{FORM_PREFIX}{key}")
        add_fields(self, PAINT_FIELDS + ((image_field(images),) if images > 1 else ()), {})


async def submit_menu_form(bot: Any, interaction: discord.Interaction) -> bool:
    """Answer the submit of a message menu's form (paint or enlarge); False when it is neither."""
    return await submit_paint_form(bot, interaction) or await submit_enlarge_form(bot, interaction)


async def submit_paint_form(bot: Any, interaction: discord.Interaction) -> bool:
    """Queue the still of a submitted paint form; False when the interaction is no paint form.
    The submit defers publicly (the echo of a queued job is public, as for `/disco`); refusals
    are answered privately like a command's."""
    key = form_key(interaction, FORM_PREFIX)
    if key is None:
        return False
    await answer_submit(interaction, lambda: _paint(bot, interaction, key))
    return True


async def _paint(bot: Any, interaction: discord.Interaction, key: str) -> str:
    """Read the kept form, download its image as the menu saw it and queue the painting;
    returns the echo."""
    form = await submitted_form(bot, interaction, key, FORM_FILE, PAINT_MENU)
    values = form_values(interaction.data.get("components", []))
    prompt, settings, preset = paint_form_values({key: values.get(key, "") for key in PAINT_FIELD_KEYS})
    kept, picked = form.choose(image_number(values.get("image", "")[:10], form.picked.images, PAINT_MENU))
    preset_keys = await preset_settings(bot.db, interaction, preset)
    attachment, init, (width, height) = await download_image(bot, interaction, kept, PAINT_MENU, "init_image",
                                                             f"attach it to {PAINT_INSTEAD}")
    chosen = chosen_settings(prompt, settings, preset_keys)
    options = DiscoOptions(prompt=prompt, settings=settings, init_image=init,
                           skip_share=None if "skip_steps" in chosen else 0.5,  # half of the final steps
                           image_shape=image_shape(chosen, width, height))  # as the engine reads it
    job, text = await enqueue_options(bot, interaction, options, preset_name=preset)
    log.info("paint from message %s queued job %s for user %s in guild %s", form.message_id, job.id, job.user_id,
             job.guild_id)
    skip = json.loads(job.spec_json)["skip_steps"]
    return with_notes(text, picked.note(ANOTHER_IN_FORM),
                      paint_note(attachment.filename, skip, job.steps, skip_chosen="skip_steps" in chosen))


async def preset_settings(db: Any, interaction: discord.Interaction, name: Optional[str]) -> tuple[str, ...]:
    """The settings the preset named in the form sets (the member's own, else the server's); the
    refusal when there is none of that name. Read before the image is downloaded."""
    if name is None:
        return ()
    values = json.loads((await db.presets.get(interaction.guild_id, name, owner_id=interaction.user.id)).spec_json)
    return tuple(values) if isinstance(values, dict) else ()


MENUS = ((DESCRIBE_MENU, describe_image), (PAINT_MENU, paint_from_image), (ENLARGE_MENU, enlarge_image))


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
