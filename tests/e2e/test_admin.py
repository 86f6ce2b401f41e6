"""`/disco-admin`, `/preset` and `/disco-info` end to end: the real bot (DiscoBot, no engine)
against the loopback Discord of tests/support/fakediscord and the real SQLite file, as
tests/e2e/test_supervised_engine.py runs it (helpers in tests/support/bot.py). Usage is charged through
storage's engine API, so no render runs.
"""
from __future__ import annotations

import json

from storage import Database
from tests.support.bot import OWNER, last_answer, make_bot, queue_job, run
from tests.support.fakediscord import SECOND_CHANNEL_ID, FakeChannel, FakeDiscord, FakeFile

THREAD_ID, FORUM_ID, POST_ID = 400_000_000_000_000_777, 400_000_000_000_000_778, 400_000_000_000_000_779


async def admin(fake: FakeDiscord, command: str, options=None, *, user=None):
    rec = await fake.send_interaction(fake.guild.id, fake.channel.id, user or fake.admin,
                                      f"disco-admin {command}", options)
    message = await last_answer(fake, rec)
    assert message.ephemeral, message.content
    if user is None:  # an admin's every answer follows a private "thinking…" (a slow database)
        assert fake.callbacks_for(rec.id)[0].type == 5, "an admin command answered without deferring"
    return message.content


async def disco(fake: FakeDiscord, options: dict, *, channel_id=None):
    rec = await fake.slash("disco", {"prompt": "a lighthouse", **options}, channel_id=channel_id)
    return await last_answer(fake, rec)


def test_admin_quota_refuses_a_member_once_used_and_info_shows_it(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            text = await admin(fake, "quota set", {"scope": "member", "window": "day", "minutes": 1})
            assert "Quota set" in text and "every member" in text and "60 GPU-s" in text
            refusal = await admin(fake, "quota set", {"scope": "user", "window": "day", "seconds": 5})
            assert "needs the `user` option" in refusal
            # The member renders once; the engine charges 60 GPU-seconds on completion.
            job_id = await queue_job(db, fake)
            job = await db.leases.claim(OWNER)
            await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[], gpu_seconds=60.0)
            refused = await disco(fake, {})
            assert refused.ephemeral and refused.content.startswith("**Not queued:**")
            assert "GPU budget for today is used up" in refused.content and "resets at" in refused.content
            info = await last_answer(fake, await fake.slash("disco-info"))
            assert info.ephemeral
            assert "Today: 0 GPU-s (0.0 min) left of 60 GPU-s" in info.content and "<t:" in info.content
            assert "This month: used 60 GPU-s" in info.content and "`max_steps` = 500" in info.content
            shown = await admin(fake, "quota show", {"user": fake.member})
            assert "used 60 GPU-s (1.0 min) of 60 GPU-s" in shown
            own = await admin(fake, "quota set", {"scope": "user", "window": "day", "minutes": 2,
                                                  "user": fake.member})
            assert f"<@{fake.member.id}> — 120 GPU-s" in own
            assert (await disco(fake, {})).content.startswith("**Queued**")  # a user limit overrides
            cleared = await admin(fake, "quota clear", {"scope": "user", "window": "day", "user": fake.member})
            assert "Quota cleared" in cleared and f"<@{fake.member.id}>" not in cleared.split("\n", 1)[1]
            # Clearing a budget that is not there says so, and writes nothing to the audit log.
            again = await admin(fake, "quota clear", {"scope": "user", "window": "day", "user": fake.member})
            assert again.startswith(f"**Unchanged:** <@{fake.member.id}> has no budget per day.\nBudgets:")
            audit = await admin(fake, "audit")
            assert audit.count("**quota.set**") == 3 and f"user:{fake.member.id}" in audit
        assert len(await db.jobs.list()) == 2
    run(body, tmp_path)


