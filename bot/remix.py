"""✏️ Remix: a form pre-filled with a still's prompt and most used settings; submitting it queues
a child job.

The button (`disco:remix:<job>`, a `bot.views.JobButton`) answers with the modal itself: a modal
must be the first answer to an interaction, so nothing but one database read happens before it.
The form's fields are `commands.remix.REMIX_FIELDS` (five, Discord's cap), each a text input in a
`ui.Label`. The submit is a new interaction: it defers publicly (the echo of a queued job is
public, as for `/rerun`), reads the fields with `commands.remix.remix_options` and queues through
`bot.queueing.enqueue_options` with the job as parent: the same limits, banned words, GPU memory
check, caps and quota as any `/rerun`; refusals are answered privately like a command's.

Modals live in discord.py's memory only: a form left open across a bot restart is answered by
Discord with "something went wrong", and the user clicks ✏️ again (the button itself is
restart-proof). Each form's custom_id carries the job and the opening interaction's id, so two
people remixing the same job never share one.
"""
from __future__ import annotations

import logging
from typing import Any

import discord

from bot.answers import NO_MENTIONS, NOT_QUEUED, answer_error, think
from bot.checks import job_of_this_server
from bot.queueing import Lineage, enqueue_options, rerun_options
from commands.errors import CommandError
from commands.remix import REMIX_FIELDS, remix_defaults, remix_options
from engine.spec.render import RenderSpec
from storage import Job, JobKind

log = logging.getLogger("disco.bot.remix")

FORM_TIMEOUT_SECONDS = 30 * 60  # Discord never says a form was closed: forget it after this


class RemixModal(discord.ui.Modal):
    """The remix form of one job, opened by one click."""

    def __init__(self, job: Job, shown: dict[str, str], opened_by: int) -> None:
        super().__init__(title=f"Remix job …{job.id[-8:]}", timeout=FORM_TIMEOUT_SECONDS,
                         custom_id=f"disco:remixform:{job.id}:{opened_by}")
        self.job = job
        self.shown = shown
        self.inputs: dict[str, discord.ui.TextInput] = {}
        for field in REMIX_FIELDS:
            text_input = discord.ui.TextInput(
                custom_id=field.key, default=shown.get(field.key) or None, max_length=field.max_length,
                required=field.required, placeholder=field.placeholder,
                style=discord.TextStyle.paragraph if field.paragraph else discord.TextStyle.short)
            self.inputs[field.key] = text_input
            self.add_item(discord.ui.Label(text=field.label, component=text_input))

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await think(interaction)
        values = {key: text_input.value or "" for key, text_input in self.inputs.items()}
        bot = interaction.client
        parent = await bot.db.jobs.get(self.job.id)
        options = await rerun_options(bot.db, parent, **remix_options(values, self.shown))
        new, text = await enqueue_options(bot, interaction, options, parent=parent, lineage=Lineage("remix"))
        log.info("✏️ remix of job %s queued job %s for user %s", parent.id, new.id, new.user_id)
        await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        await answer_error(interaction, error, NOT_QUEUED)


async def open_remix(bot: Any, interaction: discord.Interaction, job_id: str) -> None:
    """Answer a ✏️ click with the job's form (refusals are raised before anything is sent)."""
    job = await job_of_this_server(bot.db, interaction, job_id, fix="use the buttons there")
    if job.kind != JobKind.STILL:
        raise CommandError(f"job {job.id} is a {job.kind} job; ✏️ remixes still images (rule: remix_still_only) "
                           f"— use the job's own command again", "job", rule="remix_still_only")
    guild = await bot.db.guilds.get(job.guild_id)
    shown = remix_defaults(RenderSpec.from_json(job.spec_json), guild.defaults)
    await interaction.response.send_modal(RemixModal(job, shown, interaction.id))
