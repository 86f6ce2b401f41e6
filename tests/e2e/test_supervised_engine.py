"""The bot end to end: the real discord.py client (DiscoBot) against the loopback Discord
(tests/support/fakediscord), the real storage on a temporary SQLite file, and, for the full path, a real
`disco engine` child started by the bot's supervisor on the `test-tiny` models.

Each test runs its own event loop via asyncio.run. Tests that are about the poster alone drive
the job through storage's engine API (claim/progress/complete) instead of a real engine, so
they are fast and their timing is in the test's hands.
"""
from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from PIL import Image

import storage.jobs
from engine.media.still_formats import FORMAT_LIST
from storage import Database
from tests.support.bot import OWNER, delivered, has_png, make_bot, queue_job, run, write_png
from tests.support.fakediscord import FakeDiscord, FakeFile


def test_the_supervisor_restarts_a_killed_engine_which_resumes_its_job_then_renders_a_disco(tmp_path):
    """One bot and supervised engine for both (a second would cost an engine's start-up): a
    killed engine's job is requeued and finished by the restarted engine, and then /disco
    renders and delivers through that engine."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        # The supervisor names its first engine's lease owner like this: pretend that engine
        # had claimed the job when it was killed.
        first_owner = f"engine:{socket.gethostname()}:{os.getpid()}:1"
        killed_job = await queue_job(db, fake)
        await db.leases.claim(first_owner, lease_seconds=600)
        bot = make_bot(tmp_path, fake, spawn_engine=True)
        async with fake.run_client(bot):
            await fake.wait_for(lambda: bot.supervisor.process is not None)
            assert bot.supervisor.owner == first_owner
            bot.supervisor.process.send_signal(signal.SIGKILL)
            requeued = await fake.wait_for_message(fake.channel.id, lambda m: has_png(m) and killed_job in m.content,
                                                   timeout=150)
            job = await delivered(db, killed_job)
            assert job.state == "succeeded" and job.attempt == 2 and bot.supervisor.starts == 2
            assert str(job.seed) in requeued.content

            rec = await fake.slash("disco", {"prompt": "a lighthouse:2 | yellow:-0.5", "steps": 8,
                                             "width": 64, "height": 64})
            callback = await fake.wait_for_callback(rec)
            assert callback.type == 5 and callback.delay < 3.0
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.followups_for(rec.id)[0]
            assert echo.content.startswith("**Queued**") and not echo.ephemeral
            job_id = re.search(r"`([0-9A-Z]{26})`", echo.content).group(1)

            progress = await fake.wait_for_message(fake.channel.id, lambda m: job_id in m.content
                                                   and not m.interaction_id and not has_png(m))
            final = await fake.wait_for_message(fake.channel.id, lambda m: has_png(m) and job_id in m.content,
                                                 timeout=150)
            job = await delivered(db, job_id)
            assert job.state == "succeeded"
            assert job.result_message_ids == (str(final.id),)
            assert f"<@{fake.member.id}>" in final.content and job_id in final.content
            assert str(job.seed) in final.content
            image = next(data for name, data in final.files.items() if name.endswith(".png"))
            assert Image.open(io.BytesIO(image)).size == (64, 64)
            settings = json.loads(final.files[f"{job_id}_settings.json"])
            assert settings["steps"] == 8 and settings["text_prompts"][0]["text"] == "a lighthouse"
            # One progress message, edited (running, then done), never reposted.
            await fake.wait_for(lambda: fake.message(progress.id).content.startswith("**Done**"))
            assert len(progress.edits) >= 2 and job.progress_message_id == str(progress.id)
            assert sum(job_id in m.content for m in fake.messages_in(fake.channel.id)
                       if not m.interaction_id) == 2  # the progress message and the result
            assert bot.supervisor.process.returncode is None
            engine = bot.supervisor.process
        assert engine.returncode is not None  # stopped with the bot
    run(body, tmp_path, timeout=300)


@pytest.mark.parametrize("options, rule", [
    ({"settings": "no_such_key=3"}, "no_such_key"),
    ({"settings": "cut_overview=[12]*1000; cut_innercut=[4]*1000"}, "max_cuts"),
    # Checked on the final spec, so within the server's cut limit.
    ({"prompt": "gore in the storm", "settings": "cut_overview=[4]*1000; cut_innercut=[4]*1000"}, "banned_words"),
])
def test_refusal_is_ephemeral_names_the_rule_and_queues_nothing(tmp_path, options, rule):
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_cuts=8)
        await db.guilds.add_banned_word(fake.guild.id, "gore")
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.slash("disco", {"prompt": "a lighthouse", **options})
            assert (await fake.wait_for_callback(rec)).type == 5
            await fake.wait_for(lambda: rec.followup_ids)
            answer = fake.message(rec.followup_ids[-1])
            assert answer.ephemeral and answer.content.startswith("**Not queued:**")
            assert rule in answer.content.replace("\\", "")  # markdown escapes
            assert fake.original_response(rec.id) is None or fake.original_response(rec.id).deleted
        assert await db.jobs.list() == []
    run(body, tmp_path)


def test_attachments_are_checked_downloaded_and_queued(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        buffer = io.BytesIO()
        Image.new("RGB", (96, 64), (10, 120, 200)).save(buffer, format="PNG")
        async with fake.run_client(make_bot(tmp_path, fake)):
            bad = await fake.slash("disco", {"prompt": "a lighthouse",
                                             "init_image": FakeFile("notes.txt", b"hello", "text/plain")})
            await fake.wait_for(lambda: bad.followup_ids)
            refusal = fake.message(bad.followup_ids[-1])
            assert refusal.ephemeral and f"attach a {FORMAT_LIST}" in refusal.content
            assert await db.blobs.count() == (0, 0)  # refused before a byte was stored

            rec = await fake.slash("disco", {"prompt": "a lighthouse", "skip_steps": 5, "init_image": FakeFile(
                "my photo.png", buffer.getvalue(), "image/png", width=96, height=64)})
            await fake.wait_for(lambda: rec.followup_ids)
            echo = fake.message(rec.followup_ids[0]).content
            assert echo.startswith("**Queued**")
            assert "waits for an engine: none that can run it is up" in echo and "<t:" not in echo  # none runs here
            dd_file = FakeFile("run_settings.txt", json.dumps({"steps": 20, "cutn_batches": 2}).encode(), "text/plain")
            from_file = await fake.slash("disco", {"prompt": "a lighthouse", "settings_file": dd_file})
            await fake.wait_for(lambda: from_file.followup_ids)
        from_file_job, job = await db.jobs.list()
        assert (from_file_job.steps, json.loads(from_file_job.spec_json)["cutn_batches"]) == (20, 2)
        ref = json.loads(job.spec_json)["init_image"]
        assert ref.startswith("blob:") and ref.endswith("/init_image_my_photo.png")
        assert await db.blobs.get(ref) == buffer.getvalue()
        assert [(f.role, f.sha256) for f in await db.blobs.job_files(job.id)] == [("input", ref[5:69])]
    run(body, tmp_path)


def test_result_posted_once_across_a_restart_mid_delivery(tmp_path, monkeypatch):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        job = await db.leases.claim(OWNER)
        png = write_png(tmp_path / "jobs" / job_id / "out_0.png")
        await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[str(png)], gpu_seconds=1.0)

        # First bot: Discord accepts the result, then the bot "dies" before recording it.
        reached = asyncio.Event()
        real_mark = storage.jobs.Jobs.mark_delivered

        async def crash_before_recording(self, job_id, message_ids, **where):
            reached.set()
            await asyncio.Event().wait()  # never returns; the close below cancels it
        monkeypatch.setattr(storage.jobs.Jobs, "mark_delivered", crash_before_recording)
        async with fake.run_client(make_bot(tmp_path, fake)):
            await asyncio.wait_for(reached.wait(), 10)
        assert (await db.jobs.get(job_id)).delivery_state == "sending"
        monkeypatch.setattr(storage.jobs.Jobs, "mark_delivered", real_mark)

        async with fake.run_client(make_bot(tmp_path, fake)):
            await fake.wait_for(lambda: fake.requests_to("POST", f"/channels/{fake.channel.id}/messages")[1:])
            await asyncio.sleep(0.3)  # a few more poster rounds: nothing else may be posted
            job = await delivered(db, job_id)
            results = [m for m in fake.messages_in(fake.channel.id) if has_png(m)]
            assert len(results) == 1 and job.result_message_ids == (str(results[0].id),)
    run(body, tmp_path)


def test_progress_edit_survives_a_429_and_failure_notice_is_posted(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        job_id = await queue_job(db, fake)
        job = await db.leases.claim(OWNER)
        await db.leases.progress(job_id, job.attempt, OWNER, step=1, total=8, seconds_per_step=0.5)
        async with fake.run_client(make_bot(tmp_path, fake)):
            progress = await fake.wait_for_message(fake.channel.id, lambda m: "step 1/8" in m.content)
            path = f"/channels/{fake.channel.id}/messages/{progress.id}"
            fake.fail_next("PATCH", path, 429, retry_after=0.3)
            await db.leases.progress(job_id, job.attempt, OWNER, step=5, total=8, seconds_per_step=0.5)
            await fake.wait_for(lambda: "step 5/8" in fake.message(progress.id).content)
            patches = fake.requests_to("PATCH", path)
            assert [(p.status, p.forced) for p in patches][:2] == [(429, True), (200, False)]

            await db.leases.fail(job_id, job.attempt, OWNER, code="bad_settings",
                                 message="init_image could not be read; attach it again", retryable=False)
            notice = await fake.wait_for_message(fake.channel.id, lambda m: "failed" in m.content)
            assert f"<@{fake.member.id}>" in notice.content and "attach it again" in notice.content
            await fake.wait_for(lambda: fake.message(progress.id).content.startswith("**Failed**"))
            await delivered(db, job_id)
    run(body, tmp_path)


def test_disco_bot_needs_the_token_from_the_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "disco", "bot", "--data-dir", str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "DISCORD_TOKEN" in done.stderr
