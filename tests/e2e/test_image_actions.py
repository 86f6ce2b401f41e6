"""Per-image actions, remix, history and DMs end to end: the real discord.py client against the
loopback Discord and, for the main path, a real `disco engine` child on the test-tiny models.

The engine test does what a member does: chooses DMs, asks for 3 images, varies image 2, remixes
the job through its form, and shows the first job again from /history; every child job is
rendered by the engine and delivered. The select-menu test drives the job through storage's
engine API, so a 6-image result costs no render.
"""
from __future__ import annotations

import io
import json

from PIL import Image

from storage import Database, name_of
from tests.support.bot import (
    OWNER,
    answered,
    click,
    delivered,
    form_values,
    has_png,
    job_id_in,
    make_bot,
    queue_job,
    run,
    write_png,
)
from tests.support.fakediscord import FakeDiscord


def pngs(job) -> list[str]:
    """The job's result images (blob references)."""
    return [p for p in job.artifacts if p.endswith(".png")]


def test_vary_image_2_of_3_remix_history_and_dm_with_the_real_engine(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake, spawn_engine=True)):
            settings = await answered(fake, await fake.slash("disco-settings", {"notify": "dm"}))
            assert settings.ephemeral and "notify: **dm**" in settings.content

            # Few steps and cuts: the CPU renders 3 images here, then 3 for each child.
            rec = await fake.slash("disco", {"prompt": "a lighthouse", "steps": 4, "width": 64, "height": 64,
                                             "n": 3, "settings": "cut_overview=[2]*1000; cut_innercut=[2]*1000"})
            job_id = job_id_in((await answered(fake, rec)).content)
            result = await fake.wait_for_message(fake.channel.id, lambda m: has_png(m) and job_id in m.content
                                                 and not m.interaction_id, timeout=400)
            job = await delivered(db, job_id)
            images = pngs(job)
            assert len(images) == 3 and f"{job_id}_grid.png" in result.files
            assert [name for name in result.files if name.endswith(".png") and "grid" not in name] == \
                [name_of(p) for p in images]
            grid = Image.open(io.BytesIO(result.files[f"{job_id}_grid.png"]))
            assert grid.width > 3 * 64 and grid.height > 64  # three cells with labels and a header
            rows = [[c["custom_id"] for c in row["components"]] for row in result.components]
            assert len(rows) == 4 and rows[2] == [f"disco:vary:{job_id}:1", f"disco:animate:{job_id}:1",
                                            f"disco:gobig:{job_id}:1"]

            # The DM: a link to the result and its files, no buttons (no server to check them in).
            dm = fake.dm_channel(fake.member.user)
            note = await fake.wait_for_message(dm.id, lambda m: job_id in m.content, timeout=15)
            assert f"/{fake.channel.id}/{result.id}" in note.content and has_png(note) and not note.custom_ids
            assert f"<@{fake.member.id}>" in result.content  # notify:dm still pings in the channel

            # 🌗 on image 2 starts from image 2, not the first.
            _, echo = await click(fake, result.id, f"disco:vary:{job_id}:1")
            vary = await db.jobs.get(job_id_in(echo.content))
            init = await db.blobs.get(json.loads(vary.spec_json)["init_image"])
            assert init == await db.blobs.get(images[1]) != await db.blobs.get(images[0])
            assert vary.parent_job_id == job_id

            # ✏️ opens the form pre-filled; the submit queues a child with the edits.
            opened = await fake.click(result.id, f"disco:remix:{job_id}")
            assert (await fake.wait_for_callback(opened)).type == 9
            shown = form_values(opened.modal)
            assert shown == {"prompt": "a lighthouse", "steps": "4", "size": "64x64", "seed": str(job.seed),
                             "clip_guidance_scale": "5000"}
            submit = await fake.submit_modal(opened, {**shown, "prompt": "a red lighthouse", "steps": "3", "seed": ""})
            remix_echo = await answered(fake, submit)
            assert remix_echo.content.startswith("**Queued**") and not remix_echo.ephemeral
            remix = await db.jobs.get(job_id_in(remix_echo.content))
            spec = json.loads(remix.spec_json)
            assert remix.parent_job_id == job_id and spec["steps"] == 3 and spec["n_batches"] == 3
            assert spec["text_prompts"][0]["text"] == "a red lighthouse"

            for child in (vary, remix):  # the engine renders both
                done = await delivered(db, child.id, timeout=400)
                assert done.state == "succeeded" and len(pngs(done)) == 3
            shown_job = await answered(fake, await fake.slash("job show", {"id": remix.id}))
            assert f"remix of `{job_id}`" in shown_job.content
            assert (await db.jobs.get(vary.id)).parent_image == 1  # image 2

            # /history: newest first, thumbnails; "Show 3" reposts the first job here.
            page = await answered(fake, await fake.slash("history"))
            assert [e["title"].split(" · ")[-1] for e in page.embeds] == [remix.id, vary.id, job_id]
            assert all(e["thumbnail"]["url"].startswith("attachment://thumb_") for e in page.embeds)
            _, done = await click(fake, page.id, f"disco:show:{job_id}")
            repost = fake.message(int(done.content.rsplit("/", 1)[1]))
            assert repost.channel_id == fake.channel.id and f"{job_id}_grid.png" in repost.files
            assert f"disco:vary:{job_id}:2" in repost.custom_ids and "Shown again" in repost.content
    run(body, tmp_path, timeout=1200)


