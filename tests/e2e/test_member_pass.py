"""A member's second pass over jobs that outlive their channel or the bot: the real DiscoBot
against the loopback Discord, jobs driven through storage's engine API (claim, progress,
complete), as the engine does it.

A result whose channel was deleted is given up, not lost: /job show and /history say so in
words a member understands and name the way to get it (📤 Show, which posts it where it is
clicked)."""
from __future__ import annotations

import asyncio

from storage import Database
from tests.support.bot import answered, click, finish, has_png, make_bot, queue_job, run
from tests.support.fakediscord import FakeDiscord


async def _given_up(db: Database, job_id: str, timeout: float = 15.0):
    for _ in range(int(timeout / 0.05)):
        job = await db.jobs.get(job_id)
        if job.delivery_state == "abandoned":
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id}'s delivery is {job.delivery_state}, not given up")


def test_a_result_whose_channel_was_deleted_is_explained_and_shown_again(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        await finish(db, tmp_path, job_id)
        fake.guild.channels.remove(fake.channel)  # deleted while the bot was away
        async with fake.run_client(make_bot(tmp_path, fake)):
            await _given_up(db, job_id)
        fake.guild.channels.append(fake.channel)  # the member asks in a channel that exists
        async with fake.run_client(make_bot(tmp_path, fake)):
            shown = await answered(fake, await fake.slash("job show", {"id": job_id}))
            assert "abandoned" not in shown.content, shown.content
            assert "result: not posted" in shown.content and "channel" in shown.content, shown.content
            assert "/history" in shown.content and "📤 Show" in shown.content, shown.content
            page = await answered(fake, await fake.slash("history"))
            assert "not posted" in page.embeds[0]["description"], page.embeds[0]
            _, posted = await click(fake, page.id, f"disco:show:{job_id}")
            assert posted.content.startswith(f"Posted job `{job_id}` here"), posted.content
            assert any(has_png(m) for m in fake.messages_in(fake.channel.id))
    run(body, tmp_path)
