"""/history paging and "show here", /disco-settings notify and the DM fallback, and the refusals
of the remix form and /rerun's prompt: the real DiscoBot against the loopback Discord, jobs
driven through storage's engine API (the render path is in test_image_actions.py).

Every click on a page happens on a bot started after the one that showed it.
"""
from __future__ import annotations

import asyncio
import json

import pytest

from engine.spec.render import SCHEMA_VERSION, RenderSpec
from storage import Database, JobRequest
from tests.support.bot import (
    FAST_DEFAULTS,
    answered,
    click,
    delivered,
    finish,
    form_values,
    has_png,
    job_id_in,
    make_bot,
    queue_job,
    run,
)
from tests.support.fakediscord import FakeDiscord, FakeMember, FakeUser

STRANGER_ID = 990_000_000_000_000_002


def pinged(message) -> list[str]:
    """Who a message pings (Discord's allowed_mentions: listed users, or every mentioned user)."""
    mentions = message.allowed_mentions or {}
    return list(mentions.get("users", [])) + (["every mentioned user"] if "users" in mentions.get("parse", []) else [])


async def finished_jobs(db: Database, fake: FakeDiscord, tmp_path, count: int) -> list[str]:
    await db.guilds.set_limits(fake.guild.id, max_queued_per_user=count)
    ids = [await queue_job(db, fake, seed=7 + k) for k in range(count)]
    for k, job_id in enumerate(ids):
        await finish(db, tmp_path, job_id, (30 * k, 90, 200 - 20 * k))
    return ids


