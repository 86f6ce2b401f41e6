"""⬆ GoBig end to end: the real DiscoBot against the loopback Discord. A 64×64 /disco result
rendered by the supervised engine on test-tiny is enlarged by ⬆ (clicked on a restarted bot) into
a 128×128 PNG whose nine tiles were each re-diffused and counted in the progress; `/disco gobig`
renders then enlarges; and the refusals (no finished image, no such image, another
kind, the enlarged size over the bound, a typed gobig_init) name the rule and queue nothing."""
from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from engine.diffusion.gobig import tile_path
from engine.spec.gobig import gobig_tiles
from engine.spec.render import RenderSpec
from storage import Database
from tests.support.bot import click, finish, has_png, make_bot, queue_job, run
from tests.support.fakediscord import FakeDiscord

# Few cuts, no LPIPS: each tile is a few seconds on a small CPU.
QUICK = "cut_overview=[2]*1000; cut_innercut=[2]*1000; init_scale=0"


def png_of(message) -> Image.Image:
    data = next(data for name, data in message.files.items() if name.endswith(".png") and name != "preview.png")
    return Image.open(io.BytesIO(data))


def queued_id(text: str) -> str:
    return re.search(r"`([0-9A-Z]{26})`", text).group(1)


def test_gobig_button_enlarges_a_64_result_to_128_tile_by_tile_and_disco_gobig_renders_then_enlarges(tmp_path):
    """One test for both (the restarted bot and engine serve `/disco gobig` as well): an engine's
    start-up less."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake, spawn_engine=True)):
            rec = await fake.slash("disco", {"prompt": "a lighthouse", "steps": 6, "width": 64,
                                             "height": 64, "seed": 3, "settings": QUICK})
            await fake.wait_for(lambda: rec.followup_ids)
            job_id = queued_id(fake.followups_for(rec.id)[0].content)
            result = await fake.wait_for_message(fake.channel.id, lambda m: has_png(m) and job_id in m.content,
                                                 timeout=500)
            assert png_of(result).size == (64, 64)
            assert f"disco:gobig:{job_id}:0" in result.custom_ids
        # ⬆ on a restarted bot and engine: nothing may depend on views or files in memory.
        async with fake.run_client(make_bot(tmp_path, fake, spawn_engine=True)):
            _, echo = await click(fake, result.id, f"disco:gobig:{job_id}:0")
            assert echo.content.startswith("**Queued**"), echo.content
            big_id = queued_id(echo.content)
            big = await fake.wait_for_message(fake.channel.id, lambda m: has_png(m) and big_id in m.content,
                                              timeout=1300)
            assert png_of(big).size == (128, 128)
            job = await db.jobs.get(big_id)
            spec = json.loads(job.spec_json)
            assert job.parent_job_id == job_id and spec["gobig"] and spec["seed"] == 3
            source = (await db.jobs.get(job_id)).artifacts[0]
            assert await db.blobs.get(spec["gobig_init"]) == await db.blobs.get(source)
            # Every tile re-diffused (each kept as the job's blob), and the progress counted
            # tiles: the last write was tile 9 of 9.
            kept = {file.name for file in await db.blobs.job_files(big_id, ("frame",))}
            tiles = gobig_tiles(RenderSpec.from_json(job.spec_json))
            assert len(tiles) == 9 and all(tile_path(Path("gobig") / "0", t).as_posix() in kept for t in tiles)
            assert (job.progress_frame, job.progress_frames) == (8, 9)
            # /disco gobig: renders, then enlarges, in one job (on this same bot and engine).
            rec = await fake.slash("disco", {"prompt": "a lighthouse", "steps": 6, "width": 64, "height": 64,
                                             "seed": 4, "gobig": True, "settings": QUICK})
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.followups_for(rec.id)[0]
            assert "GoBig 2× → 128×128" in echo.content, echo.content
            gobig_id = queued_id(echo.content)
            enlarged = await fake.wait_for_message(fake.channel.id, lambda m: has_png(m) and gobig_id in m.content,
                                                   timeout=1300)
            assert png_of(enlarged).size == (128, 128)
            gobig_job = await db.jobs.get(gobig_id)
            assert gobig_job.frames == 1 + 3  # the render, then 9 tiles × 2 of 6 steps = 3 renders' worth
            kept = {file.name for file in await db.blobs.job_files(gobig_id, ("output",))}
            assert "TimeToDisco(0)_0.png" in kept  # the render is kept
    run(body, tmp_path, timeout=2500)


@pytest.mark.parametrize("setup, custom, words", [
    ("queued", "disco:gobig:{job}:0", "has no finished image to enlarge (queued"),
    ("finished", "disco:gobig:{job}:3", "has no image 4 to enlarge"),
    ("pixels", "disco:gobig:{job}:0", "max_pixels"),
])
def test_gobig_refusals_name_the_rule_and_queue_nothing(tmp_path, setup, custom, words):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        if setup != "queued":
            await finish(db, tmp_path, job_id)
        if setup == "pixels":
            await db.guilds.set_limits(fake.guild.id, max_pixels=64 * 64 - 1)
        blobs = await db.blobs.count()
        async with fake.run_client(make_bot(tmp_path, fake)):
            button = {"type": 2, "style": 2, "label": "GoBig", "custom_id": custom.format(job=job_id)}
            message = await fake.message_ops.create(fake.channel.id, {"content": "a result", "components": [
                {"type": 1, "components": [button]}]}, [])
            _, answer = await click(fake, message.id, button["custom_id"])
            said = answer.content.replace("\\", "")  # markdown escapes
            assert said.startswith("**Not queued") and words in said, answer.content
            assert len(await db.jobs.list()) == 1
            assert await db.blobs.count() == blobs  # nothing stored for a refused click
    run(body, tmp_path)
