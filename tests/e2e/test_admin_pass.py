"""An admin's pass through `/disco-admin` end to end: the real bot (DiscoBot, no engine) against
the loopback Discord of tests/support/fakediscord and the real SQLite file (helpers in
tests/support/bot.py). Usage is charged through storage's engine API, so no render runs.
"""
from __future__ import annotations

import asyncio

from storage import Database
from tests.support.bot import OWNER, last_answer, make_bot, queue_job, run
from tests.support.fakediscord import FakeDiscord
from tests.support.fakediscord.models import FakeRole
from tests.support.workers import tiny_still


async def admin(fake: FakeDiscord, command: str, options=None) -> str:
    rec = await fake.send_interaction(fake.guild.id, fake.channel.id, fake.admin,
                                      f"disco-admin {command}", options)
    message = await last_answer(fake, rec)
    assert message.ephemeral and len(message.content) <= 2000, message.content
    return message.content


def test_refunding_a_job_before_it_ends_says_when_it_can_be_refunded(tmp_path):
    """A queued or running job is charged as it renders: a refund now would miss those charges,
    and "never charged, or already refunded" would send the admin away for good."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            job_id = await queue_job(db, fake)
            queued = await admin(fake, "refund", {"job": job_id})
            assert queued.startswith(f"**Unchanged:** job `{job_id}` is still queued"), queued
            assert "refund it once it has ended" in queued and "/cancel" in queued
            job = await db.leases.claim(OWNER)
            running = await admin(fake, "refund", {"job": job_id})
            assert running.startswith(f"**Unchanged:** job `{job_id}` is still running"), running
            await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[], gpu_seconds=60.0)
            assert "**Refunded** 60 GPU-s" in await admin(fake, "refund", {"job": job_id})
            again = await admin(fake, "refund", {"job": job_id})
            assert "already refunded" in again
        assert [e.action for e in await db.audit.list(fake.guild.id)].count("quota.refund") == 1
        assert sum(entry.gpu_seconds for entry in await db.quotas.ledger(fake.guild.id)) == 0.0
    run(body, tmp_path)


def test_a_long_audit_log_pages_in_whole_entries_back_to_the_first(tmp_path):
    """Long entries made one answer cut mid-entry at 2000 characters, and nothing older than
    the newest 25 could be read at all."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            for i in range(30):
                await admin(fake, "banned-words add", {"word": f"phrase {i:02} " + "x" * 80})
            seen, options = [], {"limit": 25}
            while True:
                page = await admin(fake, "audit", options)
                lines = page.split("\n")
                entries = [line for line in lines if line.startswith("`#")]
                assert entries and all(line.endswith("x") or "defaults.set" in line for line in entries), page
                seen += [int(line[2:line.index("`", 1)]) for line in entries]
                if not lines[-1].startswith("Older entries: "):
                    break
                options = {"limit": 25, "before": int(lines[-1].split("before:")[1].rstrip("`"))}
            # every entry once, newest first: the defaults the test run set, then 30 words
            assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 31
            assert "No older entries" in await admin(fake, "audit", {"before": seen[-1]})
    run(body, tmp_path)


