"""Attachments through the loopback Discord: a hostile image is a refusal that names the cap,
never "something went wrong", and nothing is kept or queued; an iPhone's HEIC, which Discord
sends without width and height, is queued."""
from __future__ import annotations

import json
import logging

from storage import Database, name_of
from tests.support.bot import make_bot, run
from tests.support.fakediscord import FakeDiscord, FakeFile
from tests.support.media import encoded, picture, png_header_only, with_orientation


def test_a_decompression_bomb_is_refused_by_the_pixel_cap_and_a_heic_is_queued(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        bomb = FakeFile("bomb.png", png_header_only(100_000, 100_000), "image/png", width=64, height=64)
        heic = FakeFile("IMG_0001.HEIC", with_orientation(picture(), 6, "HEIF"), "image/heic")
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("disco", {"prompt": "a lighthouse", "init_image": bomb})
            await fake.wait_for(lambda: rec.followup_ids)
            answer = fake.message(rec.followup_ids[-1])
            assert answer.ephemeral and "something went wrong" not in answer.content
            assert "pixels; at most 16,777,216" in answer.content.replace("\\", "")
            assert await db.blobs.count() == (0, 0)  # nothing was stored
            assert await db.jobs.list() == []

            photo = await fake.slash("disco", {"prompt": "a lighthouse", "init_image": heic})
            await fake.wait_for(lambda: photo.followup_ids)
            assert fake.message(photo.followup_ids[-1]).content.startswith("**Queued**")
        (job,) = await db.jobs.list()
        ref = json.loads(job.spec_json)["init_image"]
        assert name_of(ref) == "init_image_IMG_0001.HEIC" and await db.blobs.get(ref) == heic.data
    run(body, tmp_path)


def test_a_failed_download_is_a_refusal_to_attach_again_not_a_failure(tmp_path, caplog):
    """Discord's CDN answering 5xx, or 404 for an attachment deleted meanwhile, is the member's
    to retry: a refusal naming the option and the file, no traceback logged, nothing queued."""
    caplog.set_level(logging.INFO)
    cdn = "/attachments/{channel}/{attachment}/{name}"

    async def body(fake: FakeDiscord, db: Database) -> None:
        photo = FakeFile("photo.png", encoded(picture(), "PNG"), "image/png", width=40, height=20)
        settings = FakeFile("run_settings.txt", b'{"steps": 50}', "text/plain")
        async with fake.run_client(make_bot(tmp_path, fake)):
            for status, options, named in [(500, {"init_image": photo}, "init_image: photo.png"),
                                           (404, {"settings_file": settings}, "settings_file: run_settings.txt")]:
                fake.fail_next("GET", cdn, status)
                rec = await fake.slash("disco", {"prompt": "a lighthouse", **options})
                await fake.wait_for(lambda: rec.followup_ids)
                answer = fake.message(rec.followup_ids[-1])
                assert answer.ephemeral and answer.content.replace("\\", "") == (
                    f"**Not queued:** {named} could not be downloaded from Discord (HTTP {status}); "
                    f"attach it again")
        assert await db.jobs.list() == [] and await db.blobs.count() == (0, 0)
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    run(body, tmp_path)


def test_an_empty_attachment_is_refused_saying_what_it_should_be(tmp_path):
    """A 0-byte file (an upload that failed on the member's side) is not an image nor a settings
    file: each option refuses it with its rule, nothing is queued."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            for options, named in [({"init_image": FakeFile("photo.png", b"", "image/png")}, "photo.png"),
                                   ({"settings_file": FakeFile("run.txt", b"", "text/plain")},
                                    "settings file is empty")]:
                rec = await fake.slash("disco", {"prompt": "a lighthouse", **options})
                await fake.wait_for(lambda: rec.followup_ids)
                answer = fake.message(rec.followup_ids[-1])
                assert answer.ephemeral and answer.content.startswith("**Not queued:**"), answer.content
                assert named in answer.content.replace("\\", "")
        assert await db.jobs.list() == []
        assert not fake.errors
    run(body, tmp_path)
