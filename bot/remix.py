"""✏️ Remix: a form pre-filled with a still's prompt and most used settings; submitting it queues
a child job.

The button (`disco:remix:<job>`, a `bot.views.JobButton`) answers with the modal itself: a modal
must be the first answer to an interaction, so nothing but one database read happens before it.
The form's fields are `commands.remix.REMIX_FIELDS` (five, Discord's cap), each a text input in a
`ui.Label`. The submit is a new interaction: it defers publicly (the echo of a queued job is
public, as for `/rerun`), reads the fields with `commands.remix.remix_options` and queues through
`bot.queueing.enqueue_options` with the job as parent: the same limits, banned words, GPU memory
check, caps and quota as any `/rerun`; refusals are answered privately like a command's.

A submitted form is answered from what it carries, not from the `RemixModal` object: the job in
its custom_id (`disco:remixform:<job>:<opening interaction>`, unique per opening, so two
people remixing one job never share a form) and the fields' values, read by `DiscoBot`'s
`on_interaction` through `submit_remix_form`. The form's first values are worked out again
from the job, so a form left open across a bot restart still queues its job.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import discord

from bot.answers import NO_MENTIONS, NOT_QUEUED, answer_error, think
from bot.checks import job_of_this_server
from bot.queueing import Lineage, enqueue_options, rerun_options
from commands.errors import CommandError
from commands.remix import FIELD_KEYS, REMIX_FIELDS, RemixField, remix_defaults, remix_options
from engine.spec.render import RenderSpec
from storage import Job, JobKind

log = logging.getLogger("disco.bot.remix")

FORM_TIMEOUT_SECONDS = 30 * 60  # Discord never says a form was closed: forget it after this
FORM_PREFIX = "disco:remixform:"
FORM_ID = re.compile(re.escape(FORM_PREFIX) + r"(?P<job>[0-9A-Z]{26}):(?P<opened>\d{1,20})")


class RemixModal(discord.ui.Modal):
    """The remix form of one job, opened by one click; `submit_remix_form` answers its submit."""

    def __init__(self, job: Job, shown: dict[str, str], opened_by: int) -> None:
        super().__init__(title=f"Remix job …{job.id[-8:]}", timeout=FORM_TIMEOUT_SECONDS,
                         custom_id=f"{FORM_PREFIX}{job.id}:{opened_by}")
        add_fields(self, REMIX_FIELDS, shown)


def add_fields(modal: discord.ui.Modal, fields: tuple[RemixField, ...], shown: dict[str, str]) -> None:
    """A form's fields (`commands.remix.RemixField`), each a text input in a `ui.Label`, showing
    `shown` first; also the message menus' forms (bot/cogs/apps.py, bot/enlarge.py)."""
    for field in fields:
        text_input = discord.ui.TextInput(
            custom_id=field.key, default=shown.get(field.key) or None, max_length=field.max_length,
            required=field.required, placeholder=field.placeholder,
            style=discord.TextStyle.paragraph if field.paragraph else discord.TextStyle.short)
        modal.add_item(discord.ui.Label(text=field.label, component=text_input))


async def open_remix(bot: Any, interaction: discord.Interaction, job_id: str) -> None:
    """Answer a ✏️ click with the job's form (refusals are raised before anything is sent)."""
    job, shown = await _remixed_job(bot, interaction, job_id)
    await interaction.response.send_modal(RemixModal(job, shown, interaction.id))


async def submit_remix_form(bot: Any, interaction: discord.Interaction) -> bool:
    """Queue the child job of a submitted remix form; False when the interaction is no remix
    form. The submit defers publicly (the echo of a queued job is public, as for `/rerun`);
    refusals are answered privately like a command's."""
    form = FORM_ID.fullmatch(str((interaction.data or {}).get("custom_id", "")))
    if form is None:
        return False
    await think(interaction)
    try:
        parent, shown = await _remixed_job(bot, interaction, form["job"])
        values = {key: value for key, value in form_values(interaction.data.get("components", [])).items()
                  if key in FIELD_KEYS}
        options = await rerun_options(bot.db, parent, **remix_options(values, shown))
        new, text = await enqueue_options(bot, interaction, options, parent=parent, lineage=Lineage("remix"))
    except Exception as error:
        await answer_error(interaction, error, NOT_QUEUED)
        return True
    log.info("✏️ remix of job %s queued job %s for user %s", parent.id, new.id, new.user_id)
    await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)
    return True


async def _remixed_job(bot: Any, interaction: discord.Interaction, job_id: str) -> tuple[Job, dict[str, str]]:
    """The job a form remixes (of this server, a still) and the values its form shows first."""
    job = await job_of_this_server(bot.db, interaction, job_id, fix="use the buttons there")
    if job.kind != JobKind.STILL:
        raise CommandError(f"job {job.id} is a {job.kind} job; ✏️ remixes still images (rule: remix_still_only) "
                           f"— use the job's own command again", "job", rule="remix_still_only")
    guild = await bot.db.guilds.get(job.guild_id)
    return job, remix_defaults(RenderSpec.from_json(job.spec_json), guild.defaults)


def form_values(components: list[dict[str, Any]]) -> dict[str, str]:
    """{custom_id: text} of every text input in a submitted form's components (in labels or rows)."""
    values: dict[str, str] = {}
    for component in components:
        if component.get("type") == discord.ComponentType.text_input.value:
            values[str(component.get("custom_id"))] = str(component.get("value") or "")
        inner = component.get("components", []) + ([component["component"]] if "component" in component else [])
        values.update(form_values(inner))
    return values
