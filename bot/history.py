"""`/history`: the caller's jobs in this server, newest first, a page of `PAGE_SIZE` at a time.

Each job is an embed with its state, prompt, size and seed, and a thumbnail of its first image
while the server still keeps its files. Under them: one "Show k" button per job
(`ShowButton`, `disco:show:<job>`), which reposts that job's result in the channel where it is
clicked, with fresh buttons (or what a cancelled or stopped animation or study finished, as
its notice posted it), and the pager (`HistoryPage`, `disco:history:<offset>`), which
turns the page in place. Both are `DynamicItem`s: all they need is in their custom_id and in the
database, so a page shown before a restart keeps working after it. The pages are ephemeral, so
only the caller clicks them; a page shows the clicker's own jobs whoever clicks, and only the
requester (or a member with Manage Messages) may show a job again.

A result whose files are gone (removed by the server's retention) is never reposted half: the
answer says that the files are gone and that the settings are still there for /rerun.
"""
from __future__ import annotations

import asyncio
import io
import logging
import re
from typing import Any

import discord
from PIL import Image

from bot.answers import NO_MENTIONS, NOT_DONE, AnsweringView, answers_errors, think
from bot.attachments import read_result_image, results_kept
from bot.checks import is_moderator, job_of_this_server, rules_channel_id
from bot.jobtext import prompt_text, showable, undelivered_words
from commands.errors import CommandError
from storage import Job, JobState

log = logging.getLogger("disco.bot.history")

PAGE_SIZE = 5         # one "Show" button each fits one row; ≤ 10 embeds a message
THUMBNAIL_SIDE = 160  # pixels: a thumbnail, not the image
MAX_OFFSET = 99_995   # the pager's custom_id carries ≤ 5 digits


async def history_page(bot: Any, guild_id: int, user_id: int, offset: int) -> dict[str, Any]:
    """The message of one page (content, embeds, files, view) for `send`/`edit`."""
    offset = max(0, min(int(offset), MAX_OFFSET))
    jobs = await bot.db.jobs.list(guild_id=guild_id, user_id=user_id, limit=PAGE_SIZE + 1, offset=offset)
    older = len(jobs) > PAGE_SIZE
    jobs = jobs[:PAGE_SIZE]
    if not jobs:
        text = ("You have no jobs in this server yet; start one with /disco." if offset == 0
                else "No older jobs; go back with ◀ Newer.")
        return {"content": text, "embeds": [], "files": [], "view": _pager(offset, older=False)}
    embeds, files, view = [], [], _pager(offset, older)
    for number, job in enumerate(jobs, start=offset + 1):
        kept = job.state == JobState.SUCCEEDED and await results_kept(bot.db, job)
        first = await read_result_image(bot.db, job, 0) if kept else None
        thumbnail = await asyncio.to_thread(_thumbnail, first) if first is not None else None
        embed = discord.Embed(title=f"{number}. {job.state} · {job.id}", description=_summary(job, kept))
        if thumbnail is not None:
            name = f"thumb_{job.id}.jpg"
            files.append(discord.File(io.BytesIO(thumbnail), name))
            embed.set_thumbnail(url=f"attachment://{name}")
        embeds.append(embed)
        button = ShowButton(job.id, number)
        button.item.disabled = not showable(job)
        view.add_item(button)
    text = f"**Your jobs here**, newest first: {offset + 1}–{offset + len(jobs)}"
    return {"content": text, "embeds": embeds, "files": files, "view": view}


def _summary(job: Job, kept: bool) -> str:
    prompt = " ".join(prompt_text(job).split()).replace("`", "ˋ")
    lines = [f"`{prompt[:200]}`"] if prompt else []
    lines.append(f"{job.kind} · {job.width}×{job.height} · seed `{job.seed}` · <t:{int(job.created_at)}:R>")
    if job.state == JobState.SUCCEEDED and not kept:
        lines.append("its files are no longer kept on the server")
    elif job.state == JobState.SUCCEEDED and job.delivery_state == "abandoned":
        lines.append(undelivered_words(job))
    return "\n".join(lines)[:4000]


