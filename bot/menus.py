"""What the message menus share (bot/cogs/apps.py: "Describe image", "Paint from this image";
bot/enlarge.py: "Enlarge (GoBig)"): the image they use, the checks before a form opens, the
form kept for its submit, and the submit's checks and download.

- `picked_attachment`: the message's first still-image attachment (past the grid of a result of
  the bot's; `commands.message_image.pick_still_image`), as Discord sent it in the menu's
  interaction: without the Message Content intent a refetch of a member's message has no
  attachments, but a menu's target message comes whole.
- `check_form_opens`: before a member fills a form, the server takes renders in this channel now
  and the bot can post the result.
- `keep_form` / `kept_form`: a form's submit may come minutes later or after a restart, so the
  menu keeps what it needs as a small blob (`commands.message_image.MenuForm`) whose sha256 the
  form's custom_id carries; `submitted_form` reads it back and refuses a submit from another
  member, server or channel.
- `download_image`: the image the form was opened on, downloaded and checked as a `/disco`
  attachment (`bot.attachments.save_measured_image`), a deleted message's file refused with the fix.
- `answer_submit`: a submit deferred publicly (the echo of a queued job is public, as for
  `/disco`), its refusal answered privately like a command's.
"""
from __future__ import annotations

import re
from typing import Any, Awaitable, Callable, Optional

import discord

from bot.answers import NO_MENTIONS, NOT_QUEUED, answer_error, think
from bot.attachments import DownloadFailed, KeptAttachment, save_measured_image
from bot.checks import rules_channel_id
from bot.queueing import check_delivery
from commands.message_image import (
    PAINT_FORM_KIND,
    AttachedFile,
    MenuForm,
    Picked,
    form_elsewhere,
    form_of_another,
    form_unknown,
    image_not_downloaded,
    pick_still_image,
    still_images,
)
from storage import GuildSettings, NotFound, blob_ref, parse_ref

FORM_TIMEOUT_SECONDS = 30 * 60  # Discord never says a form was closed: forget it after this
FORM_KEY = re.compile(r"[0-9a-f]{64}")


def attached_files(message: discord.Message) -> list[AttachedFile]:
    return [AttachedFile(a.filename, a.content_type) for a in message.attachments]


def by_the_bot(interaction: discord.Interaction, message: discord.Message) -> bool:
    return interaction.client.user is not None and message.author.id == interaction.client.user.id


def picked_attachment(interaction: discord.Interaction, message: discord.Message, menu: str,
                      instead: str) -> tuple[discord.Attachment, Picked]:
    """The message's first still-image attachment (past the grid of a result of the bot's) and
    which it was; the refusal when none is. `instead`: where else the image can be attached."""
    picked = pick_still_image(attached_files(message), menu, instead, by_bot=by_the_bot(interaction, message))
    return message.attachments[picked.index], picked


async def check_form_opens(interaction: discord.Interaction) -> GuildSettings:
    """Refuse before the member fills a form: intake paused, renders not allowed in this channel,
    or a result the bot could not post here. Returns the server's settings."""
    guild = await interaction.client.db.guilds.get(interaction.guild_id)
    guild.check_intake(rules_channel_id(interaction))
    await check_delivery(interaction.client, interaction)
    return guild


def menu_form(interaction: discord.Interaction, message: discord.Message, attachment: discord.Attachment,
              picked: Picked, **extra: Any) -> MenuForm:
    """What the form's submit needs of this click: the picked image and the message's other
    still images (the form's Image field), as Discord sent them; `extra`: MenuForm's own fields."""
    others = still_images(attached_files(message), by_bot=by_the_bot(interaction, message))[1:]
    return MenuForm(interaction.guild_id, interaction.channel_id, message.id, interaction.user.id,
                    KeptAttachment.of(attachment).to_dict(), picked,
                    tuple((i, KeptAttachment.of(message.attachments[i]).to_dict()) for i in others), **extra)


async def keep_form(db: Any, form: MenuForm, file: str) -> str:
    """Keep the form as a blob named `file`; returns its sha256, which the form's custom_id
    carries. No job names it, so the sweep removes it once `storage.blobs.GRACE_S` (a day) has
    passed: far more than the form's 30 minutes. One small write, quick enough before a
    modal's 3 s."""
    return parse_ref(await db.blobs.put(form.to_json(), file)).sha256


async def kept_form(db: Any, key: str, file: str, menu: str, kind: str = PAINT_FORM_KIND) -> MenuForm:
    """The form of `kind` a submit's custom_id names; `form_unknown` when it is not one the bot kept."""
    if not FORM_KEY.fullmatch(key):  # also a form opened before forms were kept
        raise form_unknown(menu)
    try:
        data = await db.blobs.get(blob_ref(key, file))
    except NotFound:
        raise form_unknown(menu) from None
    return MenuForm.from_json(data, menu, kind)


def form_key(interaction: discord.Interaction, prefix: str) -> Optional[str]:
    """The kept form's key in a submit's custom_id; None when the submit is no form of `prefix`."""
    custom_id = str((interaction.data or {}).get("custom_id", ""))
    return custom_id.removeprefix(prefix) if custom_id.startswith(prefix) else None


async def submitted_form(bot: Any, interaction: discord.Interaction, key: str, file: str, menu: str,
                         kind: str = PAINT_FORM_KIND) -> MenuForm:
    """The kept form of a submit, refused unless it comes from the member, server and channel
    that opened it (a forged submit)."""
    form = await kept_form(bot.db, key, file, menu, kind)
    if (interaction.guild_id, interaction.channel_id) != (form.guild_id, form.channel_id):
        raise form_elsewhere(menu)
    if interaction.user.id != form.user_id:
        raise form_of_another(menu)
    return form


async def download_image(bot: Any, interaction: discord.Interaction, kept: dict, menu: str, option: str,
                         instead: str) -> tuple[KeptAttachment, str, tuple[int, int]]:
    """The kept attachment `kept`, downloaded as the menu saw it and stored as `option`: the
    attachment, its blob reference and its size as the engine reads it (upright). `instead`:
    the other way to give the image, said when the download fails."""
    try:
        attachment = KeptAttachment.from_dict(kept, bot.http)
    except ValueError:
        raise form_unknown(menu) from None
    try:
        ref, size = await save_measured_image(bot.db, attachment, option, interaction.filesize_limit)
    except DownloadFailed as failed:  # deleted since the form opened, or Discord's CDN failed
        raise image_not_downloaded(menu, attachment.filename, failed.status, failed.why, instead) from None
    return attachment, ref, size


async def answer_submit(interaction: discord.Interaction, queue: Callable[[], Awaitable[str]]) -> None:
    """Answer a form's submit with the echo `queue()` returns, or its refusal, privately."""
    await think(interaction)
    try:
        text = await queue()
    except Exception as error:
        await answer_error(interaction, error, NOT_QUEUED)
        return
    await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)