def test_images_past_the_rows_are_picked_in_a_select_that_survives_a_restart(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        job = await db.leases.claim(OWNER)
        colors = [(40 * k, 200 - 30 * k, 90) for k in range(6)]
        images = [write_png(tmp_path / "jobs" / job_id / f"out(0)_{k}.png", color) for k, color in enumerate(colors)]
        refs = [await db.blobs.put(p.read_bytes(), p.name, job_id=job_id, role="output", fence=(job.attempt, OWNER))
                for p in images]
        await db.leases.complete(job_id, job.attempt, OWNER, artifacts=refs, gpu_seconds=1.0)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            await delivered(db, job_id)
        assert len(result.components) == 5
        select = result.components[4]["components"][0]
        assert select["custom_id"] == f"disco:image:{job_id}"
        assert [o["label"] for o in select["options"]] == ["Image 4", "Image 5", "Image 6"]
        # 6 images, the grid and the settings: 8 files, one message.
        assert len(result.files) == 8 and f"{job_id}_grid.png" in result.files

        async with fake.run_client(make_bot(tmp_path, fake)):  # no view in memory
            _, picked = await click(fake, result.id, f"disco:image:{job_id}", component_type=3, values=["4"])
            assert picked.files[f"{job_id}_5.png"] == images[4].read_bytes()
            assert picked.custom_ids == [f"disco:vary:{job_id}:4", f"disco:animate:{job_id}:4",
                                         f"disco:gobig:{job_id}:4"]
            _, echo = await click(fake, picked.id, f"disco:vary:{job_id}:4")
            vary = await db.jobs.get(job_id_in(echo.content))
            assert await db.blobs.get(json.loads(vary.spec_json)["init_image"]) == images[4].read_bytes()
            assert (vary.parent_job_id, vary.parent_action, vary.parent_image) == (job_id, "vary", 4)
            shown = await answered(fake, await fake.slash("job show", {"id": vary.id}))
            assert f"variation of image 5 of `{job_id}`" in shown.content

            # The retention sweep removes the files no job needs (image 5 is the vary job's input):
            # the pick says so instead of failing.
            await db.blobs.sweep(0.0, grace_s=0.0)
            _, gone = await click(fake, result.id, f"disco:image:{job_id}", component_type=3, values=["5"])
            assert "no longer kept" in gone.content and not gone.files
    run(body, tmp_path)
