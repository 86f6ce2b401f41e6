"""`/rerun`, `/queue`, `/cancel`, `/job show` (bot/cogs/jobs.py) end to end, and delivery after
the interaction token has expired.

The `/rerun` test renders twice with the real `test-tiny` engine (supervised by the bot) and
compares the PNG bytes; the others drive jobs through storage's engine API.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from storage import Database
from tests.support.bot import OWNER, delivered, has_png, make_bot, queue_job, run, write_png
from tests.support.fakediscord import SECOND_CHANNEL_ID, FakeDiscord


async def ephemeral_answer(fake: FakeDiscord, rec):
    """The ephemeral answer of a deferred command (the first follow-up fills the placeholder)."""
    await fake.wait_for(lambda: fake.original_response(rec.id) is not None
                        and not fake.original_response(rec.id).loading, 15, "for the answer")
    assert fake.callbacks_for(rec.id)[0].delay < 3.0
    message = fake.original_response(rec.id)
    assert message.ephemeral
    return message


# 82 tokens: CLIP reads the first 75 (77 with its start and end marks)
LONG_PROMPT = "a lighthouse in a storm, " + "dramatic light, " * 24 + "trending on artstation"


def png_of(message) -> bytes:
    return next(data for name, data in message.files.items() if name.endswith(".png") and name != "preview.png")


def test_rerun_with_the_same_seed_paints_the_same_bytes(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake, spawn_engine=True)):
            # 4 steps: the same seed must paint the same bytes however few there are.
            rec = await fake.slash("disco", {"prompt": LONG_PROMPT, "steps": 4, "width": 64, "height": 64})
            await fake.wait_for(lambda: rec.followup_ids)
            first_id = re.search(r"`([0-9A-Z]{26})`", fake.followups_for(rec.id)[0].content).group(1)
            first = await delivered(db, first_id, timeout=150)
            assert first.state == "succeeded", first.error_message
            # The engine's note reaches the user: under the result, and in /job show.
            unread = "CLIP reads 77 tokens of a prompt; it did not read the end of the prompt: “…dramatic light"
            assert f"• {unread}" in fake.message(int(first.result_message_ids[0])).content
            shown = await ephemeral_answer(fake, await fake.slash("job show", {"id": first_id}))
            assert f"note: {unread}" in shown.content

            again = await fake.slash("rerun", {"seed": first.seed})  # default: my last job here
            await fake.wait_for(lambda: again.followup_ids)
            echo = fake.followups_for(again.id)[0]
            assert echo.content.startswith("**Queued**") and not echo.ephemeral
            assert "waits for an engine" not in echo.content  # the engine that rendered the first is up
            second_id = re.search(r"`([0-9A-Z]{26})`", echo.content).group(1)
            second = await delivered(db, second_id, timeout=120)
            assert second.state == "succeeded" and second.parent_job_id == first_id
            assert second.spec_json == first.spec_json
            old, new = (fake.message(int(j.result_message_ids[0])) for j in (first, second))
            assert png_of(old) == png_of(new)

            changed = await fake.slash("rerun", {"job": first_id, "steps": 6, "settings": "cutn_batches=2"})
            await fake.wait_for(lambda: changed.followup_ids)
            third = (await db.jobs.list(limit=1))[0]
            assert third.parent_job_id == first_id and third.steps == 6 and third.seed != first.seed
            assert json.loads(third.spec_json)["cutn_batches"] == 2
    run(body, tmp_path, timeout=300)


def test_queue_cancel_and_job_show(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        running_id = await queue_job(db, fake)
        waiting_id = await queue_job(db, fake, seed=8)
        job = await db.leases.claim(OWNER)
        assert job.id == running_id
        await db.leases.progress(running_id, job.attempt, OWNER, step=3, total=8, seconds_per_step=0.5)
        async with fake.run_client(make_bot(tmp_path, fake)):
            queue = await ephemeral_answer(fake, await fake.slash("queue"))
            assert "1 waiting, 1 rendering" in queue.content
            assert running_id in queue.content and "rendering step 3/8" in queue.content
            assert waiting_id in queue.content and "next in line" in queue.content and "<t:" in queue.content
            assert queue.custom_ids == [f"disco:cancel:{running_id}", f"disco:cancel:{waiting_id}"]
            assert "no queued or running" in (await ephemeral_answer(fake, await fake.slash(
                "queue", user=fake.admin))).content

            # The ⏹ buttons of the ephemeral /queue answer work like the progress message's.
            clicked = await ephemeral_answer(fake, await fake.click(queue.id, f"disco:cancel:{waiting_id}"))
            assert clicked.content == f"Cancelled job `{waiting_id}` before it started."
            again = await ephemeral_answer(fake, await fake.slash("cancel", {"job": waiting_id}))
            assert again.content == f"Job `{waiting_id}` is already cancelled; nothing to cancel."
            cancelled = await ephemeral_answer(fake, await fake.slash("job show", {"id": waiting_id}))
            assert "notice: " in cancelled.content and "result:" not in cancelled.content  # no result

            # An id pasted with the message text around it (copied from the echo) is found.
            shown = await ephemeral_answer(fake, await fake.slash("job show", {"id": f"job `{running_id}`"},
                                                                  channel_id=SECOND_CHANNEL_ID))
            assert f"`{running_id}` · running" in shown.content and "step 3/8" in shown.content
            assert "seed `7`" in shown.content

            newest = await ephemeral_answer(fake, await fake.slash("cancel"))  # default: my newest active job
            assert newest.content.startswith(f"Cancelling job `{running_id}`")
            assert (await db.jobs.get(running_id)).cancel_requested
            await db.leases.acknowledge_cancel(running_id, job.attempt, OWNER)  # the engine stops
            nothing = await ephemeral_answer(fake, await fake.slash("cancel"))
            assert nothing.content.startswith("**Not done:**") and "/queue" in nothing.content
    run(body, tmp_path)


def test_cancel_of_someone_elses_job_needs_manage_messages(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)  # fake.member's job
        async with fake.run_client(make_bot(tmp_path, fake)):
            outsider = fake.guild.member(fake.admin.user.id)
            # The admin role has Manage Messages; without it (permissions=0) the rule applies.
            refused = await ephemeral_answer(fake, await fake.slash("cancel", {"job": job_id}, user=outsider,
                                                                    permissions=0))
            assert refused.content.startswith("**Not cancelled:**") and "Manage Messages" in refused.content
            assert (await db.jobs.get(job_id)).state == "queued"
            done = await ephemeral_answer(fake, await fake.slash("cancel", {"job": job_id}, user=outsider))
            assert "Cancelled" in done.content and (await db.jobs.get(job_id)).state == "cancelled"
            missing = await ephemeral_answer(fake, await fake.slash("job show", {"id": "0" * 26}))
            assert missing.content.startswith("**Not done:**") and "check the id" in missing.content
    run(body, tmp_path)


def test_the_job_autocomplete_finds_a_job_by_a_word_of_its_prompt_or_its_id(tmp_path):
    """A member remembers "harbour", not the id: typing either narrows /rerun's, /cancel's and
    /job show's choices (each shows the id, state and prompt)."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            ids = {}
            for prompt in ("a red lighthouse", "a quiet Harbour at dawn"):
                rec = await fake.slash("disco", {"prompt": prompt, "steps": 10, "width": 64, "height": 64})
                await fake.wait_for(lambda: rec.followup_ids)
                ids[prompt] = re.search(r"`([0-9A-Z]{26})`", fake.followups_for(rec.id)[0].content).group(1)

            async def choices(command: str, option: str, typed: str) -> list[str]:
                rec = await fake.autocomplete(command, {option: typed}, option)
                return [choice["value"] for choice in (await fake.wait_for_callback(rec)).data["choices"]]

            harbour, lighthouse = ids["a quiet Harbour at dawn"], ids["a red lighthouse"]
            assert await choices("rerun", "job", "harbour") == [harbour]
            assert await choices("cancel", "job", " LIGHT") == [lighthouse]
            assert await choices("job show", "id", harbour[-6:].lower()) == [harbour]
            assert await choices("rerun", "job", "") == [harbour, lighthouse]  # newest first
            assert await choices("rerun", "job", "castle") == []
    run(body, tmp_path)


