"""/describe: an image described as a DD prompt by the engine's resident CLIP models, with ▶
to paint that prompt.

`/describe image:` (bot/cogs/describe.py) and the "Describe image" message menu
(bot/cogs/apps.py) check and keep the attachment like `/disco`'s init_image
(`queue_description`) and queue, through `bot.queueing.enqueue_options`, a still job with `describe` on
(the one queue, its caps and quota; the engine answers in `describe.json`, engine/jobs/describe.py).
The poster posts the answer with `answer_text` and `describe_view`: the prompt in a code block, each
list's best phrases, and ▶ (`disco:describeuse:<job id>`), which queues that prompt as a new
`/disco` for whoever clicks, under the same checks as typing it.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any

import discord

from bot.answers import NO_MENTIONS, REQUEUE, AnsweringView, Wording, answers_errors, think
from bot.attachments import read_file, save_image
from bot.checks import job_of_this_server
from bot.queueing import enqueue_options
from commands.errors import CommandError
from commands.job_options import DiscoOptions
from engine.spec.render import DESCRIBE_ANSWER
from storage import Job, JobKind, JobState, NotFound

log = logging.getLogger("disco.bot.describe")

# A prompt the spec needs (CLIP guidance wants one) but nothing renders: the job only describes.
PLACEHOLDER_PROMPT = "an image to describe"

MAX_ANSWER_BYTES = 64 * 1024  # a few hundred characters in practice
LIST_TITLES = {"mediums": "Medium", "movements": "Movement", "artists": "Artist", "flavors": "Flavours"}


async def queue_description(bot: Any, interaction: discord.Interaction, image: discord.Attachment) -> tuple[Job, str]:
    """Check, keep and describe `image` (`/describe image:` and the "Describe image" menu): the
    attachment passes `/disco`'s checks and the job is queued like any still; returns it with
    its echo. Raises the refusal."""
    ref = await save_image(bot.db, image, "image", interaction.filesize_limit)
    options = DiscoOptions(prompt=PLACEHOLDER_PROMPT, init_image=ref, settings="describe=true")
    return await enqueue_options(bot, interaction, options)


def is_description(job: Job) -> bool:
    """Whether a finished still job answered /describe (its spec has `describe` on)."""
    try:
        return job.kind == JobKind.STILL and json.loads(job.spec_json).get("describe") is True
    except (ValueError, AttributeError):
        return False


async def read_answer(db: Any, job: Job) -> dict[str, Any]:
    """The engine's `describe.json` of a finished describe job; a refusal when it is gone."""
    ref = next((p for p in job.artifacts if p.endswith(DESCRIBE_ANSWER)), None)
    gone = CommandError(f"job {job.id} has no description ({job.state}); run /describe again",
                        "job", rule="describe_answer")
    if job.state != JobState.SUCCEEDED or ref is None:
        raise gone
    try:
        data = await read_file(db, ref)
    except NotFound:
        raise gone from None
    if len(data) > MAX_ANSWER_BYTES:
        raise CommandError(f"job {job.id}'s description is damaged; run /describe again", "job",
                           rule="describe_answer")
    try:
        answer = json.loads(data.decode("utf-8"))
        str(answer["prompt"])
        return answer
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        raise CommandError(f"job {job.id}'s description is damaged; run /describe again", "job",
                           rule="describe_answer") from None


def answer_text(job: Job, answer: dict[str, Any]) -> str:
    """The channel message: who asked, the prompt to copy, then each list's best phrases."""
    lines = [f"<@{job.user_id}> **Described** `{job.id}` with {', '.join(answer.get('clip_models', []))}:",
             f"```\n{answer['prompt']}\n```"]
    for name, title in LIST_TITLES.items():
        ranked = answer.get("ranked", {}).get(name) or []
        shown = ", ".join(f"{item['phrase']} ({item['score']:.3f})" for item in ranked[:3])
        lines.append(f"{title}: {shown}")
    lines.append("▶ paints this prompt with /disco's settings.")
    return "\n".join(lines)[:2000]


async def posted_text(db: Any, job: Job) -> str:
    """What the poster posts for a finished describe job (the answer, or why it is missing)."""
    try:
        return answer_text(job, await read_answer(db, job))
    except CommandError as err:
        return f"<@{job.user_id}> {err}"


def describe_view(job_id: str) -> discord.ui.View:
    view = AnsweringView(timeout=None)
    view.add_item(UsePromptButton(job_id))
    return view


class UsePromptButton(discord.ui.DynamicItem[discord.ui.Button],
                      template=r"disco:describeuse:(?P<job>[0-9A-Z]{26})"):
    """▶ under a description: queue its prompt as a new still for whoever clicks."""

    def __init__(self, job_id: str) -> None:
        super().__init__(discord.ui.Button(label="Paint this", emoji="▶", style=discord.ButtonStyle.primary,
                                           custom_id=f"disco:describeuse:{job_id}"))
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> UsePromptButton:
        return cls(match["job"])

    @property
    def wording(self) -> Wording:
        return REQUEUE

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        bot = interaction.client
        job = await job_of_this_server(bot.db, interaction, self.job_id, fix="use the buttons there")
        prompt = str((await read_answer(bot.db, job))["prompt"])
        # The description's own settings are not a preset: the new job is a plain /disco.
        new, text = await enqueue_options(bot, interaction, DiscoOptions(prompt=prompt), parent=job, preset={})
        log.info("▶ on description %s queued job %s for user %s", job.id, new.id, new.user_id)
        await interaction.followup.send(text[:2000], ephemeral=True, allowed_mentions=NO_MENTIONS)
