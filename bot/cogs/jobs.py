"""`/rerun`, `/queue`, `/cancel` and `/job show`: working with jobs already in the database.

Everything is read from SQLite, so these answer the same after a restart and from any channel of
the server. Only `/rerun` answers publicly (its echo is a queued job, like `/disco`); the others
are ephemeral. Jobs of another server are never shown or touched. Cancelling someone else's job
needs Manage Messages, the permission Discord asks for to remove other people's posts. Refusals
are raised; the command tree's error path (bot/tree.py) answers them, "Not queued" for /rerun
and "Not done" for the rest.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

import discord
from discord import app_commands
from discord.ext import commands

from bot.answers import MESSAGE_LIMIT, NO_MENTIONS, NOT_DONE, NOT_QUEUED, as_typed, think
from bot.checks import job_of_this_server
from bot.jobtext import progress_words, prompt_text, seconds_left, undelivered_words
from bot.params import GuidanceScale, JobId, Prompt, Seed, Settings, Steps
from bot.queueing import Lineage, enqueue_options, rerun_options
from bot.settings_text import fitting
from bot.views import cancel_job, cancel_view, job_link
from commands.echo import queue_place
from commands.errors import CommandError
from storage import ACTIVE, Job, JobState

log = logging.getLogger("disco.bot.jobs")


def _prompt(job: Job, limit: int = 60) -> str:
    text = " ".join(prompt_text(job).split()).replace("`", "ˋ")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _running_eta(job: Job, now: float) -> Optional[int]:
    left = seconds_left(job)
    return None if left is None else int(now + left)


def _waiting(estimate, now: float) -> str:
    return queue_place(estimate.position, starts_at=now + estimate.starts_in,
                       finishes_at=now + estimate.finishes_in, workers=estimate.workers)


LINEAGE_WORDS = {"new": "new seed of", "same": "same seed of", "vary": "variation of", "animate": "animation of",
                 "remix": "remix of", "rerun": "re-run of", "gobig": "GoBig enlargement of"}


def _fitted_notes(job: Job, room: int) -> list[str]:
    """The engine's notes on the job, whole lines, as many as fit in `room` characters (the
    result's link above them stays); the rest are counted."""
    lines: list[str] = []
    for k, note in enumerate(job.notes):
        line, rest = f"note: {as_typed(note)}", len(job.notes) - k
        more = f"…and {rest} more note{'s' if rest > 1 else ''} on the result"
        reserve = len(more) + 1 if rest > 1 else 0  # room to count the notes after this one
        if len(line) + 1 + reserve > room:
            return lines + ([more] if len(more) + 1 <= room else [])
        lines.append(line)
        room -= len(line) + 1
    return lines


def lineage_words(job: Job) -> str:
    """'variation of image 2 of `<parent>`': how the job came from its parent."""
    words = LINEAGE_WORDS.get(job.parent_action or "", "re-run of")
    image = f"image {job.parent_image + 1} of " if job.parent_image is not None else ""
    return f"{words} {image}`{job.parent_job_id}`"


def job_line(job: Job, estimate, now: float) -> str:
    """One line of `/queue`: id, state, position or progress, ETAs as Discord timestamps."""
    parts = [f"`{job.id}`"]
    if job.state == JobState.RUNNING:
        parts.append(f"rendering {progress_words(job)}")
        eta = _running_eta(job, now)
        if eta:
            parts.append(f"done <t:{eta}:R>")
        if job.cancel_requested:
            parts.append("cancelling…")
    elif estimate is not None:
        parts.append(_waiting(estimate, now))
    else:
        parts.append(job.state)
    prompt = _prompt(job)
    return " · ".join(parts) + (f" · `{prompt}`" if prompt else "")


