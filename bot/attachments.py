"""The bot's one door to job files: attachments in, results and previews out, as blobs.

In: attachments of `/disco` (init_image, image_prompt) and `/animate` (video) are checked,
downloaded and stored as blobs (storage/blobs.py). Discord's metadata (type, size, width,
height) is checked with `check_attachment` before a byte is downloaded; the downloaded bytes
are then checked again, since the metadata comes from the uploader's client: an image is
decoded whole, as the engine will read it (`engine.media.stills`), a video probed, a settings
file measured (of a PNG the bot posted, only its settings text chunk is read); a download
Discord's CDN fails is refused as the member's to retry (`DownloadFailed`). An image may also come as a `KeptAttachment`, what Discord said of an
attachment in an earlier interaction, checked and read the same way. The blob's reference
(`blob:<sha256>/<name>`) goes into the spec; the engine fetches it on whatever host claims the
job. The name is chosen here, never by the user, so no typed path or URL can reach the engine.
An upload whose request is refused is never named by a job, and the retention sweep removes it.

Out: `finished_image`, `kept_copy`, `read_file`, `missing_files`, `local_file` and
`local_artifacts` read a job's results and previews through the blob store (rows made before
blobs hold plain paths, which still read). Nothing here assumes the engine's disk.
"""
from __future__ import annotations

import asyncio
import re
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Optional

import aiohttp
import discord

from commands.errors import CommandError
from commands.job_options import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_PIXELS, check_attachment
from engine.media.files import PNG_SIGNATURE, PngTextTooLarge, png_text_in_bytes
from engine.media.still_formats import STILL_FORMATS
from engine.media.stills import UnusableImage, read_still
from engine.errors import SpecError
from engine.media.video import PARAM, VideoInfo, VideoLimits, probe_video
from storage import Database, Job, JobState, NotFound, name_of, parse_ref

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _check_decoded(data: bytes, filename: str, option: str) -> tuple[int, int]:
    """The real image behind the metadata, read as the engine will read it (every pixel): a
    still image (`engine.media.still_formats`) within the pixel cap. Returns its size."""
    try:
        return read_still(data, MAX_ATTACHMENT_PIXELS).size
    except UnusableImage as err:
        rule = "attachment_pixels" if err.reason == "pixels" else "attachment_type"
        raise CommandError(f"{option}: {filename[:80]} {err}", option, rule=rule) from None


@dataclass(frozen=True)
class KeptAttachment:
    """An attachment as Discord described it in an interaction, kept past that interaction (the
    message menus' forms keep their menu's, bot/menus.py): the fields `save_image`
    reads of a `discord.Attachment`, and `read`, which downloads it from Discord's CDN through
    the client's HTTP session (`Client.http`, with its proxy settings) as `Attachment.read` does.
    Only what Discord sent is kept: its URL is Discord's, never a member's."""

    id: int
    filename: str
    url: str
    size: int
    content_type: Optional[str] = None
    width: Optional[int] = None
    height: Optional[int] = None
    http: Any = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, attachment: discord.Attachment) -> KeptAttachment:
        return cls(attachment.id, attachment.filename, attachment.url, attachment.size, attachment.content_type,
                   attachment.width, attachment.height)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "filename": self.filename, "url": self.url, "size": self.size,
                "content_type": self.content_type, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: dict[str, Any], http: Any) -> KeptAttachment:
        """The attachment `to_dict` wrote, read with `http`; ValueError when it is not one."""
        kept = cls(**{key: data.get(key) for key in ("id", "filename", "url", "size", "content_type", "width",
                                                      "height")}, http=http)
        checks = ((kept.id, int), (kept.filename, str), (kept.url, str), (kept.size, int),
                  (kept.content_type, (str, type(None))), (kept.width, (int, type(None))),
                  (kept.height, (int, type(None))))
        if not all(isinstance(value, kinds) and not isinstance(value, bool) for value, kinds in checks):
            raise ValueError("not an attachment kept by KeptAttachment.to_dict")
        return kept

    async def read(self) -> bytes:
        return await self.http.get_from_cdn(self.url)


async def save_image(db: Database, attachment: discord.Attachment | KeptAttachment, option: str,
                     upload_limit: int = MAX_ATTACHMENT_BYTES) -> str:
    """Check, download and store one image attachment; returns its blob reference."""
    return (await save_measured_image(db, attachment, option, upload_limit))[0]


