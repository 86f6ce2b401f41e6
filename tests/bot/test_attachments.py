"""Attachments are checked on their bytes after the download: what Discord's metadata says is
the uploader's client's word only."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bot.attachments import MAX_SETTINGS_FILE, KeptAttachment, read_settings_file, save_image, save_video
from commands.errors import CommandError
from commands.job_options import MAX_ATTACHMENT_PIXELS
from engine.media.still_formats import FORMAT_LIST
from engine.media.stills import read_still
from engine.media.video import encode_mp4
from storage import name_of
from tests.support.media import EPS, animated, encoded, picture, png_header_only, with_orientation
from tests.support.storage import in_db


@dataclass
class Upload:
    """What the bot reads of a discord.Attachment; the metadata may lie, as a client's can."""

    filename: str
    data: bytes
    content_type: str | None = "image/png"
    width: int | None = 64
    height: int | None = 64
    size: int | None = None

    def __post_init__(self):
        self.size = len(self.data) if self.size is None else self.size

    async def read(self) -> bytes:
        return self.data


def refusal(upload: Upload, tmp_path) -> CommandError:
    with pytest.raises(CommandError) as caught:
        in_db(tmp_path, lambda db: save_image(db, upload, "init_image"))
    assert in_db(tmp_path, lambda db: db.blobs.count()) == (0, 0)  # nothing was stored
    return caught.value


@pytest.mark.parametrize("data", [png_header_only(100_000, 100_000), png_header_only(5000, 5000)],
                         ids=["bomb", "5000x5000"])
def test_too_many_pixels_behind_small_metadata_is_the_pixel_cap(data, tmp_path):
    error = refusal(Upload("huge.png", data), tmp_path)
    assert error.rule == "attachment_pixels"
    assert f"at most {MAX_ATTACHMENT_PIXELS:,}" in str(error) and "scale it down" in str(error)


@pytest.mark.parametrize("name,data,needle", [
    ("drawing.png", EPS, f"not a still {FORMAT_LIST}"),
    ("loop.webp", animated("WEBP"), "animated WEBP"),
    ("loop.gif", animated("GIF"), "animated GIF (3 frames)"),
    ("scan.tiff", encoded(picture(), "TIFF", save_all=True, append_images=[picture()]), "TIFF of 2 pages"),
    ("half.jpg", encoded(picture(400, 300), "JPEG")[:1500], "cut short"),
    ("half.heic", encoded(picture(), "HEIF")[:300], "cut short"),
], ids=["eps", "animated-webp", "animated-gif", "multipage-tiff", "truncated-jpeg", "truncated-heic"])
def test_what_the_engine_cannot_use_is_refused_at_upload(name, data, needle, tmp_path):
    error = refusal(Upload(name, data, content_type=None), tmp_path)
    assert error.rule == "attachment_type" and needle in str(error)
    assert str(error).startswith(f"init_image: {name} ") and FORMAT_LIST in str(error)


@pytest.mark.parametrize("name,data,content_type", [
    ("photo.jpg", with_orientation(picture(), 6), "image/jpeg"),
    ("IMG_0001.HEIC", with_orientation(picture(), 6, "HEIF"), "image/heic"),
    ("still.gif", encoded(picture(20, 40), "GIF"), "image/gif"),
], ids=["jpeg", "heic", "still-gif"])
def test_a_phone_photo_is_kept_as_uploaded_and_reads_upright_where_the_engine_puts_it(
        name, data, content_type, tmp_path):
    """Discord gives no width and height for a HEIC (it cannot show one): the decode of the
    bytes holds it to the cap. The engine reads the blob back under its name (a .HEIC suffix)."""
    async def saved(db):
        ref = await save_image(db, Upload(name, data, content_type, None, None), "init_image")
        return ref, await db.blobs.get(ref), await db.blobs.save_to(ref, tmp_path / "inputs" / name_of(ref))
    ref, kept, local = in_db(tmp_path, saved)
    assert ref.startswith("blob:") and ref.endswith(f"/init_image_{name}") and local.suffix == Path(name).suffix
    assert kept == data  # the engine applies the rotate tag when it loads it
    assert read_still(local, MAX_ATTACHMENT_PIXELS).size == (20, 40)