class JobsCog(commands.Cog):
    """Needs `bot.db` (opened in setup_hook before the extensions load)."""

    job = app_commands.Group(name="job", description="Look up one of this server's jobs", guild_only=True,
                             extras=NOT_DONE.extras())

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @property
    def db(self):
        return self.bot.db

    async def _own_job(self, interaction: discord.Interaction, job_id: Optional[str]) -> Job:
        """The named job (of this server), else the caller's newest one here."""
        if job_id:
            return await job_of_this_server(self.db, interaction, job_id,
                                            fix="jobs are shown and used only in the server they were made in")
        latest = await self.db.jobs.list(guild_id=interaction.guild_id, user_id=interaction.user.id, limit=1)
        if not latest:
            raise CommandError("you have no jobs in this server yet; start one with /disco", "job",
                               rule="job_required")
        return latest[0]

    async def _answer(self, interaction: discord.Interaction, text: str, **kwargs) -> None:
        await interaction.followup.send(text[:MESSAGE_LIMIT], ephemeral=True, allowed_mentions=NO_MENTIONS, **kwargs)

    async def job_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The caller's 25 newest jobs here whose id or prompt holds what has been typed (a
        member remembers "lighthouse", not `01J…`; the choices show both)."""
        jobs = await self.db.jobs.list(guild_id=interaction.guild_id, user_id=interaction.user.id, limit=25)
        typed = current.strip().lower()
        return [app_commands.Choice(name=f"{j.id} · {j.state} · {_prompt(j, 40)}"[:100], value=j.id)
                for j in jobs if typed in f"{j.id} {prompt_text(j)}".lower()][:25]

    # ---- /rerun ---------------------------------------------------------------------------

    @app_commands.command(name="rerun", description="Queue one of your jobs again, optionally changed",
                          extras=NOT_QUEUED.extras())
    @app_commands.guild_only()
    @app_commands.describe(job="the job id (default: your last job in this server)",
                           prompt="new prompts instead of the job's (same syntax as /disco's prompt)",
                           seed="the noise seed; omit for a new random one, give the job's seed to repeat it",
                           steps="diffusion steps", clip_guidance_scale="how strongly CLIP pulls toward the prompts",
                           settings='other DD settings to change: "key=value; key=value"')
    @app_commands.autocomplete(job=job_autocomplete)
    async def rerun(self, interaction: discord.Interaction, job: Optional[JobId] = None,
                    prompt: Optional[Prompt] = None, seed: Optional[Seed] = None, steps: Optional[Steps] = None,
                    clip_guidance_scale: Optional[GuidanceScale] = None,
                    settings: Optional[Settings] = None) -> None:
        await think(interaction)
        parent = await self._own_job(interaction, job)
        options = await rerun_options(self.bot.db, parent, prompt=prompt, seed=seed, steps=steps,
                                      clip_guidance_scale=clip_guidance_scale, settings=settings)
        new, text = await enqueue_options(self.bot, interaction, options, parent=parent, lineage=Lineage("rerun"))
        log.info("/rerun of job %s queued job %s for user %s", parent.id, new.id, new.user_id)
        await interaction.followup.send(text, allowed_mentions=NO_MENTIONS)

    # ---- /queue ---------------------------------------------------------------------------

    @app_commands.command(name="queue", description="Your and this server's queued and running jobs",
                          extras=NOT_DONE.extras())
    @app_commands.guild_only()
    async def queue(self, interaction: discord.Interaction) -> None:
        await think(interaction, private=True)
        counts = await self.db.jobs.active_counts(interaction.guild_id)
        mine = list(reversed(await self.db.jobs.list(guild_id=interaction.guild_id, user_id=interaction.user.id,
                                                     states=ACTIVE, limit=500)))  # oldest first
        positions = await self.db.jobs.positions() if mine else {}
        now = time.time()
        lines = [f"**Queue** · this server: {counts[JobState.QUEUED]} waiting, "
                 f"{counts[JobState.RUNNING]} rendering"]
        if mine:
            lines.append("**Your jobs**")
            lines += [job_line(j, positions.get(j.id), now) for j in mine]
        else:
            lines.append("You have no queued or running jobs here; start one with /disco.")
        shown = fitting(lines, MESSAGE_LIMIT - 40, "\n")  # whole lines, room for the note below
        text = "\n".join(lines[:shown]) + "\n"
        if shown < len(lines):
            text += f"… and {len(lines) - shown} more of your jobs (the newest)\n"
        cancellable = [j.id for j in mine if not j.cancel_requested]
        kwargs = {"view": cancel_view(cancellable, labelled=True)} if cancellable else {}
        await self._answer(interaction, text, **kwargs)

    # ---- /cancel --------------------------------------------------------------------------

    @app_commands.command(name="cancel", description="Cancel a queued or running job", extras=NOT_DONE.extras())
    @app_commands.guild_only()
    @app_commands.describe(job="the job id (default: your newest queued or running job here)")
    @app_commands.autocomplete(job=job_autocomplete)
    async def cancel(self, interaction: discord.Interaction, job: Optional[JobId] = None) -> None:
        await think(interaction, private=True)
        target = await self._own_job(interaction, job) if job else await self._newest_active(interaction)
        await self._answer(interaction, await cancel_job(self.bot, interaction, target))

    async def _newest_active(self, interaction: discord.Interaction) -> Job:
        active = await self.db.jobs.list(guild_id=interaction.guild_id, user_id=interaction.user.id,
                                         states=ACTIVE, limit=1)
        if not active:
            raise CommandError("you have no queued or running job in this server; give a job id to "
                               "cancel a specific one (see /queue)", "job", rule="job_required")
        return active[0]

    # ---- /job show ------------------------------------------------------------------------

    @job.command(name="show", description="State, progress, seed and result link of a job")
    @app_commands.rename(job_id="id")
    @app_commands.describe(job_id="the job id (from the echo, the progress message or /queue)")
    @app_commands.autocomplete(job_id=job_autocomplete)
    async def show(self, interaction: discord.Interaction, job_id: JobId) -> None:
        await think(interaction, private=True)
        job = await self._own_job(interaction, job_id)
        await self._answer(interaction, await self._describe(job))

    async def _describe(self, job: Job) -> str:
        now = time.time()
        lines = [f"**Job** `{job.id}` · {job.state}" + (" · cancelling…" if job.cancel_requested
                                                         and not job.terminal else ""),
                 f"by <@{job.user_id}> in <#{job.channel_id}> · created <t:{int(job.created_at)}:R>"]
        prompt = _prompt(job, 300)
        if prompt:
            lines.append(f"`{prompt}`")
        lines.append(f"seed `{job.seed}` · {job.width}×{job.height} · {job.steps} steps"
                     + (f" · {lineage_words(job)}" if job.parent_job_id else ""))
        if job.state == JobState.QUEUED:
            estimate = await self.db.jobs.position(job.id)
            if estimate is not None:
                lines.append(_waiting(estimate, now))
        elif job.state == JobState.RUNNING:
            eta = _running_eta(job, now)
            lines.append(progress_words(job) + (f" · done <t:{eta}:R>" if eta else ""))
        if job.error_message and job.state != JobState.SUCCEEDED:
            lines.append(f"error: {as_typed(' '.join(job.error_message.split())[:500])}")
        posted = "result" if job.state == JobState.SUCCEEDED else "notice"  # a failure's or cancel's
        if job.result_message_ids and job.delivery_state == "posted":
            where = (f" (in <@{job.user_id}>'s DMs: the channel refused it, so only they can open it)"
                     if job.result_channel_id else "")
            lines.append(f"{posted}: {job_link(job, job.result_message_ids[0])}{where}")
        elif job.terminal:
            lines.append(f"{posted}: {undelivered_words(job)}")
        return "\n".join(lines + _fitted_notes(job, MESSAGE_LIMIT - sum(len(line) + 1 for line in lines)))


async def setup(bot: commands.Bot) -> None:
    """Extension entry point: `bot.load_extension("bot.cogs.jobs")` (needs bot.db)."""
    await bot.add_cog(JobsCog(bot))
