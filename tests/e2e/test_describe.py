"""/describe end to end: the real DiscoBot against the loopback Discord and a real engine on
test-tiny (its worker, in the test's process). The image is described by the engine's tiny CLIP, the answer
posted in the channel with ▶, the same answer as the engine's ranking computed here, and ▶
(clicked on a restarted bot) queues that prompt as a new still. A hostile upload is refused by
the attachment checks and nothing is queued."""
from __future__ import annotations

import io
import json
import re

import numpy as np
from PIL import Image

from engine.describe.interrogate import describe_image
from engine.media.still_formats import FORMAT_LIST
from storage import Database
from tests.support.bot import click, make_bot, run
from tests.support.engine import tiny_pool
from tests.support.fakediscord import FakeDiscord, FakeFile
from tests.support.jobs import worker
from tests.support.media import png_header_only


def png_bytes() -> bytes:
    rng = np.random.default_rng(5)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def test_describe_answers_a_prompt_and_play_queues_it(tmp_path):
    data = png_bytes()

    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("describe", {"image": FakeFile("pic.png", data, "image/png", width=64, height=64)})
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.followups_for(rec.id)[0]
            assert echo.content.startswith("**Queued**"), echo.content
            job_id = re.search(r"`([0-9A-Z]{26})`", echo.content).group(1)
            # The engine's worker on test-tiny, in this process (its handler, its files, its writes).
            assert await worker(db, tmp_path).run(burst=True) == 1
            answer = await fake.wait_for_message(fake.channel.id, lambda m: "**Described**" in m.content,
                                                 timeout=120)
            assert answer.custom_ids == [f"disco:describeuse:{job_id}"]
        job = await db.jobs.get(job_id)
        stored = json.loads(await db.blobs.get(job.artifacts[0]))
        expected = describe_image(tiny_pool(), Image.open(io.BytesIO(data)), ["ViT-B-32::openai"])
        assert stored["prompt"] == expected.prompt  # deterministic for the image and model set
        assert f"```\n{expected.prompt}\n```" in answer.content

        async with fake.run_client(make_bot(tmp_path, fake)):  # a fresh process: no views in memory
            _, queued = await click(fake, answer.id, f"disco:describeuse:{job_id}")
            assert queued.content.startswith("**Queued**"), queued.content
            (painting,) = [j for j in await db.jobs.list() if j.parent_job_id == job_id]
            spec = json.loads(painting.spec_json)
            assert not spec["describe"] and spec["init_image"] is None
            assert " | ".join(f"{p['text']}:{p['weight']:g}" for p in spec["text_prompts"]) == expected.prompt
    run(body, tmp_path, timeout=600)


def test_describe_refuses_a_hostile_image_and_queues_nothing(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        bomb = FakeFile("bomb.png", png_header_only(100_000, 100_000), "image/png", width=64, height=64)
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("describe", {"image": bomb})
            await fake.wait_for(lambda: rec.followup_ids)
            answer = fake.message(rec.followup_ids[-1])
            text = await fake.slash("describe", {"image": FakeFile("notes.txt", b"hello", "text/plain")})
            await fake.wait_for(lambda: text.followup_ids)
            not_image = fake.message(text.followup_ids[-1])
        assert answer.ephemeral and "pixels; at most 16,777,216" in answer.content.replace("\\", "")
        # The refusal names the option the member filled in: /describe's is `image`.
        assert not_image.ephemeral and not_image.content.startswith(
            f"**Not queued:** image: 'notes.txt' is text/plain; attach a {FORMAT_LIST} image"), not_image.content
        assert await db.jobs.list() == []
    run(body, tmp_path)
