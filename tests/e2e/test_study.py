"""`/study` end to end: the real discord.py client against the loopback Discord, the real SQLite
file and a real `disco engine` child on the test-tiny models — a 2×2 study is echoed, shows
"cell k of n" with the partial grid, posts the grid with one button per cell; a cell button
answers with the cell's PNG and "Open as /disco" queues that cell as a still job."""
from __future__ import annotations

import io
import json
import re

from PIL import Image

from storage import Database
from tests.support.bot import click, delivered, make_bot, run
from tests.support.fakediscord import FakeDiscord


def test_study_end_to_end_with_cell_buttons(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        bot = make_bot(tmp_path, fake, spawn_engine=True)
        async with fake.run_client(bot):
            rec = await fake.slash("study", {"prompt": "a lighthouse", "x": "clip_guidance_scale=1000,8000",
                                             "y": "tv_scale=0,100", "steps": 4, "width": 64, "height": 64,
                                             "seed": 9})
            callback = await fake.wait_for_callback(rec)
            assert callback.type == 5 and callback.delay < 3.0
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.followups_for(rec.id)[0]
            assert echo.content.startswith("**Queued**") and not echo.ephemeral, echo.content
            assert "study of 4 cells" in echo.content and "(2 × 2" in echo.content
            job_id = re.search(r"`([0-9A-Z]{26})`", echo.content).group(1)

            progress = await fake.wait_for_message(fake.channel.id, lambda m: job_id in m.content
                                                   and "cell " in m.content and not m.interaction_id,
                                                   timeout=150)
            assert re.search(r"cell [1-4] of 4 · step \d/4", progress.content), progress.content
            await fake.wait_for(lambda: "preview.png" in fake.message(progress.id).files, 40,
                                "for the partial grid preview")
            preview = Image.open(io.BytesIO(fake.message(progress.id).files["preview.png"]))
            assert preview.width > 2 * 64 and preview.height > 2 * 64  # the grid, not one cell

            final = await fake.wait_for_message(
                fake.channel.id, lambda m: any(n.endswith("_grid.png") for n in m.files), timeout=150)
            job = await delivered(db, job_id)
            assert job.state == "succeeded" and job.kind == "study"
            assert "study of 4 cells" in final.content and f"<@{fake.member.id}>" in final.content
            assert final.custom_ids == [f"disco:cell:{job_id}:{k}" for k in range(1, 5)]
            assert json.loads(final.files[f"{job_id}_study.json"])["x"]["param"] == "clip_guidance_scale"
            await fake.wait_for(lambda: fake.message(progress.id).content.startswith("**Done**"))

            _, cell = await click(fake, final.id, f"disco:cell:{job_id}:3")
            assert "Cell 3" in cell.content and "tv_scale=100" in cell.content, cell.content
            png = cell.files[f"{job_id}_cell03.png"]
            assert Image.open(io.BytesIO(png)).size == (64, 64)
            assert cell.custom_ids == [f"disco:cellopen:{job_id}:3"]

            _, opened = await click(fake, cell.id, f"disco:cellopen:{job_id}:3")
            assert opened.content.startswith("**Queued**"), opened.content
            (still,) = [j for j in await db.jobs.list() if j.parent_job_id == job_id]
            spec = json.loads(still.spec_json)
            assert still.kind == "still" and still.seed == 9
            assert (spec["clip_guidance_scale"], spec["tv_scale"], spec["steps"]) == (1000, 100, 4)
    run(body, tmp_path, timeout=300)


def test_study_refusal_names_the_axis_value_and_what_is_allowed(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            for x, expected in (("sampling_mode=ddim,euler", "euler"),
                                ("init_image=/etc/passwd", "study_axes"),
                                ("steps=50,900", "max_steps")):
                rec = await fake.slash("study", {"prompt": "a lighthouse", "x": x})
                await fake.wait_for(lambda: rec.followup_ids)
                answer = fake.message(rec.followup_ids[-1])
                assert answer.ephemeral and answer.content.startswith("**Not queued:**"), answer.content
                assert expected in answer.content.replace("\\", ""), answer.content
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_study_takes_the_disco_options_preset_and_attachments(tmp_path):
    import json

    from tests.support.bot import write_png
    from tests.support.fakediscord import FakeFile

    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.presets.save(fake.guild.id, "calm", json.dumps({"tv_scale": 100}), 1, owner_id=fake.member.id)
        init = FakeFile("init.png", write_png(tmp_path / "init.png").read_bytes(), "image/png", 64, 64)
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("study", {
                "prompt": "a lighthouse", "x": "clip_guidance_scale=1000,2000", "sampling_mode": "plms",
                "skip_steps": 2, "model": "256x256_diffusion_uncond", "preset": "calm",
                "init_image": init, "init_scale": 300,
                "settings_file": FakeFile("s.json", json.dumps({"range_scale": 77}).encode(), "application/json")})
            await fake.wait_for(lambda: rec.followup_ids)
            answer = fake.message(rec.followup_ids[-1])
            assert not answer.ephemeral, answer.content
        (job,) = await db.jobs.list()
        base = json.loads(job.spec_json)["base"]
        assert (base["sampling_mode"], base["skip_steps"], base["diffusion_model"], base["tv_scale"],
                base["init_scale"], base["range_scale"]) == ("plms", 2, "256x256_diffusion_uncond", 100, 300, 77)
        assert base["init_image"] and base["init_image"].endswith(".png")
    run(body, tmp_path)


def test_a_partial_grid_over_the_upload_limit_is_fitted():
    import os

    from bot.poster import fitted_grid
    noisy = Image.frombytes("RGB", (300, 300), os.urandom(300 * 300 * 3))
    buffer = io.BytesIO()
    noisy.save(buffer, format="PNG")
    data, fmt = fitted_grid(buffer.getvalue(), 60_000)
    assert fmt == "jpeg" and len(data) <= 60_000 and Image.open(io.BytesIO(data)).format == "JPEG"


def test_a_30_cell_study_posts_its_buttons_25_a_message(tmp_path):
    from engine.spec.render import SCHEMA_VERSION, RenderSpec
    from engine.spec.study import build_study
    from storage import JobRequest
    from tests.support.bot import FAST_DEFAULTS, OWNER, write_png

    async def body(fake: FakeDiscord, db: Database) -> None:
        base = RenderSpec.from_dict({**FAST_DEFAULTS, "text_prompts": "a lighthouse", "width": 64,
                                     "height": 64, "steps": 4, "seed": 3})
        study = build_study(base, "clip_guidance_scale=1,2,3,4,5,6", "tv_scale=0,1,2,3,4")
        job = await db.jobs.enqueue(JobRequest(
            guild_id=fake.guild.id, channel_id=fake.channel.id, user_id=fake.member.id, kind="study",
            spec_json=study.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64,
            height=64, steps=4, seed=3, frames=30))
        claimed = await db.leases.claim(OWNER)
        folder = tmp_path / "jobs" / job.id
        paths = [write_png(folder / "grid.png")] + [write_png(folder / "cells" / f"{k:02}.png")
                                                    for k in range(1, 31)]
        await db.leases.complete(job.id, claimed.attempt, OWNER, artifacts=[str(p) for p in paths],
                                 gpu_seconds=1.0)
        async with fake.run_client(make_bot(tmp_path, fake)):
            await delivered(db, job.id)
            first, second = [m for m in fake.messages_in(fake.channel.id) if job.id in m.content]
            assert f"{job.id}_grid.png" in first.files and "study of 30 cells" in first.content
            assert first.custom_ids == [f"disco:cell:{job.id}:{k}" for k in range(1, 26)]
            assert second.custom_ids == [f"disco:cell:{job.id}:{k}" for k in range(26, 31)]
            assert len((await db.jobs.get(job.id)).result_message_ids) == 2
    run(body, tmp_path)
