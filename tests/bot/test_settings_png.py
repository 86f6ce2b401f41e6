"""A PNG the bot posted as `settings_file`: only its settings text chunk is read (never the
pixels, and within bounds however many or large its text chunks are), and what it carries is
what a settings file carries. Any other image is refused with the rule and the fix."""
from __future__ import annotations

import asyncio
import io
import random
import zlib
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from bot.attachments import MAX_SETTINGS_FILE, png_settings_text, read_settings_file
from commands.errors import CommandError
from commands.job_options import MAX_ATTACHMENT_BYTES, DiscoOptions, JobLimits, build_job
from engine.spec.animation import AnimationSpec
from engine.media.files import MAX_PNG_CHUNKS, PngTextTooLarge, png_text_in_bytes, save_png
from engine.spec.render import RenderSpec
from tests.bot.test_attachments import Upload
from tests.support.media import encoded, picture

RESULT = RenderSpec.from_dict({"text_prompts": ["a lighthouse in a storm:2", "fog:-1"], "steps": 120, "seed": 4242,
                               "width": 512, "height": 384, "clip_guidance_scale": 7000, "eta": 0.6,
                               "cutn_batches": 2, "n_batches": 1})


def result_png(tmp_path: Path, text: dict[str, str] | None = None) -> bytes:
    """A PNG as a still's render writes it (engine/diffusion/pipeline.py `png_text`), by the
    engine's own writer."""
    carried = {"disco_settings": RESULT.to_json(), "disco_engine": "disco-discord test",
               "Description": "a lighthouse in a storm"} if text is None else text
    return save_png(Image.new("RGB", (64, 48), (9, 90, 200)), tmp_path / "result.png", carried).read_bytes()


def png_with_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """A small PNG with `chunks` (type, body) placed before its pixels."""
    plain = encoded(picture(16, 16), "PNG")
    head = 8 + 25  # signature and IHDR
    extra = b"".join(len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
                     for kind, body in chunks)
    return plain[:head] + extra + plain[head:]


def read(upload: Upload, **kwargs) -> str | bytes | None:
    return asyncio.run(read_settings_file(upload, **kwargs))


def test_a_result_png_round_trips_its_settings_and_seed_into_a_job(tmp_path):
    content = read(Upload("disco_0.png", result_png(tmp_path)))
    job = build_job(DiscoOptions(prompt="a lighthouse in a storm:2 | fog:-1", settings_file=content),
                    limits=JobLimits(), rng=random.Random(1))
    spec = job.spec
    assert (spec.steps, spec.seed, spec.width, spec.height, spec.eta, spec.cutn_batches) == (120, 4242, 512, 384,
                                                                                              0.6, 2)
    assert spec.clip_guidance_scale == 7000 and not job.seed_was_random  # the same seed repeats the image
    assert not any("unknown key" in note for note in job.notes)  # our JSON is taken as it is, not as DD's


def test_typed_settings_beat_the_png_and_a_changed_prompt_is_named(tmp_path):
    content = read(Upload("disco_0.png", result_png(tmp_path)))
    job = build_job(DiscoOptions(prompt="a castle", steps=60, settings_file=content), limits=JobLimits(),
                    rng=random.Random(1))
    assert job.spec.steps == 60 and job.spec.seed == 4242 and [p.text for p in job.spec.text_prompts] == ["a castle"]
    assert any(note.startswith("steps: 60 from the steps option replaces 120 from the settings file")
               for note in job.notes)
    assert "prompt: yours replaces the settings file's 'a lighthouse in a storm:2 | fog:-1'" in job.notes
    same = build_job(DiscoOptions(prompt="a lighthouse in a storm:2 | fog:-1", settings_file=content),
                     limits=JobLimits(), rng=random.Random(1))
    assert not any(note.startswith(("prompt:", "text_prompts:")) for note in same.notes)


def test_an_init_image_named_in_the_png_is_dropped_with_the_attachments_note(tmp_path):
    carried = RESULT.replace(init_image="blob:" + "a" * 64 + "/init_image_x.png", skip_steps=60)
    content = read(Upload("r.png", result_png(tmp_path, {"disco_settings": carried.to_json()})))
    job = build_job(DiscoOptions(prompt="a cat", settings_file=content), limits=JobLimits(), rng=random.Random(1))
    assert job.spec.init_image is None
    assert any("init_image ignored: attach it with the init_image option" in note for note in job.notes)


@pytest.mark.parametrize("text", [{}, {"Description": "a photo", "Software": "a camera"}], ids=["none", "others"])
def test_a_png_without_our_settings_is_refused_with_the_fix(text, tmp_path):
    with pytest.raises(CommandError) as caught:
        read(Upload("photo.png", result_png(tmp_path, text)))
    assert caught.value.rule == "settings_file_png"
    assert "carries no settings of this bot" in str(caught.value)
    assert "attach the PNG the bot posted (not a screenshot), or a settings.txt" in str(caught.value)


@pytest.mark.parametrize("name,content_type,kind", [("disco_0.jpg", "image/jpeg", "JPEG"),
                                                    ("disco_0.webp", "image/webp", "WebP"),
                                                    ("image.webp", None, "WebP")])
