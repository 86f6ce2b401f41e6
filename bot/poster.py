"""The poster: shows each job's progress in its channel and posts every result exactly once.

The engine process only writes the database; this loop reads it every `poll_seconds` and talks
to Discord. Nothing here uses the interaction token (it dies after 15 minutes, long before a
queue of DD renders is done): every message is an ordinary bot-owned channel message.

Progress: one message per queued/running job, created on first sight and remembered with
`set_progress_message`, so a restarted bot edits the same message instead of posting another.
Edits are coalesced: at most one per `status_edit_seconds`, and the preview image at most once
per `preview_seconds` (images cost far more of the rate limit than text). A failed edit is logged
and simply retried on a later round; 429s are slept through by discord.py itself.

Delivery: `begin_delivery` fixes a nonce in the database before anything is sent; the result
message carries it with `enforce_nonce`, so when the bot dies between Discord accepting the
message and `mark_delivered`, the resend after the restart returns the same message instead of
a duplicate; the nonce is derived from the job (storage/jobs.py `delivery_nonce`), so an
install restored from a backup taken before the post sends the same one, and Discord dedups
that too, within its window of minutes (README "Backups"). Failed, dead and cancelled jobs get
a short notice the same way. A send that fails is retried with a growing pause (up to `RETRY_MAX_SECONDS`); a result Discord keeps refusing
with a client error (4xx other than 429, e.g. a file it will not take) is replaced after
`MAX_CLIENT_ERRORS` tries by a notice saying so, so the requester always hears of the job.
The progress message is sent with a fixed nonce too (from the job id, or from the message it
replaces), so a bot that dies before saving its id finds the same message on the resend.

Studies (job kind 'study', bot/study.py): the status reads "cell k of n · step s/t" and the
preview is the partial grid; the result is the grid (a JPEG when the PNG is over the upload
limit), the study JSON and one "Cell k" button per cell, ≤ 25 a message.

Animations (job kind 'animation', bot/animate.py): the status reads "frame k/n · step s/t" with
the ETA from the frames left × the average steps a frame costs, and the preview is the latest
frame; the result is the MP4 re-encoded to fit the upload limit when it must, and the
animation JSON.

The requester's `/disco-settings notify` (storage/users.py) is read at each delivery: `off`
posts without the ping, `dm` also sends a DM (bot/notify.py), and when the channel refuses the
result (404: deleted, 403: no permission) the whole result goes to that DM instead of being given
up. `send_result` is also how "show here" (bot/history.py) posts a result again.

Each delivery runs in its own task (at most `MAX_PARALLEL_DELIVERIES`), and everything that
reads or re-encodes files runs in a thread, so a slow one never holds up the progress edits.

Buttons (bot/views.py): ⏹ cancel on the progress message, removed by the final edit; 🔄 🎯 🌗 📋 ❌
on the result. Discord caps edits to messages older than an hour (error 30046), so a progress
message older than `progress_message_max_age` is replaced by a fresh one instead of edited.
"""
from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass
from typing import Any

import discord
from PIL import Image

from bot import animate, describe, stills, study
from bot.answers import as_typed
from bot.attachments import local_artifacts, read_file, result_images
from bot.notify import notify_by_dm
from bot.jobtext import progress_words, prompt_text, seconds_left
from bot.views import IMAGES_WITH_ACTIONS, cancel_view, result_view
from commands.echo import queue_place
from engine.errors import SpecError
from engine.media.grid import fit_grid
from engine.spec.study import StudySpec
from storage import ACTIVE, Job, JobKind, JobState, QueueEstimate, StorageError

log = logging.getLogger("disco.bot.poster")

MAX_FILES = 10  # Discord's per-message attachment cap
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024
CONTENT_LIMIT = 2000
MAX_CLIENT_ERRORS = 3        # a 4xx that discord.py does not retry will not fix itself
MAX_PARALLEL_DELIVERIES = 4  # each may re-encode an MP4 or upload megabytes
RETRY_MAX_SECONDS = 300.0