def _thumbnail(data: bytes) -> bytes | None:
    """A small JPEG of a result image; None when it does not decode."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            small = image.convert("RGB")
            small.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    except OSError:
        return None
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _pager(offset: int, older: bool) -> discord.ui.View:
    view = AnsweringView(timeout=None)
    if offset > 0:
        view.add_item(HistoryPage(max(0, offset - PAGE_SIZE), "◀ Newer"))
    if older:
        view.add_item(HistoryPage(offset + PAGE_SIZE, "Older ▶"))
    return view


class HistoryPage(discord.ui.DynamicItem[discord.ui.Button], template=r"disco:history:(?P<offset>[0-9]{1,5})"):
    """Turns the `/history` page in place (the caller's own jobs, from `offset`)."""

    def __init__(self, offset: int, label: str = "Page") -> None:
        super().__init__(discord.ui.Button(label=label, style=discord.ButtonStyle.primary, row=1,
                                           custom_id=f"disco:history:{offset}"))
        self.offset = offset
        self.wording = NOT_DONE

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> HistoryPage:
        return cls(int(match["offset"]), item.label or "Page")

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()  # an update of the page itself (type 6)
        page = await history_page(interaction.client, interaction.guild_id, interaction.user.id, self.offset)
        await interaction.edit_original_response(content=page["content"], embeds=page["embeds"],
                                                 attachments=page["files"], view=page["view"])


class ShowButton(discord.ui.DynamicItem[discord.ui.Button], template=r"disco:show:(?P<job>[0-9A-Z]{26})"):
    """📤 Show k: the job's result posted again in this channel, with fresh buttons."""

    def __init__(self, job_id: str, number: int | None = None, label: str | None = None) -> None:
        super().__init__(discord.ui.Button(label=label or f"Show {number}", emoji="📤", row=0,
                                           style=discord.ButtonStyle.secondary, custom_id=f"disco:show:{job_id}"))
        self.job_id = job_id
        self.wording = NOT_DONE

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: re.Match[str], /) -> ShowButton:
        return cls(match["job"], label=item.label)

    @answers_errors
    async def callback(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        text = await show_here(interaction.client, interaction, self.job_id)
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def show_here(bot: Any, interaction: discord.Interaction, job_id: str) -> str:
    """Repost a finished job's result in the interaction's channel; returns the private answer."""
    job = await job_of_this_server(bot.db, interaction, job_id, fix="show it there")
    if str(interaction.user.id) != job.user_id and not is_moderator(interaction):
        raise CommandError(f"only the person who asked for job {job.id} or members with Manage Messages may "
                           f"show it again (rule: show_own_jobs); ask them", "job", rule="show_own_jobs")
    if not showable(job):
        return f"Job `{job.id}` is {job.state}; there is no result to show."
    guild = await bot.db.guilds.get(interaction.guild_id)
    if not guild.channel_allowed(rules_channel_id(interaction)):  # the admins' rule for renders holds for reposts
        allowed = ", ".join(f"<#{c}>" for c in sorted(guild.allowed_channel_ids))
        raise CommandError(f"renders are posted only in {allowed} here (rule: allowed_channels); use /history "
                           f"there to show job {job.id} again", "job", rule="allowed_channels")
    if not await results_kept(bot.db, job):
        return (f"The files of job `{job.id}` are no longer kept on the server (removed after the server's "
                f"retention period), so it cannot be shown again. Its settings are kept: `/rerun job:{job.id}` "
                f"paints it again (add seed:{job.seed} for the same image).")
    intro = f"Shown again from /history by <@{interaction.user.id}>:"
    try:
        ids = await bot.poster.send_result(job, interaction.channel, nonce=f"show-{interaction.id}", ping=False,
                                           intro=intro)
    except discord.Forbidden:
        raise CommandError("I may not post messages or files in this channel (rule: show_here_permission); "
                           "use /history in a channel where I can post", "job",
                           rule="show_here_permission") from None
    log.info("user %s showed job %s again in channel %s", interaction.user.id, job.id, interaction.channel_id)
    return f"Posted job `{job.id}` here: {job_link_in(interaction, ids[0])}"


def job_link_in(interaction: discord.Interaction, message_id: int) -> str:
    return f"https://discord.com/channels/{interaction.guild_id}/{interaction.channel_id}/{message_id}"