async def save_measured_image(db: Database, attachment: discord.Attachment | KeptAttachment, option: str,
                              upload_limit: int = MAX_ATTACHMENT_BYTES) -> tuple[str, tuple[int, int]]:
    """`save_image`, also returning the image's width and height as the engine reads it (upright,
    by its EXIF orientation): Discord measures no HEIC or TIFF, and a phone photo's metadata may
    give its sides before the turn."""
    limit = min(upload_limit, MAX_ATTACHMENT_BYTES)
    check_attachment(attachment.filename, attachment.content_type, attachment.size, attachment.width,
                     attachment.height, option=option, max_bytes=limit)
    data = await download(attachment, option)
    if len(data) > limit:  # the metadata said otherwise; believe the bytes
        raise CommandError(f"{option}: {attachment.filename} is {len(data) / 2**20:.1f} MiB; at most "
                           f"{limit / 2**20:g} MiB — attach a smaller image", option, rule="attachment_bytes")
    size = await asyncio.to_thread(_check_decoded, data, attachment.filename, option)
    return await db.blobs.put(data, f"{option}_{_UNSAFE.sub('_', attachment.filename)[-80:]}"), size


class DownloadFailed(CommandError):
    """Discord's CDN did not hand over an attachment: `status` is its HTTP answer (None when
    none came), `why` says what happened in a few words."""

    def __init__(self, message: str, option: str, status: Optional[int], why: str) -> None:
        super().__init__(message, option, rule="attachment_download")
        self.status, self.why = status, why


async def download(attachment: discord.Attachment | KeptAttachment, option: str) -> bytes:
    """The attachment's bytes from Discord's CDN. A download that fails (a CDN error or timeout,
    an attachment deleted meanwhile) is the member's to retry, not a fault of ours: it is
    refused saying so (`DownloadFailed`), not answered "something went wrong"."""
    try:
        return await attachment.read()
    except (discord.HTTPException, aiohttp.ClientError, asyncio.TimeoutError) as err:
        status = err.status if isinstance(err, discord.HTTPException) else None
        why = f"HTTP {status}" if status is not None else type(err).__name__
        raise DownloadFailed(f"{option}: {attachment.filename[:80]} could not be downloaded from Discord ({why}); "
                             f"attach it again", option, status, why) from None


MAX_SETTINGS_FILE = 64 * 1024  # a DD settings.txt is a few KiB; so is the settings text in a PNG of ours
SETTINGS_CHUNK, ANIMATION_CHUNK, STUDY_CHUNK = "disco_settings", "disco_animation", "disco_study"
NO_SETTINGS_FIX = "attach the PNG the bot posted (not a screenshot), or a settings.txt"


async def read_settings_file(attachment: Optional[discord.Attachment], upload_limit: int = MAX_ATTACHMENT_BYTES,
                             *, animation: bool = False) -> Optional[str | bytes]:
    """The content of a `settings_file` attachment, bounded: a DD settings.txt or our JSON (at
    most MAX_SETTINGS_FILE bytes), or a PNG this bot posted (bounded as an image attachment is),
    of which only the settings text chunk is read (`png_settings_text`). `animation`: for
    /animate, which also takes an animation frame's PNG."""
    if attachment is None:
        return None
    kind = _image_kind(attachment.filename, attachment.content_type)
    if kind is None:
        _check_settings_size(attachment.filename, attachment.size)
        data = await download(attachment, "settings_file")
        if not data.startswith(PNG_SIGNATURE):  # a PNG by another name is read as one below
            _check_settings_size(attachment.filename, len(data))  # the metadata may have lied
            return data
    elif kind != "PNG":
        raise CommandError(f"settings_file: {attachment.filename[:60]} is a {kind}; only a PNG the bot "
                           f"posted carries its settings (Discord's previews and saved copies are often "
                           f"re-encoded as JPEG or WebP) — {NO_SETTINGS_FIX}", "settings_file",
                           rule="settings_file_png")
    else:
        limit = min(upload_limit, MAX_ATTACHMENT_BYTES)
        _check_png_size(attachment.filename, attachment.size, limit)
        data = await download(attachment, "settings_file")
        _check_png_size(attachment.filename, len(data), limit)
    return png_settings_text(data, attachment.filename, animation=animation)