def test_a_long_banned_words_list_pages_in_whole_words(tmp_path):
    """40 long phrases made every banned-words answer cut mid-word at 2000 characters: the
    admin could never read the end of the list."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            words = [f"phrase {i:02} " + "x" * 80 for i in range(40)]
            for word in words:
                added = await admin(fake, "banned-words add", {"word": word})
            assert added.startswith(f"**Banned** `{words[-1]}`. Banned words (40): ")
            assert "\n…" not in added and added.endswith("; next: `/disco-admin banned-words list page:2`")
            seen, page = [], 1
            while True:
                text = await admin(fake, "banned-words list", {"page": page})
                listed, _, footer = text.partition(": ")[2].partition("\nPage ")
                seen += [span.strip("`") for span in listed.split(", ")]
                if "next:" not in footer:
                    break
                page += 1
                assert footer.endswith(f"; next: `/disco-admin banned-words list page:{page}`")
            assert seen == sorted(words) and footer == f"{page} of {page}"
            beyond = await admin(fake, "banned-words list", {"page": page + 1})
            assert f"no page {page + 1}; the list has {page}" in beyond
    run(body, tmp_path)


def test_banning_a_word_twice_says_unchanged_and_audits_once(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            assert (await admin(fake, "banned-words add", {"word": "Gore"})).startswith("**Banned** `gore`")
            again = await admin(fake, "banned-words add", {"word": "GORE"})
            assert again.startswith("**Unchanged:** already banned: `gore`. Banned words (1): `gore`")
        assert [e.action for e in await db.audit.list(fake.guild.id)].count("banned_words.add") == 1
    run(body, tmp_path)


def test_many_presets_list_in_pages_of_whole_lines(tmp_path):
    """A member's 25 presets and the server's 25 made one /preset list cut mid-line at 2000
    characters: most presets could not be seen."""
    settings = "steps=20; clip_guidance_scale=7000; eta=0.5; cutn_batches=2; range_scale=100; tv_scale=10"
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            for i in range(25):
                for scope, user in (("me", fake.member), ("server", fake.admin)):
                    await last_answer(fake, await fake.slash("preset save", {
                        "name": f"{scope}-{i:02}-" + "y" * 20, "settings": settings, "scope": scope}, user=user))
            names, page = [], 1
            while True:
                text = (await last_answer(fake, await fake.slash("preset list", {"page": page}))).content
                assert len(text) <= 2000 and "\n…" not in text
                lines = text.split("\n")
                names += [line.split("`")[1] for line in lines if line.startswith("• ")]
                if "; next: " not in lines[-1]:
                    break
                page += 1
                assert lines[-1].endswith(f"; next: `/preset list page:{page}`")
            assert len(names) == len(set(names)) == 50 and page > 1
            beyond = await last_answer(fake, await fake.slash("preset list", {"page": page + 1}))
            assert f"no page {page + 1}; the list has {page}" in beyond.content
    run(body, tmp_path)


def test_queue_counts_every_job_of_a_busy_server_and_shows_the_members_oldest(tmp_path):
    """/queue read the server's newest 500 active jobs: past that its counts stopped at 500 and
    a member's oldest jobs (the next to run) vanished from "Your jobs"."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.set_limits(fake.guild.id, max_queued_per_guild=100_000, max_queued_per_user=1000)
        oldest = [await queue_job(db, fake, seed=seed) for seed in range(3)]
        for user in range(600):
            await db.jobs.enqueue(tiny_still(fake.guild.id, fake.channel.id, 600_000_000_000_000_000 + user,
                                             seed=user))
        newest = [await queue_job(db, fake, seed=1000 + seed) for seed in range(60)]
        await db.leases.claim(OWNER)  # the member's oldest job renders
        async with fake.run_client(make_bot(tmp_path, fake)):
            text = (await last_answer(fake, await fake.slash("queue"))).content
        assert len(text) <= 2000
        assert text.startswith("**Queue** · this server: 662 waiting, 1 rendering\n**Your jobs**\n")
        assert all(job_id in text for job_id in oldest) and newest[-1] not in text
        shown = sum(job_id in text for job_id in newest)
        assert text.endswith(f"… and {60 - shown} more of your jobs (the newest)\n")
    run(body, tmp_path)


def test_a_deleted_allowed_channel_can_be_cleared_off_the_list(tmp_path):
    """An allowed channel deleted afterwards cannot be picked in `channels disallow` (Discord
    offers only channels that exist): the list, and the refusals naming it, stayed for good."""
    deleted = 400_000_000_000_000_999
    async def body(fake: FakeDiscord, db: Database) -> None:
        await db.guilds.allow_channel(fake.guild.id, deleted)
        async with fake.run_client(make_bot(tmp_path, fake)):
            refused = await last_answer(fake, await fake.slash("disco", {"prompt": "a lighthouse"}))
            assert f"<#{deleted}>" in refused.content
            cleared = await admin(fake, "channels clear")
            assert cleared == "**Cleared**. Jobs are allowed in every channel."
            assert (await admin(fake, "channels clear")).startswith("**Unchanged:** the list was empty")
            queued = await last_answer(fake, await fake.slash("disco", {"prompt": "a lighthouse"}))
            assert queued.content.startswith("**Queued**"), queued.content
        assert [e.action for e in await db.audit.list(fake.guild.id)][:2] == ["channels.disallow", "channels.allow"]
    run(body, tmp_path)


