"""The poster's promises when Discord or the bot misbehaves: one progress message even when the
bot dies between posting it and saving its id, and a result Discord keeps refusing is paused
between tries and finally replaced by a notice, so the requester always hears of the job."""
from __future__ import annotations

import asyncio

import storage.jobs
from storage import Database
from tests.support.bot import OWNER, delivered, make_bot, queue_job, run, write_png
from tests.support.fakediscord import FakeDiscord


def test_one_progress_message_when_the_bot_dies_before_saving_its_id(tmp_path, monkeypatch):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        reached = asyncio.Event()
        real = storage.jobs.Jobs.set_progress_message

        async def crash_before_saving(self, job_id, message_id):
            reached.set()
            await asyncio.Event().wait()  # never returns; closing the bot cancels it
        monkeypatch.setattr(storage.jobs.Jobs, "set_progress_message", crash_before_saving)
        async with fake.run_client(make_bot(tmp_path, fake)):
            await asyncio.wait_for(reached.wait(), 10)
        assert (await db.jobs.get(job_id)).progress_message_id is None
        monkeypatch.setattr(storage.jobs.Jobs, "set_progress_message", real)

        async with fake.run_client(make_bot(tmp_path, fake)):
            await fake.wait_for(lambda: len(fake.requests_to("POST", f"/channels/{fake.channel.id}/messages")) >= 2)
            await asyncio.sleep(0.3)
            shown = [m for m in fake.messages_in(fake.channel.id) if job_id in m.content]
            assert len(shown) == 1, [m.content for m in shown]
            assert (await db.jobs.get(job_id)).progress_message_id == str(shown[0].id)
    run(body, tmp_path)


def test_a_result_discord_keeps_refusing_becomes_a_notice_after_paused_retries(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        job = await db.leases.claim(OWNER)
        png = write_png(tmp_path / "jobs" / job_id / "out_0.png")
        await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[str(png)], gpu_seconds=1.0)
        path = f"/channels/{fake.channel.id}/messages"
        fake.fail_next("POST", path, 400, code=40005, message="Request entity too large", times=3)
        async with fake.run_client(make_bot(tmp_path, fake)):
            notice = await fake.wait_for_message(fake.channel.id, lambda m: "refused its result" in m.content,
                                                 timeout=20)
            job = await delivered(db, job_id)
            assert f"<@{fake.member.id}>" in notice.content and "Request entity too large" in notice.content
            assert job.result_message_ids == (str(notice.id),)
            posts = [r for r in fake.requests_to("POST", path) if r.forced]
            assert len(posts) == 3
            # The tries were paused, growing: poll 0.1 s → 0.2 s, then 0.4 s before the third.
            gaps = [b.time - a.time for a, b in zip(posts, posts[1:])]
            assert gaps[0] >= 0.15 and gaps[1] >= 0.35, gaps
    run(body, tmp_path)


def test_a_slow_delivery_does_not_hold_up_progress_messages(tmp_path, monkeypatch):
    import threading

    import bot.poster

    release = threading.Event()
    real = bot.poster.Poster._result_files

    def slow_result_files(job, limit):  # e.g. a big upload being prepared
        release.wait(20)
        return real(job, limit)
    monkeypatch.setattr(bot.poster.Poster, "_result_files", staticmethod(slow_result_files))

    async def body(fake: FakeDiscord, db: Database) -> None:
        done_id = await queue_job(db, fake)
        done = await db.leases.claim(OWNER)
        png = write_png(tmp_path / "jobs" / done_id / "out_0.png")
        await db.leases.complete(done_id, done.attempt, OWNER, artifacts=[str(png)], gpu_seconds=1.0)
        running_id = await queue_job(db, fake)
        running = await db.leases.claim(OWNER)
        await db.leases.progress(running_id, running.attempt, OWNER, step=1, total=8)
        try:
            async with fake.run_client(make_bot(tmp_path, fake)):
                message = await fake.wait_for_message(fake.channel.id, lambda m: running_id in m.content
                                                      and "step 1/8" in m.content)
                await db.leases.progress(running_id, running.attempt, OWNER, step=5, total=8)
                await fake.wait_for(lambda: "step 5/8" in fake.message(message.id).content, 10)
                assert (await db.jobs.get(done_id)).delivery_state == "sending"  # still preparing
                release.set()
                await delivered(db, done_id, timeout=10)
        finally:
            release.set()
    run(body, tmp_path)
