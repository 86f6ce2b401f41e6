"""Apps → "Enlarge (GoBig)" on any message's image: a member's photo, an old render, enlarged
gobig_scale× tile by tile, as ⬆ enlarges the bot's own results (bot/gobig.py).

The menu answers with a form (commands/enlarge.py: the prompt GoBig re-renders each tile with,
"what the image shows", required; optional settings as `/disco`'s; which image on a message of
several). Before it opens, as for "Paint from this image" (bot/menus.py): the message must carry a
still image, the server take renders in this channel now and the bot be able to post the result;
an image Discord measures over the server's max_pixels is refused here already. The form is kept
as a blob (`commands.message_image.MenuForm`, kind `enlarge_form`) named by its custom_id,
`disco:enlargeform:<sha256>`, so its submit (`submit_enlarge_form`, from
`DiscoBot.on_interaction`) works after a restart.

The submit queues a still with `gobig` on and the image as `gobig_init` through
`bot.queueing.enqueue_options`, the same path as ⬆ (the server's limits, defaults, banned words,
allowed models, quota, memory check). GoBig starts from the image as it is: the job's width and
height are the downloaded image's (upright), in DD's multiples of 64 (`gobig_base`); over the
server's max_pixels it is refused with the rule and the fix, an enlargement over
`MAX_GOBIG_PIXELS` too (the spec's check), a size chosen in the form as well (`check_no_size`).

On one of the bot's own results (a message of the bot's carrying all of a still's images, its
files still kept) the menu does what ⬆ does for that image (`bot.gobig.enlarge_result`): the job's
settings, the image's seed and the kept PNG (not the copy Discord shows, which may be a JPEG
fitted to the upload limit). The form's prompt field then shows the job's prompt: the prompt
that made the image guides its tiles best, and left as shown it keeps the job's prompts exactly
(weights and all); a new prompt or settings go on top, as in the ✏️ remix form. The echo says
what will happen (`commands.enlarge.enlarge_note`: the sizes, the tiles and that more cost more
GPU time).
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import discord
from discord import app_commands

from bot.attachments import missing_files, result_images
from bot.gobig import enlarge_result
from bot.menus import (
    FORM_TIMEOUT_SECONDS,
    answer_submit,
    attached_files,
    by_the_bot,
    check_form_opens,
    download_image,
    form_key,
    keep_form,
    menu_form,
    picked_attachment,
    submitted_form,
)
from bot.queueing import enqueue_options
from bot.remix import add_fields, form_values
from commands.enlarge import (
    ENLARGE_FIELDS,
    ENLARGE_FORM_KIND,
    ENLARGE_INSTEAD,
    IMAGE_USE,
    check_no_size,
    enlarge_form_values,
    enlarge_note,
    gobig_base,
    result_job_id,
)
from commands.job_options import DiscoOptions
from commands.message_image import ANOTHER_IN_FORM, ENLARGE_MENU, Picked, image_field, image_number, with_notes
from commands.remix import remix_defaults
from engine.spec.render import RenderSpec
from storage import GuildSettings, JobKind, JobState, NotFound

log = logging.getLogger("disco.bot.enlarge")

FORM_PREFIX = "disco:enlargeform:"  # + the kept form's sha256: 82 characters, within Discord's 100
FORM_FILE = "enlarge_form.json"
DOWNLOAD_INSTEAD = "post the image again and right-click it there"


@app_commands.guild_only()
async def enlarge_image(interaction: discord.Interaction, message: discord.Message) -> None:
    """Apps → Enlarge (GoBig): the form, once the image is known to be one the server can enlarge
    (by Discord's measure; the submit measures the download again) and the checks before a form
    pass. What the submit needs of this click is kept first."""
    attachment, picked = picked_attachment(interaction, message, ENLARGE_MENU, ENLARGE_INSTEAD)
    guild = await check_form_opens(interaction)
    if attachment.width and attachment.height:
        gobig_base(attachment.width, attachment.height, guild.limits.max_pixels, attachment.filename[:80])
    job_id, shown = await result_prompt(interaction, message, picked, guild)
    form = menu_form(interaction, message, attachment, picked, kind=ENLARGE_FORM_KIND, job_id=job_id, shown=shown)
    key = await keep_form(interaction.client.db, form, FORM_FILE)
    await interaction.response.send_modal(EnlargeModal(key, picked.images, shown))


async def result_prompt(interaction: discord.Interaction, message: discord.Message, picked: Picked,
                        guild: GuildSettings) -> tuple[Optional[str], str]:
    """On a result of the bot's (a still of this server, finished, whose images this message
    holds in order, still kept): the job and its prompt, as the ✏️ form shows it. (None, "")
    for any other message: its image is enlarged as Discord serves it."""
    job_id = result_job_id(attached_files(message)) if by_the_bot(interaction, message) else None
    if job_id is None:
        return None, ""
    db = interaction.client.db
    try:
        job = await db.jobs.get(job_id)
    except NotFound:
        return None, ""
    images = result_images(job)
    if (job.guild_id != str(interaction.guild_id) or job.kind != JobKind.STILL or job.state != JobState.SUCCEEDED
            or len(images) != picked.images or await missing_files(db, images)):
        return None, ""
    return job.id, remix_defaults(RenderSpec.from_json(job.spec_json), guild.defaults)["prompt"]


class EnlargeModal(discord.ui.Modal):
    """The enlarge form opened by one click; `submit_enlarge_form` answers its submit."""

    def __init__(self, key: str, images: int, prompt: str) -> None:
        super().__init__(title=ENLARGE_MENU, timeout=FORM_TIMEOUT_SECONDS, custom_id=f"{FORM_PREFIX}{key}")
        add_fields(self, ENLARGE_FIELDS + ((image_field(images, IMAGE_USE),) if images > 1 else ()),
                   {"prompt": prompt})


async def submit_enlarge_form(bot: Any, interaction: discord.Interaction) -> bool:
    """Queue the GoBig job of a submitted enlarge form; False when the interaction is no enlarge
    form. Deferred publicly (the echo of a queued job is public); refusals are answered privately."""
    key = form_key(interaction, FORM_PREFIX)
    if key is None:
        return False
    await answer_submit(interaction, lambda: _enlarge(bot, interaction, key))
    return True


async def _enlarge(bot: Any, interaction: discord.Interaction, key: str) -> str:
    """Read the kept form, check its fields and queue the enlargement; returns the echo."""
    form = await submitted_form(bot, interaction, key, FORM_FILE, ENLARGE_MENU, ENLARGE_FORM_KIND)
    values = form_values(interaction.data.get("components", []))
    prompt, settings = enlarge_form_values(values)
    check_no_size(prompt, settings)
    number = image_number(values.get("image", "")[:10], form.picked.images, ENLARGE_MENU, "enlarge_image_number")
    kept, picked = form.choose(number)
    if form.job_id:  # one of the bot's results: what ⬆ does for that image, the form's changes on top
        job, text = await enlarge_result(bot, interaction, form.job_id, number - 1, settings=settings,
                                         prompt=None if prompt == form.shown.strip() else prompt)
        spec = RenderSpec.from_json(job.spec_json)
        what, image = f"image {number} of job {form.job_id}", (spec.width, spec.height)
    else:
        max_pixels = (await bot.db.guilds.get(interaction.guild_id)).limits.max_pixels
        attachment, ref, image = await download_image(bot, interaction, kept, ENLARGE_MENU, "gobig_init",
                                                      DOWNLOAD_INSTEAD)
        what = attachment.filename[:80]
        width, height = gobig_base(*image, max_pixels, what)
        options = DiscoOptions(prompt=prompt, settings=settings, gobig=True, gobig_init=ref, width=width,
                               height=height, n=1)
        job, text = await enqueue_options(bot, interaction, options)
        spec = RenderSpec.from_json(job.spec_json)
    log.info("enlarge from message %s queued job %s for user %s in guild %s", form.message_id, job.id,
             job.user_id, job.guild_id)
    return with_notes(text, picked.note(ANOTHER_IN_FORM), enlarge_note(spec, what, image))