@dataclass
class _Retry:
    """A delivery that failed: how often in a row, and when to try again (monotonic seconds)."""

    failures: int = 0
    client_errors: int = 0
    next_at: float = 0.0


@dataclass
class _Shown:
    """What the progress message of one job last showed, and when (monotonic seconds)."""

    text: str = ""
    edited_at: float = float("-inf")
    preview_at: float = float("-inf")
    preview_ref: str = ""  # the preview's blob reference: a new one means a new picture


def _clip(text: str, limit: int = CONTENT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _safe(text: str) -> str:
    """User text for a code span: no closing backtick, no mention."""
    return " ".join(text.split()).replace("`", "ˋ").replace("@", "@\u200b")


def status_text(job: Job, estimate: QueueEstimate | None, now: float) -> str:
    """The progress message's text for a queued or running job (`estimate`: a queued one's place;
    without its ETA, which would change the text, and so cost an edit, at every poll)."""
    head = f"**{'Rendering' if job.state == 'running' else 'Queued'}** `{job.id}`"
    prompt = prompt_text(job)
    lines = [head + (f" · `{_clip(_safe(prompt), 200)}`" if prompt else "")]
    if job.state == JobState.RUNNING:
        line = progress_words(job)
        left = seconds_left(job)
        if left is not None:
            line += f" · done <t:{int(now + left)}:R>"
        if job.cancel_requested:
            line += " · cancelling…"
        lines.append(line)
    elif estimate is not None:
        lines.append(queue_place(estimate.position, workers=estimate.workers))
    return "\n".join(lines)


def final_text(job: Job) -> str:
    """What the progress message says once the job is over (the result is its own message)."""
    word = {JobState.SUCCEEDED: "Done", JobState.CANCELLED: "Cancelled"}.get(job.state, "Failed")
    return f"**{word}** `{job.id}`"


def _with_intro(intro: str | None, text: str) -> str:
    return _clip(f"{intro}\n{text}") if intro else text


def _mention(job: Job) -> discord.AllowedMentions:
    """A result pings its requester and nobody else."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(int(job.user_id))])


def progress_nonce(job: Job, replacing: int | None = None) -> str:
    """The fixed nonce of a job's progress message (≤ 25 characters, as Discord requires):
    from the job id, or from the message being replaced after the age limit."""
    return f"r{replacing}" if replacing is not None else f"p{job.id[-24:]}"


def fitted_grid(data: bytes, limit: int) -> tuple[bytes, str]:
    """A study's grid PNG re-encoded to fit `limit` bytes (`fit_grid`): the bytes and their format."""
    with Image.open(io.BytesIO(data)) as image:
        return fit_grid(image.convert("RGB"), limit)


class Poster:
    """Runs `run()` as a task in the bot's loop; `round()` is one pass (tests may call it)."""

    def __init__(self, client: discord.Client, db: Any, *, poll_seconds: float = 1.5,
                 status_edit_seconds: float = 5.0, preview_seconds: float = 30.0,
                 progress_message_max_age: float = 3300.0) -> None:
        self.client = client
        self.db = db
        self.poll_seconds = poll_seconds
        self.status_edit_seconds = status_edit_seconds
        self.preview_seconds = preview_seconds
        self.progress_message_max_age = progress_message_max_age
        self._shown: dict[str, _Shown] = {}
        self._unpostable: set[str] = set()  # jobs whose channel refused us; not retried each round
        self._retries: dict[str, _Retry] = {}  # deliveries waiting out their pause after a failure
        self._delivering: dict[str, asyncio.Task] = {}  # deliveries in flight, by job id

    async def run(self) -> None:
        await self.client.wait_until_ready()
        try:
            while not self.client.is_closed():
                try:
                    await self.round()
                except (StorageError, discord.HTTPException, OSError) as exc:
                    # The database may be busy or Discord down: the next round tries again.
                    log.warning("poster round failed: %s", exc)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("poster round failed unexpectedly")
                await self.db.wait_for_change(self.poll_seconds)  # PostgreSQL: wakes on NOTIFY
        finally:
            for task in list(self._delivering.values()):
                task.cancel()

    async def round(self) -> None:
        """Start the deliveries that are due — each in its own task, so a slow one (an MP4
        re-encoded to fit, a large upload) never holds up the progress edits — then update
        every progress message."""
        for job in await self.db.jobs.undelivered():
            retry = self._retries.get(job.id)
            if (job.id in self._delivering or len(self._delivering) >= MAX_PARALLEL_DELIVERIES
                    or retry is not None and time.monotonic() < retry.next_at):
                continue
            task = asyncio.create_task(self._delivery(job), name=f"deliver {job.id}")
            self._delivering[job.id] = task
            task.add_done_callback(lambda _, job_id=job.id: self._delivering.pop(job_id, None))
        active = await self.db.jobs.list(states=ACTIVE, limit=200)
        positions = await self.db.jobs.positions() if any(j.state == JobState.QUEUED for j in active) else {}
        now = time.time()
        for job in reversed(active):  # oldest first: earlier jobs get their message first
            if job.id in self._unpostable:
                continue
            await self._guarded(job, self._show_progress(job, positions.get(job.id), now))

    async def _guarded(self, job: Job, step) -> None:
        """One job's trouble (a busy database, a Discord error) must not hold up the others."""
        try:
            await step
        except (StorageError, discord.HTTPException, OSError) as exc:
            log.warning("job %s: %s; retrying next round", job.id, exc)

    # ---- progress ---------------------------------------------------------------------

    def _channel(self, job: Job) -> discord.abc.Messageable:
        channel = self.client.get_channel(int(job.channel_id))
        return channel or self.client.get_partial_messageable(int(job.channel_id),
                                                              guild_id=int(job.guild_id))

    async def _show_progress(self, job: Job, estimate: QueueEstimate | None, now: float) -> None:
        shown = self._shown.setdefault(job.id, _Shown())
        text = status_text(job, estimate, now)
        clock = time.monotonic()
        preview = await self._new_preview(job, shown, clock)
        old_id = job.progress_message_id
        if old_id is not None and self._too_old(old_id):
            await self._replace_progress(job, shown, text, clock, int(old_id))
            return
        if old_id is None:
            try:
                message = await self._channel(job).send(
                    text, view=cancel_view([job.id]), nonce=progress_nonce(job),
                    allowed_mentions=discord.AllowedMentions.none())
            except (discord.NotFound, discord.Forbidden) as exc:
                log.warning("job %s: cannot post progress in channel %s: %s", job.id, job.channel_id, exc)
                self._unpostable.add(job.id)
                return
            await self.db.jobs.set_progress_message(job.id, message.id)
            shown.text, shown.edited_at = text, clock
            return
        if clock - shown.edited_at < self.status_edit_seconds:
            return
        if text == shown.text and preview is None:
            return
        message = self._channel(job).get_partial_message(int(job.progress_message_id))
        kwargs: dict[str, Any] = {"content": text}
        if preview is not None:
            data, name = preview[0], "preview.png"
            if job.kind == JobKind.STUDY and len(data) > self._upload_limit(job):
                # A big study's partial grid can outgrow the upload limit: send a fitted copy.
                try:
                    data, fmt = await asyncio.to_thread(fitted_grid, data, self._upload_limit(job))
                    name = "preview.png" if fmt == "png" else "preview.jpg"
                except (OSError, ValueError) as exc:  # no preview this time; the text still updates
                    log.info("job %s: partial grid not shown (%s)", job.id, exc)
                    data = None
            if data is not None:
                kwargs["attachments"] = [discord.File(io.BytesIO(data), name)]
        try:
            await message.edit(**kwargs)
        except discord.NotFound:
            # Someone deleted the progress message: post a fresh one next round.
            await self.db.jobs.set_progress_message(job.id, None)
            return
        except discord.HTTPException as exc:
            log.warning("job %s: progress edit failed (%s); retrying next round", job.id, exc)
            return
        shown.text, shown.edited_at = text, clock
        if preview is not None:
            shown.preview_at, shown.preview_ref = clock, preview[1]

    def _too_old(self, message_id: str) -> bool:
        # A snowflake carries its creation time, so this survives restarts with no extra column.
        created = discord.utils.snowflake_time(int(message_id)).timestamp()
        return time.time() - created > self.progress_message_max_age

    async def _replace_progress(self, job: Job, shown: _Shown, text: str, clock: float, old_id: int) -> None:
        """Post a fresh progress message, remember it, then delete the old one (best effort)."""
        channel = self._channel(job)
        message = await channel.send(text, view=cancel_view([job.id]), nonce=progress_nonce(job, old_id),
                                     allowed_mentions=discord.AllowedMentions.none())
        await self.db.jobs.set_progress_message(job.id, message.id)
        shown.text, shown.edited_at = text, clock
        shown.preview_at, shown.preview_ref = float("-inf"), ""  # the new message has no preview yet
        try:
            await channel.get_partial_message(old_id).delete()
        except discord.HTTPException as exc:
            log.info("job %s: could not delete the old progress message %s (%s)", job.id, old_id, exc)
        log.info("job %s: progress message %s replaced by %s (age limit)", job.id, old_id, message.id)

    async def _new_preview(self, job: Job, shown: _Shown, clock: float) -> tuple[bytes, str] | None:
        """The preview's bytes (a PNG ≤ 512 px, or a study's grid) when one is due and changed
        since the last one shown, read through the blob store."""
        ref = job.preview_path
        if not ref or ref == shown.preview_ref or clock - shown.preview_at < self.preview_seconds:
            return None
        try:
            return await read_file(self.db, ref), ref
        except StorageError:  # swept, or the database is busy: no preview this round
            return None

    async def _finish_progress(self, job: Job) -> None:
        self._shown.pop(job.id, None)
        if job.progress_message_id is None:
            return
        message = self._channel(job).get_partial_message(int(job.progress_message_id))
        try:
            await message.edit(content=final_text(job), attachments=[], view=None)
        except discord.HTTPException as exc:
            log.info("job %s: final progress edit failed (%s); leaving it", job.id, exc)

    # ---- delivery ---------------------------------------------------------------------

    async def _delivery(self, job: Job) -> None:
        """One delivery task: trouble is logged and the job stays undelivered for a later round."""
        try:
            await self._guarded(job, self._deliver(job))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: delivery failed unexpectedly; trying again later", job.id)
            self._retries.setdefault(job.id, _Retry()).next_at = time.monotonic() + RETRY_MAX_SECONDS

    async def _deliver(self, job: Job) -> None:
        job = await self.db.jobs.begin_delivery(job.id)
        notify = await self.db.users.notify(job.user_id)
        channel = self._channel(job)
        elsewhere = None  # the DM channel, when the result goes there instead
        try:
            ids = await self.send_result(job, channel, ping=notify != "off")
        except (discord.NotFound, discord.Forbidden) as exc:
            if notify != "dm":
                log.warning("job %s: channel %s refused the result (%s); giving up", job.id, job.channel_id, exc)
                await self.db.jobs.abandon_delivery(job.id)
                return
            # The channel is gone or closed to the bot: the requester asked for DMs, so it goes there.
            log.warning("job %s: channel %s refused the result (%s); sending it by DM", job.id, job.channel_id, exc)
            elsewhere, ids = await notify_by_dm(self, job, None)
            if not ids:
                await self.db.jobs.abandon_delivery(job.id)
                return
        except discord.HTTPException as exc:
            ids = await self._after_failure(job, channel, exc)
            if ids is None:
                return
        else:
            if notify == "dm":
                await notify_by_dm(self, job, ids[0])
        self._retries.pop(job.id, None)
        await self.db.jobs.mark_delivered(job.id, ids, channel_id=elsewhere)
        await self._finish_progress(job)

    async def _after_failure(self, job: Job, channel: discord.abc.Messageable,
                             exc: discord.HTTPException) -> list[int] | None:
        """Pause this delivery, or — after repeated client errors — post a notice instead of the
        result and return its message id."""
        retry = self._retries.setdefault(job.id, _Retry())
        retry.failures += 1
        retry.client_errors += 1 if 400 <= exc.status < 500 else 0
        if retry.client_errors >= MAX_CLIENT_ERRORS:
            log.error("job %s: Discord refused the result %d times (%s); posting a notice instead",
                      job.id, retry.client_errors, exc)
            text = _clip(f"<@{job.user_id}> job `{job.id}` is {job.state}, but Discord refused its result "
                         f"here ({_safe(exc.text or str(exc.status))[:200]}); the files are kept on the "
                         f"server — ask an admin, or look it up with /job show")
            try:
                message = await channel.send(text, nonce=f"{job.delivery_nonce}-n",
                                             allowed_mentions=_mention(job))
                return [message.id]
            except discord.HTTPException as again:
                exc = again
        retry.next_at = time.monotonic() + min(RETRY_MAX_SECONDS, self.poll_seconds * 2 ** min(retry.failures, 16))
        log.warning("job %s: sending the result failed (%s); trying again in %.0f s", job.id, exc,
                    retry.next_at - time.monotonic())
        return None

    async def send_result(self, job: Job, channel: discord.abc.Messageable, *, nonce: str | None = None,
                          ping: bool = True, buttons: bool = True, intro: str | None = None,
                          max_messages: int | None = None, upload_limit: int | None = None) -> list[int]:
        """Post the job's result (or its failure notice) in `channel`; returns the message ids.
        `nonce`: the first message's (default: the delivery's, fixed in the database); `ping`:
        whether the requester is pinged; `buttons`: the result's buttons (none in a DM, where
        there is no server to check them against); `intro`: a line before the text;
        `max_messages`: at most that many messages of files (a DM gets the first); `upload_limit`:
        the channel's, when it is not the job's server's (a DM's is Discord's default)."""
        limit = upload_limit or self._upload_limit(job)
        mention = _mention(job) if ping else discord.AllowedMentions.none()
        nonce = nonce or job.delivery_nonce
        if job.state != JobState.SUCCEEDED:
            files: list[discord.File] = []
            text = _with_intro(intro, self._failure_text(job))
            if job.artifacts and job.kind in (JobKind.ANIMATION, JobKind.STUDY):  # stopped part-way: what it finished
                fitted = animate.result_files if job.kind == JobKind.ANIMATION else study.result_files
                files, notes = await self._fitted(fitted, job, limit)
                notes = [as_typed(note) for note in job.notes] + notes  # the engine's first, as in a result
                text = _clip("\n".join([text + "\nHere is what it finished:"] + [f"• {n}" for n in notes]))
            message = await channel.send(text, nonce=nonce, files=files, allowed_mentions=mention)
            return [message.id]
        if job.kind == JobKind.STUDY:
            return await self._send_study(job, channel, mention, nonce, buttons, intro, limit)
        if describe.is_description(job):
            text = await describe.posted_text(self.db, job)
            extra = {"view": describe.describe_view(job.id)} if buttons else {}
            message = await channel.send(_with_intro(intro, text), nonce=nonce, allowed_mentions=mention, **extra)
            return [message.id]
        if job.kind == JobKind.ANIMATION:
            files, notes = await self._fitted(animate.result_files, job, limit)
            text = _with_intro(intro, self._result_text(job, notes, "animation"))
        else:
            files, notes = await self._fitted(stills.result_files, job, limit)
            images = len(result_images(job))
            if images > IMAGES_WITH_ACTIONS and buttons:
                notes.append(f"images {IMAGES_WITH_ACTIONS + 1}–{images} have no buttons (Discord's limits); "
                             f"/rerun with seed and n, or ✏️ remix, works on the whole job")
            text = _with_intro(intro, self._result_text(job, notes, "render"))
        ids = []
        chunks = range(0, max(1, len(files)), MAX_FILES)
        view = result_view(job.id, job.kind, len(result_images(job)))
        # ≤ 10 files a message; each later chunk gets its own fixed nonce so it dedups too.
        for index in chunks[:max_messages]:
            chunk_nonce = nonce if index == 0 else f"{nonce}-{index // MAX_FILES}"
            extra = {"view": view} if index == 0 and buttons else {}
            message = await channel.send(text if index == 0 else None, nonce=chunk_nonce,
                                         files=files[index:index + MAX_FILES], allowed_mentions=mention, **extra)
            ids.append(message.id)
        return ids

    async def _send_study(self, job: Job, channel: discord.abc.Messageable, mention: discord.AllowedMentions,
                          nonce: str, buttons: bool, intro: str | None, limit: int) -> list[int]:
        """The grid and the study JSON with the first 25 cell buttons; further buttons follow in
        more messages, each with its own fixed nonce (a resend after a crash dedups)."""
        files, notes = await self._fitted(study.result_files, job, limit)
        text = _with_intro(intro, self._result_text(job, notes, "study"))
        try:
            head, _, rest = text.partition("\n")
            text = _clip("\n".join((head, study.study_line(StudySpec.from_json(job.spec_json)), rest)))
        except SpecError:
            pass  # the engine validated it before rendering; without the line the grid still says it
        ids = []
        views = study.cell_views(job.id, max(0, len(job.artifacts) - 1)) if buttons else []
        for index, view in enumerate(views or [None]):
            first = index == 0
            start = index * study.BUTTONS_PER_MESSAGE + 1
            content = text if first else f"study `{job.id}` · cells {start}–{start + len(view.children) - 1}"
            message = await channel.send(content, nonce=nonce if first else f"{nonce}-{index}",
                                         files=files if first else [], allowed_mentions=mention,
                                         **({"view": view} if view is not None else {}))
            ids.append(message.id)
        return ids

    async def _fitted(self, fit: Any, job: Job, limit: int) -> tuple[list[discord.File], list[str]]:
        """`fit(job, limit)` on the job's results as local temporary files (from the blob
        store), in a thread: fitting may re-encode an MP4, so it stays off the loop."""
        async with local_artifacts(self.db, job) as local:
            return await asyncio.to_thread(fit, local, limit)

    def _upload_limit(self, job: Job) -> int:
        guild = self.client.get_guild(int(job.guild_id))
        return guild.filesize_limit if guild is not None else DEFAULT_UPLOAD_LIMIT

    @staticmethod
    def _result_text(job: Job, notes: list[str], rendered: str) -> str:
        """The result message's text; `rendered` names what is done: render, animation or study.
        Under the prompt: the engine's notes on the job (`Job.notes`), then `notes` on the files."""
        prompt = prompt_text(job)
        lines = [f"<@{job.user_id}> your {rendered} is done · job `{job.id}` · seed `{job.seed}`"]
        if prompt:
            lines.append(f"`{_clip(_safe(prompt), 300)}`")
        # The engine's notes first (what it changed or left unread); they may quote a prompt.
        lines += [f"• {as_typed(note)}" for note in job.notes] + [f"• {note}" for note in notes]
        return _clip("\n".join(lines))

    @staticmethod
    def _failure_text(job: Job) -> str:
        if job.state == JobState.CANCELLED:
            return f"<@{job.user_id}> job `{job.id}` was cancelled."
        # Outside a code span: the engine's message names settings (cut_overview, [12]*400) and
        # may quote a prompt, so its markdown is escaped as well as its mentions.
        reason = as_typed(" ".join((job.error_message or "no reason was recorded").split()))
        return _clip(f"<@{job.user_id}> job `{job.id}` failed: {reason}")
