"""Attachments of `/disco` (init_image, image_prompt) and `/animate` (video): checked, downloaded, kept.

Discord's metadata (type, size, width, height) is checked with `check_attachment` before a byte
is downloaded; the downloaded bytes are then checked again, since the metadata comes from the
uploader's client: an image is decoded whole, as the engine will read it (`engine.media.stills`),
a video probed, a settings file measured. The file is stored under
`<data>/uploads/<interaction id>/` and its path goes into the spec, where the engine reads it.
The path is chosen here, never by the user, so no typed path or URL can reach the engine.
"""
from __future__ import annotations

import asyncio
import re
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Optional

import discord

from commands.errors import CommandError
from commands.job_options import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_PIXELS, check_attachment
from engine.media.stills import UnusableImage, read_still
from engine.media.video import VideoInfo, VideoLimits, probe_video
from storage import Job, JobState

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _check_decoded(data: bytes, filename: str, option: str) -> tuple[int, int]:
    """The real image behind the metadata, read as the engine will read it (every pixel): a
    still PNG, JPEG or WebP within the pixel cap. Returns its size."""
    try:
        return read_still(data, MAX_ATTACHMENT_PIXELS).size
    except UnusableImage as err:
        rule = "attachment_pixels" if err.reason == "pixels" else "attachment_type"
        raise CommandError(f"{option}: {filename[:80]} {err}", option, rule=rule) from None


async def save_image(attachment: discord.Attachment, folder: Path, option: str,
                     upload_limit: int = MAX_ATTACHMENT_BYTES) -> str:
    """Check, download and store one image attachment; returns its local path."""
    limit = min(upload_limit, MAX_ATTACHMENT_BYTES)
    check_attachment(attachment.filename, attachment.content_type, attachment.size, attachment.width,
                     attachment.height, option=option, max_bytes=limit)
    data = await attachment.read()
    if len(data) > limit:  # the metadata said otherwise; believe the bytes
        raise CommandError(f"{option}: {attachment.filename} is {len(data) / 2**20:.1f} MiB; at most "
                           f"{limit / 2**20:g} MiB — attach a smaller image", option, rule="attachment_bytes")
    await asyncio.to_thread(_check_decoded, data, attachment.filename, option)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{option}_{_UNSAFE.sub('_', attachment.filename)[-80:]}"
    await asyncio.to_thread(path.write_bytes, data)
    return str(path.resolve())


MAX_SETTINGS_FILE = 64 * 1024  # a DD settings.txt is a few KiB


async def read_settings_file(attachment: Optional[discord.Attachment]) -> Optional[bytes]:
    """The bytes of a `settings_file` attachment (a DD settings.txt or our JSON), bounded."""
    if attachment is None:
        return None
    _check_settings_size(attachment.filename, attachment.size)
    data = await attachment.read()
    _check_settings_size(attachment.filename, len(data))  # the metadata may have lied
    return data


def _check_settings_size(name: str, size: int) -> None:
    if size > MAX_SETTINGS_FILE:
        raise CommandError(f"settings_file: {name[:60]} is {size:,} bytes; at most "
                           f"{MAX_SETTINGS_FILE:,} — attach the settings.txt DD wrote, not an image "
                           f"or an archive", "settings_file", rule="settings_file_size")


VIDEO_TYPES = ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska", "video/x-msvideo",
               "video/avi", "image/gif")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")


async def save_video(attachment: discord.Attachment, folder: Path, upload_limit: int) -> tuple[str, VideoInfo]:
    """Check, download, store and probe a `video` attachment; returns its path and probe.

    Bounded before the download by Discord's metadata (type, bytes), then by the engine's probe
    of the bytes themselves (readable video, duration, resolution — `engine.media.video.VideoLimits`)."""
    name = attachment.filename
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    if kind not in VIDEO_TYPES and not (not kind and name.lower().endswith(VIDEO_EXTENSIONS)):
        raise CommandError(f"video: {name[:60]} is {kind or 'not a video'}; attach an MP4, MOV, WebM, MKV, "
                           f"AVI or GIF", "video", rule="attachment_type")
    limit = min(upload_limit, VideoLimits().max_bytes)
    if attachment.size > limit:
        raise CommandError(f"video: {name[:60]} is {attachment.size / 2**20:.1f} MiB; at most "
                           f"{limit / 2**20:g} MiB — trim or compress it", "video", rule="attachment_bytes")
    data = await attachment.read()
    if len(data) > limit:
        raise CommandError(f"video: {name[:60]} is {len(data) / 2**20:.1f} MiB; at most {limit / 2**20:g} MiB",
                           "video", rule="attachment_bytes")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"video_{_UNSAFE.sub('_', name)[-80:]}"
    await asyncio.to_thread(path.write_bytes, data)
    info = await asyncio.to_thread(probe_video, path, limits=VideoLimits(max_bytes=limit), allowed_dir=folder)
    return str(path.resolve()), info


def request_folder(data_dir: Path, interaction: discord.Interaction) -> Path:
    """Where one request's uploads (and copies of earlier results) are kept: the path is ours."""
    return data_dir / "uploads" / str(interaction.id)


@asynccontextmanager
async def removed_unless_queued(folder: Path) -> AsyncIterator[Path]:
    """Files saved for a request are removed again when it is refused or fails: nothing queued
    needs them."""
    try:
        yield folder
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, folder, True)
        raise


def finished_image(job: Job, purpose: str, fix: str, rule: str, index: int = 0) -> Path:
    """The job's result PNG number `index` (0: the first), still on disk; else a refusal saying
    why and what to do."""
    images = [Path(p) for p in job.artifacts if p.endswith(".png")]
    source = images[index] if 0 <= index < len(images) else None
    if job.state != JobState.SUCCEEDED or source is None or not source.is_file():
        which = f"image {index + 1}" if index else "finished image"
        raise CommandError(f"job {job.id} has no {which} to {purpose} ({job.state}); {fix}",
                           "job", rule=rule)
    return source


def check_kept_image(path: Path, option: str) -> tuple[int, int]:
    """A kept image (a copy of a result) through the checks an attachment passes: its bytes
    within the attachment size, decoded whole within the pixel cap. Returns its size."""
    size = path.stat().st_size
    if size > MAX_ATTACHMENT_BYTES:
        raise CommandError(f"{option}: {path.name} is {size / 2**20:.1f} MiB; at most "
                           f"{MAX_ATTACHMENT_BYTES / 2**20:g} MiB — use a smaller image", option,
                           rule="attachment_bytes")
    return _check_decoded(path.read_bytes(), path.name, option)


async def keep_copy(source: Path, folder: Path, name: str) -> Path:
    """A copy in the request's folder, so the new job keeps its image even if the earlier job's
    files are cleaned up."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / name
    await asyncio.to_thread(shutil.copyfile, source, copy)
    return copy
