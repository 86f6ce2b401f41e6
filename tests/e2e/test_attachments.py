"""Attachments through the loopback Discord: a hostile image is a refusal that names the cap,
never "something went wrong", and nothing is kept or queued."""
from __future__ import annotations

from storage import Database
from tests.support.bot import make_bot, run
from tests.support.fakediscord import FakeDiscord, FakeFile
from tests.support.media import png_header_only


def test_a_decompression_bomb_is_refused_by_the_pixel_cap(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        bomb = FakeFile("bomb.png", png_header_only(100_000, 100_000), "image/png", width=64, height=64)
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("disco", {"prompt": "a lighthouse", "init_image": bomb})
            await fake.wait_for(lambda: rec.followup_ids)
            answer = fake.message(rec.followup_ids[-1])
        assert answer.ephemeral and "something went wrong" not in answer.content
        assert "pixels; at most 16,777,216" in answer.content.replace("\\", "")
        assert await db.blobs.count() == (0, 0)  # nothing was stored
        assert await db.jobs.list() == []
    run(body, tmp_path)