def test_a_member_is_refused_server_side_and_nothing_changes(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        before = await db.guilds.get(fake.guild.id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            # The fake sends the command as the client would if a server overrode the default
            # permissions in Integrations: the member's own permissions lack Manage Guild.
            for command, options in (("limits set", {"max_steps": 10}), ("intake pause", {"reason": "x"}),
                                     ("quota set", {"scope": "guild", "window": "day", "minutes": 1}),
                                     ("audit", None)):
                text = await admin(fake, command, options, user=fake.member)
                assert "needs the Manage Server permission" in text and "manage_guild" in text
            text = await admin(fake, "limits show", user=fake.admin)
            assert "`max_steps` = 500" in text
        assert await db.guilds.get(fake.guild.id) == before
        assert await db.quotas.limits(fake.guild.id) == []
        assert [e.action for e in await db.audit.list(fake.guild.id)] == ["defaults.set"]
    run(body, tmp_path)


def test_limits_channels_intake_and_banned_words_apply_and_are_audited(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            text = await admin(fake, "limits set", {"max_steps": 50, "max_width": 512, "max_height": 512})
            assert "`max_steps` = 50 (default 500)" in text and "`max_pixels` = 262,144" in text
            assert "max_height" in await admin(fake, "limits set", {"max_width": 512})
            assert "nothing to change" in await admin(fake, "limits set")
            reset = await admin(fake, "limits set", {"max_cuts": 64, "reset": "max_frames"})
            assert "`max_cuts` = 64 (default 128)" in reset and "`max_frames` = 300\n" in reset
            queued = await disco(fake, {"steps": 100})
            assert queued.content.startswith("**Queued**")
            assert "max_steps" in queued.content.replace("\\", "")  # markdown escapes
            (job,) = await db.jobs.list()
            assert job.steps == 50

            second = fake.guild.channel(SECOND_CHANNEL_ID)
            assert f"only in <#{SECOND_CHANNEL_ID}>" in await admin(fake, "channels allow", {"channel": second})
            elsewhere = await disco(fake, {})
            assert elsewhere.ephemeral and f"<#{SECOND_CHANNEL_ID}>" in elsewhere.content
            assert "every channel" in await admin(fake, "channels disallow", {"channel": second})

            assert "maintenance" in await admin(fake, "intake pause", {"reason": "GPU `maintenance` @everyone"})
            paused = await disco(fake, {})
            # The admin's reason, as typed: it can neither break the members' formatting nor ping.
            reason = "GPU \\`maintenance\\` @\u200beveryone"
            assert paused.ephemeral and "paused" in paused.content and reason in paused.content
            assert f"New jobs are **paused**: {reason}" in (await last_answer(fake, await fake.slash("disco-info"))).content
            assert "Intake open" in await admin(fake, "intake resume")
            assert "(reason=GPU \\`maintenance\\` @\u200beveryone)" in await admin(fake, "audit")

            assert "`gore`" in await admin(fake, "banned-words add", {"word": "Gore"})
            assert "`ˋgoreˋ`" in await admin(fake, "banned-words add", {"word": "`gore`"})  # cannot break the list
            await admin(fake, "banned-words remove", {"word": "`gore`"})
            assert "banned_words" in (await disco(fake, {"prompt": "gore at sea"})).content.replace("\\", "")
            # Checked on what renders, not on what was typed: a JSON escape in the settings
            # option, a settings file, a study axis, an animation's later keyframe.
            hidden = [
                ("disco", {"prompt": "--steps 20", "settings": 'text_prompts="a g\\u006fre cat"'}),
                ("disco", {"prompt": "--steps 20", "settings_file": FakeFile(
                    "s.json", json.dumps({"text_prompts": {"0": ["a ＧＯＲＥ cat"]}}).encode(), "application/json")}),
                ("study", {"prompt": "a dog", "x": 'text_prompts="a g\u200bore cat","a dog"'}),
                ("animate", {"prompt": "0: a dog || 5: go\u0301re", "frames": 10}),
            ]
            for command, options in hidden:
                refused = await last_answer(fake, await fake.slash(command, options))
                assert refused.ephemeral and "banned_words" in refused.content.replace("\\", ""), (command, refused.content)
            assert "No banned words" in await admin(fake, "banned-words remove", {"word": "gore"})

            audit = await admin(fake, "audit", {"limit": 25})
            for action in ("limits.set", "channels.allow", "channels.disallow", "intake.pause",
                           "intake.resume", "banned_words.add", "banned_words.remove"):
                assert f"**{action}**" in audit, action
            assert f"<@{fake.admin.id}>" in audit
        assert len(await db.jobs.list()) == 1
    run(body, tmp_path)


def test_a_thread_follows_the_rules_of_its_channel(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        forum = FakeChannel(FORUM_ID, "gallery", type=15)
        fake.guild.channels += [FakeChannel(THREAD_ID, "lighthouses", type=11, parent_id=SECOND_CHANNEL_ID),
                                forum, FakeChannel(POST_ID, "my castles", type=11, parent_id=FORUM_ID)]
        async with fake.run_client(make_bot(tmp_path, fake)):
            await admin(fake, "channels allow", {"channel": fake.guild.channel(SECOND_CHANNEL_ID)})
            await admin(fake, "defaults set", {"settings": "steps=33",
                                               "channel": fake.guild.channel(SECOND_CHANNEL_ID)})
            queued = await disco(fake, {"width": 64, "height": 64}, channel_id=THREAD_ID)
            assert queued.content.startswith("**Queued**"), queued.content
            assert "from this channel's defaults: steps=33" in queued.content.replace("\\", "")
            info = await last_answer(fake, await fake.slash("disco-info", channel_id=THREAD_ID))
            assert "This channel's defaults: `steps=33`" in info.content
            # /disco-help: the guide, a setting with this channel's default, the autocomplete.
            guide = await last_answer(fake, await fake.slash("disco-help"))
            assert guide.ephemeral and guide.content.startswith("**Painting with Disco Diffusion**")
            steps = await last_answer(fake, await fake.slash("disco-help", {"setting": "steps"}, channel_id=THREAD_ID))
            assert "**steps** (setting)" in steps.content and "Default in this channel: `33`" in steps.content
            rec = await fake.autocomplete("disco-help", {"setting": "cut_i"}, "setting")
            await fake.wait_for(lambda: fake.callbacks_for(rec.id))
            assert [c["value"] for c in fake.callbacks_for(rec.id)[0].data["choices"]] == [
                "cut_innercut", "cut_ic_pow", "cut_icgray_p"]
            rec = await fake.autocomplete("disco-help", {"setting": "--cg"}, "setting")
            await fake.wait_for(lambda: fake.callbacks_for(rec.id))
            assert {"name": "--cgs → clip_guidance_scale", "value": "cgs"} in fake.callbacks_for(rec.id)[0].data["choices"]
            refused = await disco(fake, {})  # the first channel is still not allowed
            assert refused.ephemeral and f"<#{SECOND_CHANNEL_ID}>" in refused.content
            # A forum can be allowed too: its posts are threads.
            assert f"<#{FORUM_ID}>" in await admin(fake, "channels allow", {"channel": forum})
            in_post = await disco(fake, {"width": 64, "height": 64}, channel_id=POST_ID)
            assert in_post.content.startswith("**Queued**"), in_post.content
        assert [job.channel_id for job in await db.jobs.list()] == [str(POST_ID), str(THREAD_ID)]
        assert (await db.jobs.list())[1].steps == 33  # the result goes to the thread
    run(body, tmp_path)


def test_presets_are_checked_saved_listed_used_and_deleted(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            async def preset(command, options=None, user=None):
                rec = await fake.slash(f"preset {command}", options, user=user)
                return await last_answer(fake, rec)

            typo = await preset("save", {"name": "fast", "settings": "stepz=20"})
            assert typo.ephemeral and "did you mean 'steps'" in typo.content
            image = await preset("save", {"name": "x", "settings": "init_image=/etc/passwd"})
            assert "attachments" in image.content
            saved = await preset("save", {"name": "Fast", "settings": "steps=20; clip_guidance_scale=7000"})
            assert "Saved" in saved.content and "clip\\_guidance\\_scale=7000; steps=20" in saved.content
            prompt = await preset("save", {"name": "odd", "settings": 'text_prompts="@everyone **big** `x"'})
            assert '"text": "@\u200beveryone \\*\\*big\\*\\* \\`x"' in prompt.content  # as typed
            await preset("delete", {"name": "odd"})
            denied = await preset("save", {"name": "house", "settings": "steps=30", "scope": "server"})
            assert "Manage Server" in denied.content
            house = await preset("save", {"name": "house", "settings": "steps=30", "scope": "server"},
                                 user=fake.admin)
            assert "server's preset `house`" in house.content

            rec = await fake.autocomplete("preset use", {"name": ""}, "name")
            await fake.wait_for(lambda: fake.callbacks_for(rec.id))
            choices = fake.callbacks_for(rec.id)[0].data["choices"]
            assert [c["value"] for c in choices] == ["fast", "house"]
            listing = await preset("list")
            assert "`fast` (yours)" in listing.content and "`house` (server)" in listing.content

            used = await preset("use", {"name": "fast", "prompt": "a lighthouse", "seed": 3})
            assert used.content.startswith("Preset `fast`") and not used.ephemeral
            (job,) = await db.jobs.list()
            spec = json.loads(job.spec_json)
            assert (job.steps, spec["clip_guidance_scale"], job.seed) == (20, 7000, 3)
            missing = await preset("use", {"name": "nope", "prompt": "a lighthouse"})
            assert missing.ephemeral and "no preset named 'nope'" in missing.content
            # /disco takes a preset too, with its own options on top (and a model choice)
            disco = await last_answer(fake, await fake.slash("disco", {
                "prompt": "a pier", "preset": "fast", "steps": 24, "init_scale": 500,
                "model": "256x256_diffusion_uncond"}))
            assert not disco.ephemeral, disco.content
            newest = json.loads((await db.jobs.list())[0].spec_json)
            assert (newest["steps"], newest["clip_guidance_scale"], newest["init_scale"],
                    newest["diffusion_model"]) == (24, 7000, 500, "256x256_diffusion_uncond")

            assert "Manage Server" in (await preset("delete", {"name": "house", "scope": "server"})).content
            assert "Deleted" in (await preset("delete", {"name": "fast"})).content
        assert [p.name for p in await db.presets.list(fake.guild.id, owner_id=fake.member.id)] == ["house"]
        assert [e.action for e in await db.audit.list(fake.guild.id)][0] == "preset.save"
    run(body, tmp_path)


def test_admin_workers_shows_the_fleet_as_disco_workers_does(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        from storage import WorkerFit

        job_id = await queue_job(db, fake)
        await db.workers.register("worker:gpu-a:cuda:1:7", host="gpu-a", device="cuda:1",
                                  fit=WorkerFit(model_sets=("test-tiny",), memory_gb=24.0))
        await db.leases.claim("worker:gpu-a:cuda:1:7")
        await db.workers.heartbeat("worker:gpu-a:cuda:1:7", job_id)
        await db.workers.register("engine:box:2", host="box", device="cpu", fit=WorkerFit(("test-tiny",)))
        await db.workers.job_done("engine:box:2", seconds_per_step=0.5)
        from dataclasses import replace
        from tests.support.workers import tiny_still
        await db.jobs.enqueue(replace(tiny_still(fake.guild.id, fake.channel.id, fake.member.id, seed=9),
                                      model_set="dd-default"))  # no live worker runs it
        bot = make_bot(tmp_path, fake)
        async with fake.run_client(bot):
            text = await admin(fake, "workers")
            lines = text.strip("`\n").splitlines()
            assert lines[0].split() == ["worker", "host", "device", "models", "memory", "job",
                                        "heartbeat", "done", "s/step"]
            gpu = next(line for line in lines if line.startswith("worker:gpu-a"))
            assert all(cell in gpu for cell in ("cuda:1", "test-tiny", "24 GB", job_id, "s ago"))
            box = next(line for line in lines if line.startswith("engine:box:2"))
            assert "idle" in box and " 1 " in box and "0.50" in box
            assert "2 live of 2 registered" in text
            assert "1 queued job(s) need model set dd-default, which no live worker runs" in text
            refused = await admin(fake, "workers", user=fake.member)
            assert "Manage Server" in refused
    run(body, tmp_path)