def test_a_settings_file_is_measured_again_after_the_download():
    upload = Upload("settings.txt", b"{" + b" " * MAX_SETTINGS_FILE + b"}", "text/plain", size=100)
    with pytest.raises(CommandError) as caught:
        asyncio.run(read_settings_file(upload))
    assert caught.value.rule == "settings_file_size" and f"at most {MAX_SETTINGS_FILE:,}" in str(caught.value)


@pytest.mark.parametrize("name,content_type", [("export.m4v", "video/x-m4v"), ("clip.mp4", "application/octet-stream"),
                                               ("old.3gp", "video/3gpp")])
def test_a_video_is_judged_on_its_bytes_not_the_clients_type_name(name, content_type, tmp_path):
    """An iPhone's .m4v (video/x-m4v), a client that says application/octet-stream, an Android
    .3gp: each was "is video/x-m4v; attach an MP4, MOV, …" before its bytes were looked at."""
    clip = encode_mp4([np.full((32, 32, 3), 60, np.uint8)] * 3, tmp_path / "c.mp4", fps=6).read_bytes()
    ref, info = in_db(tmp_path, lambda db: save_video(db, Upload(name, clip, content_type), 10 * 2**20))
    assert ref.startswith("blob:") and info.frames == 3
    with pytest.raises(CommandError) as caught:
        in_db(tmp_path, lambda db: save_video(db, Upload("notes.txt", b"hello", "text/plain"), 10 * 2**20))
    assert caught.value.rule == "attachment_type"


def test_an_animated_gif_is_a_video_for_the_video_option(tmp_path):
    """image/gif is a still for init_image (above) and a video for /animate's `video`."""
    ref, info = in_db(tmp_path, lambda db: save_video(db, Upload("loop.gif", animated("GIF"), "image/gif"), 10 * 2**20))
    assert ref.endswith("/video_loop.gif") and info.frames == 3 and info.codec == "gif"


def test_a_video_cut_short_is_refused_at_upload_for_the_video_option(tmp_path):
    """The probe's refusal spoke of `video_init_path`, a setting the /animate user never saw."""
    clip = encode_mp4([np.full((32, 32, 3), 20 * i, np.uint8) for i in range(6)], tmp_path / "c.mp4", fps=6)
    cut = clip.read_bytes()[:-200]
    with pytest.raises(CommandError) as caught:
        in_db(tmp_path, lambda db: save_video(db, Upload("phone.mp4", cut, "video/mp4"), 10 * 2**20))
    assert caught.value.rule == "video_file" and caught.value.param == "video"
    assert str(caught.value).startswith("video: phone.mp4 — the video is damaged or cut short")
    assert in_db(tmp_path, lambda db: db.blobs.count()) == (0, 0)


class FakeHttp:
    """What `KeptAttachment.read` uses of discord.py's HTTP client: the CDN download."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def get_from_cdn(self, url: str) -> bytes:
        return self.files[url]


def test_a_kept_attachment_reads_back_as_discord_sent_it_and_is_saved_like_an_upload(tmp_path):
    data = encoded(picture(40, 20), "PNG")
    url = "https://cdn.discordapp.com/attachments/1/2/pic.png?ex=1&is=2&hm=3"
    kept = KeptAttachment(2, "pic.png", url, len(data), "image/png", 40, 20)
    again = KeptAttachment.from_dict(kept.to_dict(), FakeHttp({url: data}))
    assert again == kept and again.to_dict() == kept.to_dict()
    ref = in_db(tmp_path, lambda db: save_image(db, again, "init_image"))
    assert name_of(ref) == "init_image_pic.png"
    assert in_db(tmp_path, lambda db: db.blobs.get(ref)) == data


@pytest.mark.parametrize("change", [{"id": "2"}, {"id": True}, {"url": None}, {"size": 1.5},
                                    {"width": "40"}, {"content_type": 5}])
def test_a_kept_attachment_of_the_wrong_shape_is_refused(change):
    kept = KeptAttachment(2, "pic.png", "https://cdn.discordapp.com/x/pic.png", 10, "image/png", 40, 20)
    with pytest.raises(ValueError):
        KeptAttachment.from_dict({**kept.to_dict(), **change}, FakeHttp({}))
