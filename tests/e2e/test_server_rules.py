"""Server defaults and limits admins set, end to end: the real bot (no engine) against the
loopback Discord and the real SQLite file, as tests/e2e/test_admin.py runs it. Server defaults
applied and shown, a channel's default over the server's, a forbidden CLIP model refused (typed,
and slipped in by a preset), the most images per job, the model autocomplete, and a refund."""
from __future__ import annotations

import json

from storage import Database
from tests.support.bot import OWNER, last_answer, make_bot, queue_job, run
from tests.support.fakediscord import SECOND_CHANNEL_ID, FakeDiscord
from tests.support.storage import request


async def admin(fake: FakeDiscord, command: str, options=None) -> str:
    rec = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.admin,
                                      f"disco-admin {command}", options)
    message = await last_answer(fake, rec)
    assert message.ephemeral, message.content
    return message.content


async def disco(fake: FakeDiscord, options: dict, *, channel_id=None):
    rec = await fake.slash("disco", {"prompt": "a lighthouse", **options}, channel_id=channel_id)
    return await last_answer(fake, rec)


async def newest_spec(db: Database) -> dict:
    return json.loads((await db.jobs.list())[0].spec_json)


def test_server_and_channel_defaults_apply_under_the_users_options_and_are_shown(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        second = fake.guild.channel(SECOND_CHANNEL_ID)
        async with fake.run_client(make_bot(tmp_path, fake)):
            text = await admin(fake, "defaults set", {"settings": "steps=30; eta=0.3"})
            assert "Defaults set** for the server" in text and "steps=30" in text
            assert "images come from attachments only" in await admin(
                fake, "defaults set", {"settings": "init_image=/etc/passwd"})
            text = await admin(fake, "defaults set", {"settings": "steps=20", "channel": second})
            assert f"<#{SECOND_CHANNEL_ID}>" in text and "This channel's defaults: `steps=20`" in text

            queued = await disco(fake, {})
            assert queued.content.startswith("**Queued**"), queued.content
            plain = queued.content.replace("\\", "")
            assert "from the server defaults:" in plain and "eta=0.3" in plain and "steps=30" in plain
            assert ((await newest_spec(db))["steps"], (await newest_spec(db))["eta"]) == (30, 0.3)
            there = await disco(fake, {}, channel_id=SECOND_CHANNEL_ID)
            assert "from this channel's defaults: steps=20" in there.content.replace("\\", "")
            assert ((await newest_spec(db))["steps"], (await newest_spec(db))["eta"]) == (20, 0.3)
            await disco(fake, {"steps": 40}, channel_id=SECOND_CHANNEL_ID)
            assert (await newest_spec(db))["steps"] == 40  # the user's option wins

            info = await last_answer(fake, await fake.slash("disco-info"))
            assert "Server defaults: `" in info.content and "eta=0.3" in info.content
            assert "This channel's defaults: none (the server's apply)" in info.content
            reset = await admin(fake, "defaults reset", {"channel": second})
            assert "This channel's defaults: none" in reset
            assert "is not a default" in await admin(fake, "defaults reset", {"setting": "sat_scale"})
            audit = await admin(fake, "audit", {"limit": 25})
            assert audit.count("**defaults.set**") >= 2 and "**defaults.reset**" in audit
            # Limits below the defaults: the admin is told what every job will have changed.
            limited = (await admin(fake, "limits set", {"max_steps": 25})).replace("\\", "")
            assert "**Warning:** the server's defaults are over" in limited and "steps 30 → 25" in limited
            again = (await admin(fake, "defaults set", {"settings": "steps=28"})).replace("\\", "")
            assert "Defaults set" in again and "steps 28 → 25" in again
        assert len(await db.jobs.list()) == 3
    run(body, tmp_path)


def test_a_forbidden_clip_model_is_refused_however_it_arrives(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            text = await admin(fake, "models allow", {"kind": "clip", "names": "ViT-B/32, RN50"})
            assert "Allowed clip models:** ViT-B-32::openai, RN50::openai" in text
            assert "Warning" not in text  # the test server's defaults use ViT-B-32 only
            warned = await admin(fake, "models allow", {"kind": "clip", "names": "RN50"})
            assert "**Warning:** a job that sets nothing would be refused" in warned
            await admin(fake, "models allow", {"kind": "clip", "names": "ViT-B/32, RN50"})
            assert "'RN51' is not a known clip model" in await admin(fake, "models allow", {"kind": "clip", "names": "RN51"})
            refused = await disco(fake, {"settings": "clip_models=ViT-B-32::openai,RN50x64::openai"})
            content = refused.content.replace("\\", "")
            assert refused.ephemeral and "RN50x64::openai is not allowed" in content
            assert "rule: allowed_clip_models" in content and "clip_models=ViT-B-32::openai" in content
            saved = await last_answer(fake, await fake.slash("preset save", {
                "name": "big", "settings": "clip_models=ViT-L-14-336::openai"}))
            assert "Saved" in saved.content
            slipped = await last_answer(fake, await fake.slash("preset use", {"name": "big", "prompt": "a pier"}))
            assert slipped.ephemeral and "ViT-L-14-336::openai is not allowed" in slipped.content
            assert (await disco(fake, {"settings": "clip_models=RN50::openai"})).content.startswith("**Queued**")

            await admin(fake, "models allow", {"kind": "diffusion", "names": "256x256_diffusion_uncond"})
            rec = await fake.autocomplete("disco", {"prompt": "x", "model": ""}, "model")
            await fake.wait_for(lambda: fake.callbacks_for(rec.id))
            assert [c["value"] for c in fake.callbacks_for(rec.id)[0].data["choices"]] == [
                "256x256_diffusion_uncond"]
            model = await disco(fake, {"model": "portrait_generator_v001"})
            assert model.ephemeral and "rule: allowed_models" in model.content.replace("\\", "")
            info = await last_answer(fake, await fake.slash("disco-info"))
            assert "CLIP models allowed: RN50::openai, ViT-B-32::openai" in info.content
            assert "every model" in await admin(fake, "models allow", {"kind": "clip", "names": "every"})
            audit = await admin(fake, "audit", {"limit": 25})
            assert "**models.clip.allow**" in audit and "**models.diffusion.allow**" in audit
        assert len(await db.jobs.list()) == 1
    run(body, tmp_path)


def test_max_images_and_a_refund(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            assert "`max_images` = 2 (default 4)" in await admin(fake, "limits set", {"max_images": 2})
            queued = await disco(fake, {"n": 3})
            assert "max_images" in queued.content.replace("\\", "")
            assert (await newest_spec(db))["n_batches"] == 2

            job_id = await queue_job(db, fake)
            job = await db.leases.claim(OWNER)
            await db.leases.complete(job.id, job.attempt, OWNER, artifacts=[], gpu_seconds=60.0)
            assert (await db.quotas.status(fake.guild.id, fake.member.id))["day"].user_used == 60
            text = await admin(fake, "refund", {"job": job.id, "reason": "bad output"})
            assert f"Refunded** 60 GPU-s (1.0 min) of job `{job.id}`" in text
            assert "no GPU time charged" in await admin(fake, "refund", {"job": job.id})
            assert "no job 'NOPE'" in await admin(fake, "refund", {"job": "NOPE"})
            elsewhere = await db.jobs.enqueue(request(guild=fake.guild.id + 1))
            refusal = (await admin(fake, "refund", {"job": elsewhere.id})).replace("\\", "")
            assert "belongs to another server (rule: same_server)" in refusal
            assert (await db.quotas.status(fake.guild.id, fake.member.id))["day"].user_used == 0
            audit = await admin(fake, "audit")
            assert "**quota.refund**" in audit and "reason=bad output" in audit
        assert job_id
    run(body, tmp_path)
