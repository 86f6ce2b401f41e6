"""`/disco-admin stats` end to end: the real bot against the loopback Discord, jobs run through
storage's engine API (no render): the empty period, a server's figures with its members as
mentions that ping no one, a non-admin refused, and a period out of bounds refused."""
from __future__ import annotations

from storage import Database
from tests.support.bot import OWNER, last_answer, make_bot, queue_job, run
from tests.support.fakediscord import FakeDiscord


async def stats(fake: FakeDiscord, options=None, *, user=None):
    """The private answer to `/disco-admin stats` (an admin's, unless `user`)."""
    rec = await fake.send_interaction(fake.guild.id, fake.channel.id, user or fake.admin,
                                      "disco-admin stats", options)
    message = await last_answer(fake, rec)
    assert message.ephemeral, message.content
    if user is None:  # an admin's answer follows a private "thinking…", as every /disco-admin one
        assert fake.callbacks_for(rec.id)[0].type == 5
    return message


def test_admin_sees_the_server_s_usage_and_a_member_is_refused(tmp_path):
    async def body(fake: FakeDiscord, db: Database) -> None:
        async with fake.run_client(make_bot(tmp_path, fake)):
            empty = (await stats(fake)).content
            assert empty.startswith("**Usage in the last 7 day(s)** (since <t:")
            assert empty.endswith("No jobs were queued and no GPU time was charged in this period.")
            await db.guilds.set_limits(fake.guild.id, max_queued_per_user=5)
            done = await queue_job(db, fake, seed=1)
            claimed = await db.leases.claim(OWNER)
            await db.leases.complete(done, claimed.attempt, OWNER, artifacts=[], gpu_seconds=90.0)
            failing = await queue_job(db, fake, seed=2)
            claimed = await db.leases.claim(OWNER)
            await db.leases.fail(failing, claimed.attempt, OWNER, code="out_of_memory", message="x",
                                 retryable=False)
            await queue_job(db, fake, seed=3)  # still waiting
            await queue_job(db, fake, seed=4, guild_id=fake.guild.id + 1)  # another server's

            message = await stats(fake, {"days": 30})
            text = message.content
            assert text.startswith("**Usage in the last 30 day(s)**")
            assert "**Jobs:** 3 — 3 still images" in text
            assert "**Outcome:** 1 succeeded · 1 failed · 1 still open" in text
            assert "**GPU time charged:** 1.5 min" in text and "**Failures:** `out_of_memory` ×1" in text
            assert "**Queue wait:** median" in text and "(2 jobs started)" in text
            assert f"1. <@{fake.member.id}> — 1.5 min (100%), 3 job(s)" in text
            mentions = message.allowed_mentions or {}
            assert not mentions.get("users") and "users" not in mentions.get("parse", [])  # no pings

            refused = (await stats(fake, user=fake.member)).content
            assert "needs the Manage Server permission" in refused and "Jobs" not in refused
            # Discord keeps days to 1-90; storage refuses a client that sends another period.
            out_of_bounds = (await stats(fake, {"days": 91})).content
            assert "days must be a whole number from 1 to 90" in out_of_bounds
    run(body, tmp_path)