def png_settings_text(data: bytes, name: str, *, animation: bool = False) -> str:
    """The settings a PNG of this bot carries: a still's `disco_settings` text chunk (for
    /animate also a frame's `disco_animation`), read without decoding a pixel and bounded to
    MAX_SETTINGS_FILE like a settings.txt. Refused when the PNG carries none of them."""
    shown = name[:60]
    if not data.startswith(PNG_SIGNATURE):
        raise CommandError(f"settings_file: {shown} is not a PNG (Discord's previews and saved copies are "
                           f"often re-encoded) — {NO_SETTINGS_FIX}", "settings_file", rule="settings_file_png")
    try:
        chunks = png_text_in_bytes(data, (SETTINGS_CHUNK, ANIMATION_CHUNK, STUDY_CHUNK), MAX_SETTINGS_FILE)
    except PngTextTooLarge as err:
        raise CommandError(f"settings_file: {shown} holds {err.size:,} bytes of '{err.key}' text; at most "
                           f"{err.limit:,} — {NO_SETTINGS_FIX}", "settings_file", rule="settings_file_size") from None
    if animation and ANIMATION_CHUNK in chunks:
        return chunks[ANIMATION_CHUNK]
    if SETTINGS_CHUNK in chunks:
        return chunks[SETTINGS_CHUNK]
    if ANIMATION_CHUNK in chunks:
        raise CommandError(f"settings_file: {shown} is a frame of an animation; attach it to /animate "
                           f"settings_file: to animate with its settings, or attach a still image's PNG here",
                           "settings_file", rule="settings_file_png")
    if STUDY_CHUNK in chunks:
        raise CommandError(f"settings_file: {shown} is a study's grid, which carries the study, not one "
                           f"image's settings; attach the settings.txt or a still image's PNG the bot "
                           f"posted", "settings_file", rule="settings_file_png")
    raise CommandError(f"settings_file: {shown} carries no settings of this bot — {NO_SETTINGS_FIX}",
                       "settings_file", rule="settings_file_png")


def _image_kind(name: str, content_type: Optional[str]) -> Optional[str]:
    """The still format an attachment says it is (by its type, else its extension), or None."""
    kind = (content_type or "").split(";")[0].strip().lower()
    extension = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return next((f.name for f in STILL_FORMATS if kind in f.content_types or extension in f.extensions), None)


def _check_settings_size(name: str, size: int) -> None:
    if size > MAX_SETTINGS_FILE:
        raise CommandError(f"settings_file: {name[:60]} is {size:,} bytes; at most "
                           f"{MAX_SETTINGS_FILE:,} — attach the settings.txt DD wrote or a PNG the bot "
                           f"posted, not an archive", "settings_file", rule="settings_file_size")


def _check_png_size(name: str, size: int, limit: int) -> None:
    if size > limit:
        raise CommandError(f"settings_file: {name[:60]} is {size / 2**20:.1f} MiB; a PNG is at most "
                           f"{limit / 2**20:g} MiB, as for init_image — attach the PNG the bot posted",
                           "settings_file", rule="settings_file_size")


VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif", ".3gp")


async def save_video(db: Database, attachment: discord.Attachment, upload_limit: int) -> tuple[str, VideoInfo]:
    """Check, download, probe and store a `video` attachment; returns its blob reference and probe.

    Bounded before the download by Discord's metadata (type, bytes), then by the engine's probe
    of the bytes themselves (readable video, duration, resolution — `engine.media.video.VideoLimits`),
    every frame decoded: a file cut short or damaged is refused here, not when the render reaches
    the frames it lacks."""
    name = attachment.filename
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    # A first sieve only (clients name types as they like: video/x-m4v, application/octet-stream);
    # the probe of the bytes below decides.
    if not (kind.startswith("video/") or kind == "image/gif" or name.lower().endswith(VIDEO_EXTENSIONS)):
        raise CommandError(f"video: {name[:60]} is {kind or 'not a video'}; attach an MP4, MOV, WebM, MKV, "
                           f"AVI or GIF", "video", rule="attachment_type")
    limit = min(upload_limit, VideoLimits().max_bytes)
    if attachment.size > limit:
        raise CommandError(f"video: {name[:60]} is {attachment.size / 2**20:.1f} MiB; at most "
                           f"{limit / 2**20:g} MiB — trim or compress it", "video", rule="attachment_bytes")
    data = await download(attachment, "video")
    if len(data) > limit:
        raise CommandError(f"video: {name[:60]} is {len(data) / 2**20:.1f} MiB; at most {limit / 2**20:g} MiB",
                           "video", rule="attachment_bytes")
    stored = f"video_{_UNSAFE.sub('_', name)[-80:]}"
    with tempfile.TemporaryDirectory(prefix="disco-upload-") as folder:
        path = Path(folder) / stored
        await asyncio.to_thread(path.write_bytes, data)
        try:
            info = await asyncio.to_thread(probe_video, path, limits=VideoLimits(max_bytes=limit),
                                           allowed_dir=Path(folder), decode=True)
        except SpecError as err:  # the probe speaks of the engine's setting; the user filled `video`
            raise CommandError(f"video: {name[:60]} — {str(err).removeprefix(f'{PARAM}: ')}", "video",
                               rule="video_file") from None
    return await db.blobs.put(data, stored), info