def test_result_delivered_after_the_interaction_token_expired_and_after_a_restart(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("disco", {"prompt": "a lighthouse", "steps": 8, "width": 64, "height": 64})
            await fake.wait_for(lambda: rec.followup_ids)
            job_id = re.search(r"`([0-9A-Z]{26})`", fake.followups_for(rec.id)[0].content).group(1)
        fake.advance_clock(16 * 60)  # the /disco interaction token is dead now
        job = await db.leases.claim(OWNER)
        png = write_png(Path(tmp_path) / "jobs" / job_id / "out_0.png")
        await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[str(png)], gpu_seconds=1.0)
        async with fake.run_client(make_bot(tmp_path, fake)):
            result = await fake.wait_for_message(fake.channel.id, has_png)
            done = await delivered(db, job_id)
            assert done.result_message_ids == (str(result.id),) and result.interaction_id is None
            assert png_of(result) == png.read_bytes()
            shown = await ephemeral_answer(fake, await fake.slash("job show", {"id": job_id.lower()}))
            link = f"https://discord.com/channels/{fake.guild.id}/{fake.channel.id}/{result.id}"
            assert "succeeded" in shown.content and f"result: {link}" in shown.content
        assert not [r for r in fake.requests if r.status in (401, 404) and "/webhooks/" in r.path]
    run(body, tmp_path)
