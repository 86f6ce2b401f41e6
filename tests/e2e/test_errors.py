"""The one error path (bot/tree.py, bot/answers.py) end to end: the real DiscoBot against the
loopback Discord, so what a user sees is what Discord was sent.

A command or button that raises something unexpected (the storage or handler replaced here by one
that raises) answers only the caller with the generic line and the interaction id as the
reference, and logs the traceback once; a refusal answers with its rule and fix and logs nothing.
A public "thinking…" message is deleted first, since the follow-up that fills it in is public.
"""
from __future__ import annotations

import io
import logging

from PIL import Image

import bot.views
from commands.errors import CommandError
from storage import Database
from tests.support.bot import click, make_bot, queue_job, run
from tests.support.fakediscord import FakeDiscord, FakeFile

BROKEN = "the disk is on fire at /srv/secret"  # must never reach a user


def broken(*args, **kwargs):
    raise RuntimeError(BROKEN)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 20, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def error_logs(caplog, reference: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR and str(reference) in r.getMessage()]


async def private_followup(fake: FakeDiscord, rec):
    """The answer after a public defer: the thinking message gone, one ephemeral follow-up."""
    await fake.wait_for(lambda: rec.followup_ids, what="a follow-up")
    answer = fake.message(rec.followup_ids[-1])
    assert answer.ephemeral, answer.content
    assert fake.original_response(rec.id) is None or fake.original_response(rec.id).deleted
    return answer


def test_commands_answer_refusals_and_failures_privately_and_log_failures_once(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO)

    async def body(fake: FakeDiscord, db: Database) -> None:
        client = make_bot(tmp_path, fake)
        async with fake.run_client(client):
            refused = await fake.slash("rerun")  # a member with no jobs: a refusal after a public defer
            answer = await private_followup(fake, refused)
            assert answer.content.startswith("**Not queued:** you have no jobs in this server yet")
            assert not error_logs(caplog, refused.id)

            monkeypatch.setattr(client.db.jobs, "enqueue", broken)  # after the image is saved
            init = FakeFile("init.png", png(), "image/png", width=64, height=64)
            failed = await fake.slash("disco", {"prompt": "a lighthouse", "init_image": init})
            answer = await private_followup(fake, failed)
            assert answer.content == (f"**Not queued:** something went wrong on our side (reference "
                                      f"`{failed.id}`); try again, and tell the server admins if it keeps "
                                      f"happening")
            # Nothing queued: no job names the stored image, so the sweep removes it.
            assert (await client.db.blobs.sweep(retention_s=0, grace_s=-1)).blobs == 1

            monkeypatch.setattr(client.db.quotas, "status", broken)  # /disco-info answers without a defer
            info = await fake.slash("disco-info")
            callback = await fake.wait_for_callback(info)
            assert callback.type == 4 and fake.original_response(info.id).ephemeral
            assert fake.original_response(info.id).content == (
                f"**Failed:** something went wrong on our side (reference `{info.id}`); try again")
        for rec in (failed, info):
            (record,) = error_logs(caplog, rec.id)
            assert record.name == "disco.bot.answers" and BROKEN in str(record.exc_info[1])
        assert BROKEN not in "".join(m.content for m in fake.messages.values())
        assert not [r for r in caplog.records if r.name.startswith("discord") and r.levelno >= logging.ERROR]
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_a_buttons_refusal_and_failure_go_the_same_way(tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.INFO)

    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        async with fake.run_client(make_bot(tmp_path, fake)):
            progress = await fake.wait_for_message(fake.channel.id, lambda m: job_id in m.content)
            custom_id = f"disco:cancel:{job_id}"

            monkeypatch.setattr(bot.views, "cancel_job", broken)
            failed, answer = await click(fake, progress.id, custom_id)
            assert answer.content == (f"**Not done:** something went wrong on our side (reference "
                                      f"`{failed.id}`); try again, and tell the server admins if it keeps "
                                      f"happening")

            async def refuse(*args):
                raise CommandError("job 7 is not yours (rule: cancel_own_jobs); ask a moderator", "job")
            monkeypatch.setattr(bot.views, "cancel_job", refuse)
            refused, answer = await click(fake, progress.id, custom_id)
            assert answer.content == "**Not done:** job 7 is not yours (rule: cancel\\_own\\_jobs); ask a moderator"
        (record,) = error_logs(caplog, failed.id)
        assert record.name == "disco.bot.answers" and custom_id in record.getMessage()
        assert not error_logs(caplog, refused.id)
        assert not [r for r in caplog.records if r.name.startswith("discord") and r.levelno >= logging.ERROR]
        assert (await db.jobs.get(job_id)).state == "queued"
    run(body, tmp_path)