def result_images(job: Job) -> list[str]:
    """A still's result images (its PNGs, as blob references), in the order the engine rendered
    them; image k of the result message is `result_images(job)[k]`. Evolution videos and other
    files are left out."""
    return [p for p in job.artifacts if p.endswith(".png")]


async def read_result_image(db: Database, job: Job, index: int) -> bytes | None:
    """The bytes of result image `index`; None when it is no longer kept (or never existed)."""
    images = result_images(job)
    if not 0 <= index < len(images):
        return None
    try:
        return await db.blobs.get(images[index])
    except NotFound:
        return None


async def results_kept(db: Database, job: Job) -> bool:
    """Whether every result file of the job is still kept."""
    return bool(job.artifacts) and not await missing_files(db, job.artifacts)


async def finished_image(db: Database, job: Job, purpose: str, fix: str, rule: str, index: int = 0) -> str:
    """Result image `index` (the first by default), still kept; else a refusal saying why and
    what to do."""
    images = result_images(job)
    source = images[index] if 0 <= index < len(images) else None
    if job.state != JobState.SUCCEEDED or source is None or not await db.blobs.exists(source):
        which = f"image {index + 1}" if index else "finished image"
        raise CommandError(f"job {job.id} has no {which} to {purpose} ({job.state}, {len(images)} image(s) "
                           f"kept; rule: {rule}); {fix}", "job", rule=rule)
    return source


def check_kept_image(data: bytes, name: str, option: str) -> tuple[int, int]:
    """A kept image (a result) through the checks an attachment passes: its bytes within the
    attachment size, decoded whole within the pixel cap. Returns its size."""
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise CommandError(f"{option}: {name} is {len(data) / 2**20:.1f} MiB; at most "
                           f"{MAX_ATTACHMENT_BYTES / 2**20:g} MiB — use a smaller image", option,
                           rule="attachment_bytes")
    return _check_decoded(data, name, option)


async def kept_copy(db: Database, source: str, name: str) -> str:
    """`source` as a blob a new job can name (its enqueue then keeps it for as long as the new
    job needs it, even after the earlier job's files are swept)."""
    if parse_ref(source) is not None:
        return source
    return await db.blobs.put(await db.blobs.get(source), name)  # a row made before blobs


async def read_file(db: Database, ref: str) -> bytes:
    """A job file's bytes (a result, a preview, an input); NotFound when it is no longer kept."""
    return await db.blobs.get(ref)


async def missing_files(db: Database, refs: Iterable[Optional[str]]) -> list[str]:
    """The names of the files among `refs` that are no longer kept (None entries are skipped)."""
    return [name_of(ref) for ref in refs if ref and not await db.blobs.exists(ref)]


@asynccontextmanager
async def local_file(db: Database, ref: str) -> AsyncIterator[Path]:
    """A job file as a temporary local file, for code that reads files (a video's probe)."""
    with tempfile.TemporaryDirectory(prefix="disco-file-") as folder:
        yield await db.blobs.save_to(ref, Path(folder) / name_of(ref))


@asynccontextmanager
async def local_artifacts(db: Database, job: Job) -> AsyncIterator[Job]:
    """The job with its results as temporary local files (under their own names), for the
    blocking code that fits them to Discord's limits in a thread. A result that is no longer
    kept is a path that does not exist, which that code reports as unreadable."""
    with tempfile.TemporaryDirectory(prefix="disco-post-") as folder:
        paths = []
        for ref in job.artifacts:
            parsed = parse_ref(ref)
            if parsed is None:  # a row made before blobs: its path as it is
                paths.append(ref)
                continue
            path = Path(folder) / str(len(paths)) / parsed.name
            try:
                await db.blobs.save_to(ref, path)
            except NotFound:
                pass
            paths.append(str(path))
        yield replace(job, artifacts=tuple(paths))