def test_history_pages_newest_first_and_shows_a_job_again_after_a_restart(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        stranger = FakeMember(FakeUser(STRANGER_ID, "stranger"))
        fake.guild.members.append(stranger)
        ids = await finished_jobs(db, fake, tmp_path, 7)
        async with fake.run_client(make_bot(tmp_path, fake)):
            for job_id in ids:
                await delivered(db, job_id)
            page = await answered(fake, await fake.slash("history"))
        assert page.ephemeral and "1–5" in page.content
        assert [e["title"] for e in page.embeds] == [f"{n}. succeeded · {job_id}" for n, job_id in
                                                     enumerate(ids[::-1][:5], start=1)]
        assert sorted(page.files) == sorted(f"thumb_{job_id}.jpg" for job_id in ids[2:])
        assert page.custom_ids == [f"disco:show:{job_id}" for job_id in ids[::-1][:5]] + ["disco:history:5"]

        async with fake.run_client(make_bot(tmp_path, fake)):  # nothing in memory
            older = await fake.click(page.id, "disco:history:5")
            await fake.wait_for(lambda: fake.callbacks_for(older.id) and "6–7" in fake.message(page.id).content, 15)
            assert fake.callbacks_for(older.id)[0].type == 6  # the page itself is updated
            turned = fake.message(page.id)
            assert [e["title"] for e in turned.embeds] == [f"6. succeeded · {ids[1]}", f"7. succeeded · {ids[0]}"]
            assert turned.custom_ids == [f"disco:show:{ids[1]}", f"disco:show:{ids[0]}", "disco:history:0"]
            assert sorted(turned.files) == sorted(f"thumb_{job_id}.jpg" for job_id in ids[:2])

            _, refused = await click(fake, page.id, f"disco:show:{ids[0]}", user=stranger)
            assert "show_own_jobs" in refused.content.replace("\\_", "_")

            # Where the admins allow renders only in another channel, a repost is refused here.
            renders = fake.guild.channels[1].id
            await db.guilds.allow_channel(fake.guild.id, renders)
            _, elsewhere = await click(fake, page.id, f"disco:show:{ids[0]}")
            assert "allowed_channels" in elsewhere.content.replace("\\_", "_") and f"<#{renders}>" in elsewhere.content
            await db.guilds.disallow_channel(fake.guild.id, renders)

            _, shown = await click(fake, page.id, f"disco:show:{ids[0]}")
            repost = fake.message(int(shown.content.rsplit("/", 1)[1]))
            assert has_png(repost) and f"disco:new:{ids[0]}" in repost.custom_ids
            assert pinged(repost) == []  # a repost pings nobody

            swept = await db.blobs.sweep(0.0, grace_s=0.0)  # the server's retention removed the files
            assert swept.blobs >= len((await db.jobs.get(ids[1])).artifacts)
            _, gone = await click(fake, page.id, f"disco:show:{ids[1]}")
            assert "no longer kept" in gone.content and f"/rerun job:{ids[1]}" in gone.content
    run(body, tmp_path)


def test_history_when_there_is_nothing(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            page = await answered(fake, await fake.slash("history"))
            assert "no jobs in this server yet" in page.content and not page.custom_ids
    run(body, tmp_path)


@pytest.mark.parametrize("refusal", ["deleted_channel", "missing_permission"])
def test_a_dm_carries_the_result_when_the_channel_refuses_it(tmp_path, refusal):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.users.set_notify(fake.member.id, "dm")
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        if refusal == "deleted_channel":
            fake.guild.channels.remove(fake.channel)
        else:
            fake.fail_next("POST", f"/channels/{fake.guild.channels[0].id}/messages", 403, code=50013,
                           message="Missing Permissions")
        async with fake.run_client(make_bot(tmp_path, fake)):
            dm = fake.dm_channel(fake.member.user)
            result = await fake.wait_for_message(dm.id, has_png, timeout=15)
            job = await delivered(db, job_id)
            assert "could not post the result" in result.content and "notify:dm" in result.content
            assert job.result_message_ids == (str(result.id),) and not result.custom_ids
            assert job.result_channel_id == str(dm.id)
            assert fake.requests_to("POST", "/users/@me/channels")
            if refusal == "missing_permission":  # /job show links the DM, not the channel
                shown = await answered(fake, await fake.slash("job show", {"id": job_id}))
                assert f"https://discord.com/channels/@me/{dm.id}/{result.id}" in shown.content
                assert f"/{fake.guild.id}/" not in shown.content.split("result:")[1]
                assert "DMs: the channel refused it" in shown.content
    run(body, tmp_path)


def test_without_dms_a_refused_result_is_given_up_and_closed_dms_are_tried_once(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        quiet = await queue_job(db, fake)  # the member keeps notify:channel
        await finish(db, tmp_path, quiet)
        await db.users.set_notify(fake.admin.id, "dm")
        closed = (await db.jobs.enqueue(_request(fake, fake.admin.id))).id
        await finish(db, tmp_path, closed)
        fake.fail_next("POST", f"/channels/{fake.channel.id}/messages", 403, code=50013,
                       message="Missing Permissions", times=2)
        dm = fake.dm_channel(fake.admin.user)
        fake.fail_next("POST", f"/channels/{dm.id}/messages", 403, code=50007,
                       message="Cannot send messages to this user")
        async with fake.run_client(make_bot(tmp_path, fake)):
            for job_id in (quiet, closed):
                assert (await settled(db, job_id)).delivery_state == "abandoned"
            assert len(fake.requests_to("POST", f"/channels/{dm.id}/messages")) == 1  # tried once
            assert not fake.messages_in(fake.dm_channel(fake.member.user).id)  # notify:channel: no DM
    run(body, tmp_path)


async def settled(db: Database, job_id: str, timeout: float = 15.0):
    """The job once its delivery is over, posted or given up."""
    for _ in range(int(timeout / 0.05)):
        job = await db.jobs.get(job_id)
        if job.delivery_state in ("posted", "abandoned"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id}'s delivery is still {job.delivery_state}")


def _request(fake: FakeDiscord, user_id: int) -> JobRequest:
    spec = RenderSpec.from_dict({**FAST_DEFAULTS, "text_prompts": "a harbour", "width": 64, "height": 64,
                                 "steps": 8, "seed": 9})
    return JobRequest(guild_id=fake.guild.id, channel_id=fake.channel.id, user_id=user_id, kind="still",
                      spec_json=spec.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64,
                      height=64, steps=8, seed=9)


def test_notify_off_posts_without_a_ping_and_unknown_choices_are_refused(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            shown = await answered(fake, await fake.slash("disco-settings"))
            assert "notify: **channel**" in shown.content
            refused = await answered(fake, await fake.slash("disco-settings", {"notify": "loud"}))
            assert refused.ephemeral and "notify" in refused.content and "channel, dm, off" in refused.content
            assert await db.users.notify(fake.member.id) == "channel"
            await answered(fake, await fake.slash("disco-settings", {"notify": "off"}))
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            assert pinged(result) == [] and f"<@{fake.member.id}>" in result.content
    run(body, tmp_path)


@pytest.mark.parametrize("field, text, rule", [
    ("steps", "many", "remix_field_number"),
    ("steps", "5000", "steps"),
    ("size", "64 by 64", "remix_field_size"),
    ("seed", "-1", "seed"),
    ("prompt", "a gory lighthouse", "banned_words"),
])
def test_the_remix_form_is_refused_like_a_typed_option(tmp_path, field, text, rule):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.add_banned_word(fake.guild.id, "gory")
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            await delivered(db, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            opened = await fake.click(result.id, f"disco:remix:{job_id}")
            assert (await fake.wait_for_callback(opened)).type == 9
            shown = form_values(opened.modal)
        async with fake.run_client(make_bot(tmp_path, fake)):  # the form was open across a restart
            submit = await fake.submit_modal(opened, {**shown, field: text})
            answer = await fake.wait_for_message(fake.channel.id, lambda m: m.interaction_id == submit.id
                                                 and m.ephemeral and not m.loading, timeout=15)
            said = answer.content.replace("\\_", "_")
            assert said.startswith("**Not queued:**") and rule in said, said
            assert len(await db.jobs.list()) == 1
    run(body, tmp_path)


def test_a_remix_form_opened_before_a_restart_still_queues_its_job(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            await delivered(db, job_id)
            opened = await fake.click(result.id, f"disco:remix:{job_id}")
            assert (await fake.wait_for_callback(opened)).type == 9
            shown = form_values(opened.modal)
        async with fake.run_client(make_bot(tmp_path, fake)):  # the form was in the old bot's memory
            submit = await fake.submit_modal(opened, {**shown, "prompt": "a lighthouse at dawn", "steps": "7"})
            echo = await answered(fake, submit)
            assert echo.content.startswith("**Queued**") and not echo.ephemeral, echo.content
            child = await db.jobs.get(job_id_in(echo.content))
            spec = json.loads(child.spec_json)
            assert (child.parent_job_id, child.parent_action, spec["steps"]) == (job_id, "remix", 7)
            assert spec["text_prompts"][0]["text"] == "a lighthouse at dawn"
            forged = await fake.submit_modal(f"disco:remixform:{'0' * 26}:1", {"prompt": "x"})
            refused = await fake.wait_for_message(fake.channel.id, lambda m: m.interaction_id == forged.id
                                                  and m.ephemeral and not m.loading, timeout=15)
            assert refused.content.startswith("**Not queued:**") and "0" * 26 in refused.content
            assert len(await db.jobs.list()) == 2
    run(body, tmp_path)


def test_rerun_takes_a_new_prompt_within_its_bound_and_banned_words(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.add_banned_word(fake.guild.id, "gory")
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            echo = await answered(fake, await fake.slash("rerun", {"job": job_id, "prompt": "a castle:2"}))
            new = await db.jobs.get(job_id_in(echo.content))
            prompts = json.loads(new.spec_json)["text_prompts"]
            assert prompts == [{"text": "a castle", "weight": 2.0}] and new.parent_job_id == job_id
            shown = await answered(fake, await fake.slash("job show", {"id": new.id}))
            assert f"re-run of `{job_id}`" in shown.content and new.parent_action == "rerun"
            for prompt, rule in (("a gory castle", "banned_words"), ("castle " * 300, "at most 2000")):
                rec = await fake.slash("rerun", {"job": job_id, "prompt": prompt})
                refused = await fake.wait_for_message(fake.channel.id, lambda m: m.interaction_id == rec.id
                                                      and m.ephemeral and not m.loading, timeout=15)
                assert fake.message(rec.original_message_id).deleted  # the public "thinking…" is gone
                assert rule in refused.content.replace("\\_", "_"), refused.content
            assert len(await db.jobs.list()) == 2
    run(body, tmp_path)