def test_long_defaults_leave_disco_info_whole(tmp_path):
    """A long default prompt and many defaults, the server's and a channel's, ran /disco-info
    past 2000 characters: the allowed models and the paused intake fell off its end."""
    from tests.support.fakediscord import SECOND_CHANNEL_ID
    settings = "; ".join([
        "steps=100", "eta=0.3", "clip_guidance_scale=9000", "cut_overview=[12]*400+[4]*600",
        "cut_innercut=[4]*400+[12]*600", "cut_ic_pow=[1]*500+[2]*500", "cut_icgray_p=[0.2]*400+[0]*600",
        "tv_scale=100", "range_scale=200", "sat_scale=5000", "cutn_batches=8", "skip_steps=10",
        "perlin_init=true", "perlin_mode=color", "use_secondary_model=false", "clamp_max=0.05",
        'text_prompts="' + "a `very` long default prompt about lighthouses " * 15 + '"'])
    async def body(fake: FakeDiscord, db: Database) -> None:
        channel = fake.guild.channel(SECOND_CHANNEL_ID)
        async with fake.run_client(make_bot(tmp_path, fake)):
            await admin(fake, "defaults set", {"settings": settings})
            answer = await admin(fake, "defaults set", {"settings": settings.replace("steps=100", "steps=120"),
                                                        "channel": channel})
            assert answer.startswith(f"**Defaults set** for <#{SECOND_CHANNEL_ID}>: `clamp_max=0.05;")
            assert "text_prompts=a ˋveryˋ long default prompt about lighthouses a ˋveryˋ long…;" in answer
            await admin(fake, "intake pause", {"reason": "GPU maintenance"})
            info = (await last_answer(fake, await fake.slash("disco-info", channel_id=SECOND_CHANNEL_ID))).content
        assert len(info) <= 2000 and "\n…" not in info
        assert "This channel's defaults: `clamp_max=0.05;" in info and "steps=120" in info
        assert info.endswith("CLIP models allowed: every model\nNew jobs are **paused**: GPU maintenance")
    run(body, tmp_path)


def test_many_budgets_page_and_a_members_use_stays_in_quota_show(tmp_path):
    """With budgets for many members, `quota show user:` put the member's use after the whole
    list, so the 2000-character cut removed it; the list past that could not be read."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        for user in range(80):
            await db.quotas.set_limit(fake.guild.id, "user", "day", 600 + user,
                                      subject_id=700_000_000_000_000_000 + user, actor_id=fake.admin.id)
        async with fake.run_client(make_bot(tmp_path, fake)):
            shown = await admin(fake, "quota show", {"user": fake.member})
            assert shown.startswith(f"<@{fake.member.id}> this day: used 0 GPU-s (0.0 min) of unlimited")
            assert f"<@{fake.member.id}> this month: used" in shown and "\n…" not in shown
            subjects, page = set(), 1
            while True:
                text = await admin(fake, "quota show", {"page": page})
                subjects |= {line.split(">")[0] for line in text.split("\n") if line.startswith("• <@")}
                if "; next: " not in text:
                    break
                page += 1
            assert len(subjects) == 80 and page > 1
            answer = await admin(fake, "quota set", {"scope": "member", "window": "month", "minutes": 5})
            assert answer.startswith("**Quota set:** every member (default) — 300 GPU-s") and "\n…" not in answer
    run(body, tmp_path)


def test_pausing_intake_says_what_happens_to_the_jobs_already_queued(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        for seed in range(3):
            await queue_job(db, fake, seed=seed)
        await db.leases.claim(OWNER)
        async with fake.run_client(make_bot(tmp_path, fake)):
            paused = await admin(fake, "intake pause", {"reason": "GPU maintenance"})
            assert paused.endswith("; the 2 queued and 1 rendering carry on (their members can /cancel them).")
        assert {job.state for job in await db.jobs.list()} == {"queued", "running"}
    run(body, tmp_path)


def test_lower_limits_and_fewer_models_say_the_waiting_jobs_keep_theirs(tmp_path):
    """Limits and allowed models are checked when a job is queued: jobs already waiting keep
    their size and model, which the admin was not told."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            note = "the 2 job(s) already waiting run as they were queued (their members can /cancel them)."
            assert "already waiting" not in await admin(fake, "limits set", {"max_steps": 100})
            for seed in range(2):
                await queue_job(db, fake, seed=seed)
            limits = await admin(fake, "limits set", {"max_steps": 4, "max_queued_per_guild": 1})
            assert f"\nOnly new jobs follow these limits: {note}" in limits
            models = await admin(fake, "models allow", {"kind": "diffusion", "names": "256x256_diffusion_uncond"})
            assert f"\nOnly new jobs are checked: {note}\n" in models
        assert {(job.state, job.steps) for job in await db.jobs.list()} == {("queued", 8)}
    run(body, tmp_path)


