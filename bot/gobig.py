"""⬆ GoBig on a finished still: that image enlarged by the engine, tile by tile.

The button is a `DynamicItem` whose custom_id is `disco:gobig:<job id>:<image index>` (0-based),
so it works after any restart like every other job button. A click queues a still job whose spec
is the result's own (prompts and settings, the image's seed) with `gobig` on and `gobig_init`
naming a kept copy of that image — the engine then renders nothing first (engine/jobs/gobig.py).
The copy passes the same checks as an attachment (bytes, decoded whole, pixel cap), the job
the same limits, banned words, memory check and quota as `/disco` (`bot.queueing`), and the
enlarged size its own bound (`engine.spec.gobig.MAX_GOBIG_PIXELS`). An image over the server's
`max_pixels` (a GoBig result at the limit) is refused: it would be shrunk to the limit, then
enlarged back to the size it had. The "Enlarge (GoBig)" message menu on a result of the bot's
queues the same job through `enlarge_result`, with the prompt and settings of its form on top.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Optional

import discord

from bot.answers import NO_MENTIONS, REQUEUE, Wording, answers_errors, think
from bot.attachments import check_kept_image, finished_image, kept_copy, read_file
from bot.checks import job_of_this_server
from bot.jobtext import kind_words
from bot.queueing import Lineage, enqueue_options, rerun_options
from commands.errors import CommandError
from engine.spec.render import batch_image_seed
from storage import Job, JobKind, name_of

log = logging.getLogger("disco.bot.gobig")


async def queue_gobig(bot: Any, interaction: discord.Interaction, job_id: str, image_index: int) -> str:
    """Queue the enlargement of image `image_index` of job `job_id` for whoever clicked; returns
    the echo. Raises the refusal (another server, not a still, no such finished image, an
    image or an enlargement over the bounds, the server's limits, the quota)."""
    return (await enlarge_result(bot, interaction, job_id, image_index))[1]


async def enlarge_result(bot: Any, interaction: discord.Interaction, job_id: str, image_index: int, *,
                         prompt: Optional[str] = None, settings: Optional[str] = None) -> tuple[Job, str]:
    """`queue_gobig`, returning the queued job with its echo; `prompt` and `settings` (None:
    the job's own) go on top of the job's, as in the ✏️ remix form."""
    job = await job_of_this_server(bot.db, interaction, job_id, fix="use the buttons there")
    if job.kind != JobKind.STILL:
        raise CommandError(f"job {job.id} is {kind_words(job.kind)}; GoBig enlarges still images — "
                           f"use ⬆ under a /disco result", "job", rule="gobig_still_only")
    source = await finished_image(bot.db, job, "enlarge", "wait until it has finished, or make a new one with /disco",
                                  "gobig_needs_image", index=image_index)
    data = await read_file(bot.db, source)
    width, height = await asyncio.to_thread(check_kept_image, data, name_of(source), "gobig")
    max_pixels = (await bot.db.guilds.get(interaction.guild_id)).limits.max_pixels
    if width * height > max_pixels:  # it would be shrunk to the limit first, then enlarged back
        raise CommandError(f"image {image_index + 1} of job {job.id} is {width}×{height}, over this server's "
                           f"{max_pixels:,} pixels per image (max_pixels), and GoBig starts from the image at a "
                           f"size the server allows — enlarge a smaller image, or ask an admin to raise "
                           f"max_pixels", "job", rule="max_pixels")
    copy = await kept_copy(bot.db, source, "gobig_init.png")
    seed = batch_image_seed(job.seed or 0, image_index)  # the seed this very image was made with
    options = await rerun_options(bot.db, job, gobig=True, gobig_init=copy, width=width, height=height,
                                  n=1, seed=seed, prompt=prompt, settings=settings)
    new, text = await enqueue_options(bot, interaction, options, parent=job,
                                      lineage=Lineage("gobig", image_index))
    log.info("⬆ on image %d of job %s queued job %s for user %s", image_index, job.id, new.id, new.user_id)
    return new, text


class GoBigButton(discord.ui.DynamicItem[discord.ui.Button],
                  template=r"disco:gobig:(?P<job>[0-9A-Z]{26}):(?P<index>[0-9]{1,2})"):
    """⬆ under a result: enlarge image `index` (0-based) of the job."""

    def __init__(self, job_id: str, image_index: int, *, label: str | None = None) -> None:
        super().__init__(discord.ui.Button(label=label or "GoBig", emoji="⬆", style=discord.ButtonStyle.secondary,
                                           custom_id=f"disco:gobig:{job_id}:{image_index}"))
        self.job_id, self.image_index = job_id, image_index

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> GoBigButton:
        return cls(match["job"], int(match["index"]), label=item.label)

    @property
    def wording(self) -> Wording:
        """How a refusal or failure of this click begins (bot.answers)."""
        return REQUEUE

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        text = await queue_gobig(interaction.client, interaction, self.job_id, self.image_index)
        await interaction.followup.send(text[:2000], ephemeral=True, allowed_mentions=NO_MENTIONS)