def test_a_reencoded_copy_is_refused_before_the_download(name, content_type, kind):
    class NeverRead(Upload):
        async def read(self) -> bytes:
            raise AssertionError("downloaded")
    with pytest.raises(CommandError) as caught:
        read(NeverRead(name, b"x" * 300_000, content_type))
    assert caught.value.rule == "settings_file_png" and f"is a {kind}" in str(caught.value)
    assert "re-encoded" in str(caught.value) and "not a screenshot" in str(caught.value)


def test_a_png_named_png_that_is_not_one_is_refused(tmp_path):
    with pytest.raises(CommandError) as caught:
        read(Upload("disco_0.png", encoded(picture(), "JPEG")))
    assert caught.value.rule == "settings_file_png" and "not a PNG" in str(caught.value)


def test_a_png_is_bounded_as_an_image_and_text_stays_at_64_kib(tmp_path):
    big = Upload("disco_0.png", result_png(tmp_path), size=MAX_ATTACHMENT_BYTES + 1)
    with pytest.raises(CommandError) as caught:
        read(big)
    assert caught.value.rule == "settings_file_size" and "at most 10 MiB, as for init_image" in str(caught.value)
    with pytest.raises(CommandError) as caught:  # the server's smaller upload limit applies too
        read(Upload("disco_0.png", result_png(tmp_path), size=200_000), upload_limit=100_000)
    assert caught.value.rule == "settings_file_size"
    noise = Image.frombytes("RGB", (320, 320), random.Random(3).randbytes(320 * 320 * 3))
    buffer = io.BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_itxt("disco_settings", RESULT.to_json())
    noise.save(buffer, format="PNG", pnginfo=info)
    assert len(buffer.getvalue()) > 4 * MAX_SETTINGS_FILE  # a real result is hundreds of KiB: taken
    assert read(Upload("disco_0.png", buffer.getvalue())) == RESULT.to_json()
    text = Upload("settings.txt", b"{" + b" " * MAX_SETTINGS_FILE + b"}", "text/plain")
    with pytest.raises(CommandError) as caught:
        read(text)
    assert caught.value.rule == "settings_file_size" and f"at most {MAX_SETTINGS_FILE:,}" in str(caught.value)


def test_a_huge_settings_chunk_is_refused_by_its_stored_or_decompressed_size():
    stored = png_with_chunks([(b"tEXt", b"disco_settings\0" + b" " * (MAX_SETTINGS_FILE + 1))])
    with pytest.raises(CommandError) as caught:
        png_settings_text(stored, "big.png")
    assert caught.value.rule == "settings_file_size" and f"at most {MAX_SETTINGS_FILE:,}" in str(caught.value)
    bomb = png_with_chunks([(b"zTXt", b"disco_settings\0\0" + zlib.compress(b" " * 50_000_000, 9))])
    assert len(bomb) < 100_000
    with pytest.raises(PngTextTooLarge):
        png_text_in_bytes(bomb, ("disco_settings",), MAX_SETTINGS_FILE)


def test_many_text_chunks_are_skipped_unread_and_the_walk_is_bounded(monkeypatch):
    """Pillow's Image.open would decompress each of these (1 MiB each, up to 64 MiB); they are
    stepped over by their headers, and past MAX_PNG_CHUNKS the walk stops."""
    bomb = b"junk\0\0" + zlib.compress(b" " * 1_000_000, 9)
    ours = (b"iTXt", b"disco_settings\0\0\0\0\0" + RESULT.to_json().encode())
    crowded = png_with_chunks([(b"zTXt", bomb)] * 60 + [ours])
    decompressed: list[int] = []
    real = PngImagePlugin._safe_zlib_decompress
    monkeypatch.setattr(PngImagePlugin, "_safe_zlib_decompress", lambda s: decompressed.append(len(s)) or real(s))
    assert png_text_in_bytes(crowded, ("disco_settings",), MAX_SETTINGS_FILE) == {"disco_settings": RESULT.to_json()}
    assert decompressed == []  # not one of the 60 MiB was inflated
    beyond = png_with_chunks([(b"tEXt", b"a\0b")] * MAX_PNG_CHUNKS + [ours])
    assert png_text_in_bytes(beyond, ("disco_settings",), MAX_SETTINGS_FILE) == {}


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\0\0\xff\xffIHDR"],
                         ids=["empty", "signature-only", "cut-short"])
def test_a_broken_png_carries_nothing(data):
    assert png_text_in_bytes(data, ("disco_settings",), MAX_SETTINGS_FILE) == {}


def test_an_animation_frame_is_for_animate_and_a_study_grid_is_refused(tmp_path):
    animation = AnimationSpec.from_dict({"animation_mode": "2D", "max_frames": 4, "render": RESULT.to_dict()})
    frame = result_png(tmp_path, {"disco_animation": animation.to_json(), "disco_frame": "2"})
    with pytest.raises(CommandError) as caught:
        read(Upload("0002.png", frame))
    assert caught.value.rule == "settings_file_png" and "/animate" in str(caught.value)
    assert read(Upload("0002.png", frame), animation=True) == animation.to_json()
    assert read(Upload("disco_0.png", result_png(tmp_path)), animation=True) == RESULT.to_json()
    grid = result_png(tmp_path, {"disco_study": "{}"})
    with pytest.raises(CommandError) as caught:
        read(Upload("study.png", grid), animation=True)
    assert caught.value.rule == "settings_file_png" and "study's grid" in str(caught.value)