def test_defaults_reset_offers_the_defaults_that_are_set(tmp_path):
    """`defaults reset setting:` offered the first 25 of every setting (alphabetical, so
    `steps` never showed) instead of the ones the server or the channel has set."""
    from tests.support.fakediscord import SECOND_CHANNEL_ID
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            await admin(fake, "defaults set", {"settings": "steps=120; eta=0.5"})
            await admin(fake, "defaults set", {"settings": "tv_scale=10",
                                               "channel": fake.guild.channel(SECOND_CHANNEL_ID)})
            async def offered(options):
                rec = await fake.autocomplete("disco-admin defaults reset", options, "setting", user=fake.admin)
                await fake.wait_for(lambda: fake.callbacks_for(rec.id))
                return [c["value"] for c in fake.callbacks_for(rec.id)[0].data["choices"]]
            assert await offered({"setting": ""}) == ["clip_models", "cutn_batches", "display_rate", "eta", "steps"]
            assert await offered({"setting": "ST"}) == ["steps"]
            assert await offered({"setting": "", "channel": str(SECOND_CHANNEL_ID)}) == ["tv_scale"]
    run(body, tmp_path)


def test_preset_autocomplete_shows_the_servers_presets_beside_a_members_25(tmp_path):
    """A member with 25 presets of their own filled all 25 choices: the server's presets never
    showed until their name was typed."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        for i in range(25):
            await db.presets.save(fake.guild.id, f"mine-{i:02}", '{"steps": 20}', 1, owner_id=fake.member.id)
            if i < 24:
                await db.presets.save(fake.guild.id, f"house-{i:02}", '{"steps": 30}', 1)
        await db.presets.save(fake.guild.id, "mine-00", '{"steps": 40}', 1)  # both have it: the member's
        async with fake.run_client(make_bot(tmp_path, fake)):
            rec = await fake.autocomplete("preset use", {"name": ""}, "name")
            await fake.wait_for(lambda: fake.callbacks_for(rec.id))
            choices = fake.callbacks_for(rec.id)[0].data["choices"]
            assert len(choices) == 25 and [c["value"] for c in choices] == sorted(c["value"] for c in choices)
            labels = [c["name"] for c in choices]
            assert sum(label.endswith("(server)") for label in labels) == 12
            assert "mine-00 (yours)" in labels and "mine-00 (server)" not in labels
            rec = await fake.autocomplete("preset use", {"name": "HOUSE-2"}, "name")
            await fake.wait_for(lambda: fake.callbacks_for(rec.id))
            assert [c["value"] for c in fake.callbacks_for(rec.id)[0].data["choices"]] == [
                f"house-{i}" for i in range(20, 24)]
    run(body, tmp_path)


def test_a_deleted_roles_budgets_go_with_it(tmp_path):
    """Discord offers only existing roles to `quota clear`, so a deleted role's budget would stay
    on the list for good: the bot removes it when the role is deleted, audited as the bot's."""
    async def body(fake: FakeDiscord, db: Database) -> None:
        patrons, artists = FakeRole(fake.guild.id + 7, "Patrons"), FakeRole(fake.guild.id + 8, "Artists")
        fake.guild.roles += [patrons, artists]
        async with fake.run_client(make_bot(tmp_path, fake)):
            for role, window in [(patrons, "day"), (patrons, "month"), (artists, "day")]:
                assert "**Quota set:**" in await admin(fake, "quota set", {"scope": "role", "window": window,
                                                                           "minutes": 30, "role": role})
            await fake.gateway.dispatch("GUILD_ROLE_DELETE", {"guild_id": str(fake.guild.id),
                                                              "role_id": str(patrons.id)})
            for _ in range(200):
                left = [(q.subject_id, q.window) for q in await db.quotas.limits(fake.guild.id)]
                if left == [(str(artists.id), "day")]:
                    break
                await asyncio.sleep(0.05)
            assert left == [(str(artists.id), "day")]
            assert "Patrons" not in await admin(fake, "quota show") and str(patrons.id) not in await admin(
                fake, "quota show")
        cleared = [e for e in await db.audit.list(fake.guild.id) if e.action == "quota.set"
                   and e.target == f"role:{patrons.id}" and e.detail["seconds"] is None]
        assert len(cleared) == 2 and all(e.actor_id is None for e in cleared)
    run(body, tmp_path)
