"""✏️ Remix: a form pre-filled with a still's prompt and most used settings; submitting it queues
a child job.

The button (`disco:remix:<job>`, a `bot.views.JobButton`) answers with the modal itself: a modal
must be the first answer to an interaction, so nothing but one database read happens before it.
The form's fields are `commands.remix.REMIX_FIELDS` (five, Discord's cap), each a text input in a
`ui.Label`. The submit is a new interaction: it defers publicly (the echo of a queued job is
public, as for `/rerun`), reads the fields with `commands.remix.remix_options` and queues through
`bot.queueing.enqueue_options` with the job as parent: the same limits, banned words, GPU memory
check, caps and quota as any `/rerun`; refusals are answered privately like a command's.

The submit is answered from the form's custom_id and what was typed, with nothing kept in
memory (`answer_remix_form`, called by `DiscoBot.on_interaction` for every form submit), so a
form left open across a bot restart still queues its job: discord.py keeps the modals it sent
only until the process ends and would drop that submit unanswered. The custom_id carries the job
and the opening interaction's id, so two people remixing the same job never share one; the
pre-filled values are worked out again from the job.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bot.answers import NO_MENTIONS, NOT_QUEUED, answer_error, think
from bot.checks import job_of_this_server
from bot.jobtext import kind_words
from bot.queueing import Lineage, enqueue_options, rerun_options
from commands.errors import CommandError
from commands.remix import FIELD_KEYS, REMIX_FIELDS, remix_defaults, remix_options
from engine.spec.render import RenderSpec
from storage import Job, JobKind

log = logging.getLogger("disco.bot.remix")

FORM_TIMEOUT_SECONDS = 30 * 60  # Discord never says a form was closed: forget it after this
REMIX_FORM = re.compile(r"disco:remixform:(?P<job>[0-9A-Z]{26}):(?P<opened_by>[0-9]+)")


class RemixModal(discord.ui.Modal):
    """The remix form of one job, opened by one click. Its submit is answered by
    `answer_remix_form`, not here (see the module docstring)."""

    def __init__(self, job: Job, shown: dict[str, str], opened_by: int) -> None:
        super().__init__(title=f"Remix job …{job.id[-8:]}", timeout=FORM_TIMEOUT_SECONDS,
                         custom_id=f"disco:remixform:{job.id}:{opened_by}")
        for field in REMIX_FIELDS:
            text_input = discord.ui.TextInput(
                custom_id=field.key, default=shown.get(field.key) or None, max_length=field.max_length,
                required=field.required, placeholder=field.placeholder,
                style=discord.TextStyle.paragraph if field.paragraph else discord.TextStyle.short)
            self.add_item(discord.ui.Label(text=field.label, component=text_input))


def submitted_values(components: list[dict[str, Any]]) -> dict[str, str]:
    """A submitted form's text inputs, custom_id -> text, whether in labels or action rows."""
    values: dict[str, str] = {}
    for node in components or ():
        if node.get("type") == discord.ComponentType.text_input.value:
            values[node["custom_id"]] = node.get("value") or ""
        children = ([node["component"]] if "component" in node else []) + list(node.get("components") or ())
        values.update(submitted_values(children))
    return values


async def answer_remix_form(interaction: discord.Interaction) -> None:
    """Queue the remix a submitted form asks for; other forms are left alone. Refusals are
    answered privately like a command's."""
    match = REMIX_FORM.fullmatch(str((interaction.data or {}).get("custom_id", "")))
    if match is None:
        return
    try:
        await think(interaction)
        bot = interaction.client
        parent = await job_of_this_server(bot.db, interaction, match["job"], fix="use the buttons there")
        guild = await bot.db.guilds.get(parent.guild_id)
        shown = remix_defaults(RenderSpec.from_json(parent.spec_json), guild.defaults)
        values = {key: "" for key in FIELD_KEYS} | submitted_values(interaction.data.get("components", []))
        options = await rerun_options(bot.db, parent, **remix_options(values, shown))
        new, text = await enqueue_options(bot, interaction, options, parent=parent, lineage=Lineage("remix"))
        log.info("✏️ remix of job %s queued job %s for user %s", parent.id, new.id, new.user_id)
        await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)
    except Exception as error:
        await answer_error(interaction, error, NOT_QUEUED)


async def open_remix(bot: Any, interaction: discord.Interaction, job_id: str) -> None:
    """Answer a ✏️ click with the job's form (refusals are raised before anything is sent)."""
    job = await job_of_this_server(bot.db, interaction, job_id, fix="use the buttons there")
    if job.kind != JobKind.STILL:
        raise CommandError(f"job {job.id} is {kind_words(job.kind)}; ✏️ remixes still images (rule: remix_still_only) "
                           f"— use the job's own command again", "job", rule="remix_still_only")
    guild = await bot.db.guilds.get(job.guild_id)
    shown = remix_defaults(RenderSpec.from_json(job.spec_json), guild.defaults)
    await interaction.response.send_modal(RemixModal(job, shown, interaction.id))
