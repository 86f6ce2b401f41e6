"""The job buttons (bot/views.py) and the poster's message handling, end to end: the real
DiscoBot against the loopback Discord, with jobs driven through storage's engine API so the
timing is the test's (the full render path is covered in test_bot_e2e / test_bot_jobs).

Every click happens on a bot started after the one that posted the buttons: nothing may depend
on in-memory views.
"""
from __future__ import annotations

import asyncio
import json

from bot.client import DiscoBot
from storage import Database
from tests.support.bot import (
    OWNER,
    answered,
    bot_config,
    click,
    delivered,
    finish,
    has_png,
    last_answer,
    make_bot,
    queue_job,
    run,
)
from tests.support.fakediscord import FakeDiscord, FakeMember, FakeUser

STRANGER_ID = 990_000_000_000_000_001


def test_result_buttons_work_after_a_restart(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        png = await finish(db, tmp_path, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            await delivered(db, job_id)
        assert result.custom_ids == ([f"disco:{a}:{job_id}" for a in ("new", "same", "remix", "recipe", "delete")]
                                     + [f"disco:vary:{job_id}:0", f"disco:animate:{job_id}:0", f"disco:gobig:{job_id}:0"])

        async with fake.run_client(make_bot(tmp_path, fake)):  # a fresh process: no views in memory
            rec, echo = await click(fake, result.id, f"disco:new:{job_id}")
            assert echo.content.startswith("**Queued**"), echo.content
            (new,) = [j for j in await db.jobs.list() if j.parent_job_id == job_id]
            assert new.user_id == str(fake.member.id) and new.seed != 7 and new.state == "queued"
            assert new.id in echo.content

            _, same_echo = await click(fake, result.id, f"disco:same:{job_id}", user=fake.admin)
            same = next(j for j in await db.jobs.list() if j.parent_job_id == job_id and j.id != new.id)
            assert same.seed == 7 and same.user_id == str(fake.admin.id)
            original = json.loads((await db.jobs.get(job_id)).spec_json)
            assert json.loads(same.spec_json) == original  # identical spec: same everything
            _, twice = await click(fake, result.id, f"disco:same:{job_id}", user=fake.admin)
            assert twice.ephemeral and "duplicate_job" in twice.content.replace("\\_", "_"), twice.content
            assert same.id in twice.content and len(await db.jobs.list()) == 3  # a double click: one job

            rec, vary_echo = await click(fake, result.id, f"disco:vary:{job_id}:0")
            assert vary_echo.content.startswith("**Queued**"), vary_echo.content
            vary = (await db.jobs.list(limit=1))[0]
            spec = json.loads(vary.spec_json)
            # The result's own blob, named by the new job too: kept while either needs it.
            assert spec["init_image"] == (await db.jobs.get(job_id)).artifacts[0]
            assert await db.blobs.get(spec["init_image"]) == png.read_bytes()
            assert [f.role for f in await db.blobs.job_files(vary.id)] == ["input"]
            assert spec["skip_steps"] == 4 and spec["steps"] == 8 and vary.parent_job_id == job_id

            # The new-seed job runs and is delivered with its own buttons.
            await db.jobs.cancel(same.id)
            await finish(db, tmp_path, new.id, (10, 200, 30))
            await delivered(db, new.id)
            second = await fake.wait_for_message(fake.channel.id, lambda m: has_png(m) and new.id in m.content)
            assert f"disco:new:{new.id}" in second.custom_ids

            _, recipe = await click(fake, result.id, f"disco:recipe:{job_id}")
            assert "/disco prompt:a lighthouse" in recipe.content and "steps=8" in recipe.content
    run(body, tmp_path)


def test_delete_is_refused_to_strangers_and_done_for_the_requester(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        stranger = FakeMember(FakeUser(STRANGER_ID, "stranger"))
        fake.guild.members.append(stranger)
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            await delivered(db, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            _, refusal = await click(fake, result.id, f"disco:delete:{job_id}", user=stranger)
            assert refusal.content.startswith("**Not deleted:**") and "Manage Messages" in refusal.content
            assert "delete_own_results" in refusal.content and not fake.message(result.id).deleted

            _, done = await click(fake, result.id, f"disco:delete:{job_id}", user=fake.member)
            assert done.content.startswith("Deleted") and fake.message(result.id).deleted
    run(body, tmp_path)


def test_cancel_button_on_the_progress_message(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        stranger = FakeMember(FakeUser(STRANGER_ID, "stranger"))
        fake.guild.members.append(stranger)
        job_id = await queue_job(db, fake)
        async with fake.run_client(make_bot(tmp_path, fake)):
            progress = await fake.wait_for_message(fake.channel.id, lambda m: job_id in m.content, timeout=15)
            for _ in range(100):  # the poster records the message just after sending it
                if (await db.jobs.get(job_id)).progress_message_id == str(progress.id):
                    break
                await asyncio.sleep(0.05)
        assert fake.message(progress.id).custom_ids == [f"disco:cancel:{job_id}"]
        async with fake.run_client(make_bot(tmp_path, fake)):
            _, refusal = await click(fake, progress.id, f"disco:cancel:{job_id}", user=stranger)
            assert refusal.content.startswith("**Not cancelled:**") and "cancel_own_jobs" in refusal.content
            assert (await db.jobs.get(job_id)).state == "queued"

            _, done = await click(fake, progress.id, f"disco:cancel:{job_id}")
            assert "Cancelled" in done.content
            assert (await db.jobs.get(job_id)).state == "cancelled"
            notice = await fake.wait_for_message(fake.channel.id, lambda m: "was cancelled" in m.content, timeout=15)
            assert f"<@{fake.member.id}>" in notice.content
            await fake.wait_for(lambda: fake.message(progress.id).content.startswith("**Cancelled**"), 15)
            assert not fake.message(progress.id).custom_ids  # ⏹ removed by the final edit
    run(body, tmp_path)


def test_old_progress_message_is_replaced_not_edited(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        job = await db.leases.claim(OWNER)
        await db.leases.progress(job_id, job.attempt, OWNER, step=1, total=8, seconds_per_step=0.5)
        config = bot_config(tmp_path, fake, progress_message_max_age=1.0)
        async with fake.run_client(DiscoBot(config, guild_ready_timeout=0.1)):
            first = await fake.wait_for_message(fake.channel.id, lambda m: "step 1/8" in m.content)
            await fake.wait_for(lambda: fake.message(first.id).deleted, timeout=5)
            live = [m for m in fake.messages_in(fake.channel.id) if job_id in m.content]
            assert len(live) == 1 and live[0].id != first.id
            assert live[0].custom_ids == [f"disco:cancel:{job_id}"]
            await fake.wait_for(lambda: fake.requests_to("DELETE", f"/channels/{fake.channel.id}/messages/{first.id}"))
            stored = (await db.jobs.get(job_id)).progress_message_id
            assert stored is not None and int(stored) >= live[0].id
            # The replacement keeps showing progress.
            await db.leases.progress(job_id, job.attempt, OWNER, step=5, total=8, seconds_per_step=0.5)
            await fake.wait_for_message(fake.channel.id, lambda m: "step 5/8" in m.content and not m.deleted)
    run(body, tmp_path)


CROSS_SERVER_BUTTONS = ("new:{j}", "same:{j}", "remix:{j}", "recipe:{j}", "delete:{j}", "cancel:{j}",
                        "vary:{j}:0", "animate:{j}:0", "gobig:{j}:0", "cell:{j}:1", "cellopen:{j}:1",
                        "describeuse:{j}", "show:{j}")


def test_no_button_acts_on_a_job_of_another_server(tmp_path):
    """Buttons or a menu carrying another server's job id (a copied message, a crafted client)
    are refused with the rule, before any file, setting or quota of that job is touched."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake, guild_id=fake.guild.id + 1)
        await finish(db, tmp_path, job_id)
        ids = [f"disco:{button.format(j=job_id)}" for button in CROSS_SERVER_BUTTONS]
        rows = [{"type": 1, "components": [{"type": 2, "style": 2, "label": str(n), "custom_id": custom_id}
                                           for n, custom_id in enumerate(ids[start:start + 5], start)]}
                for start in range(0, len(ids), 5)]
        rows.append({"type": 1, "components": [{"type": 3, "custom_id": f"disco:image:{job_id}",
                                                "options": [{"label": "Image 1", "value": "0"}]}]})
        copied = await fake.message_ops.create(fake.channel.id, {"content": "copied", "components": rows}, [])
        jobs_before = len(await db.jobs.list())
        async with fake.run_client(make_bot(tmp_path, fake)):
            for custom_id in ids + [f"disco:image:{job_id}"]:
                select = custom_id.startswith("disco:image:")
                rec = await fake.click(copied.id, custom_id, **({"component_type": 3, "values": ["0"]}
                                                                if select else {}))
                refusal = await answered(fake, rec)
                text = refusal.content.replace("\\", "")
                assert refusal.ephemeral and "belongs to another server (rule: same_server)" in text, (custom_id, text)
                assert not refusal.files, custom_id
            for command, options in (("job show", {"id": job_id}), ("rerun", {"job": job_id})):
                refusal = await last_answer(fake, await fake.slash(command, options))
                assert "rule: same_server" in refusal.content.replace("\\", ""), (command, refusal.content)
        assert len(await db.jobs.list()) == jobs_before
        assert (await db.jobs.get(job_id)).state == "succeeded" and not fake.message(copied.id).deleted
    run(body, tmp_path)
