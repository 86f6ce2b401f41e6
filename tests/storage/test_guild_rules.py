"""Server rules admins set (on both backends): channel defaults over the server's, allowed
diffusion and CLIP models, the most images per job, and the refund of an undelivered result."""
from __future__ import annotations

import pytest

from storage import ChannelNotAllowed, IntakePaused, InvalidValue
from storage.migrations import MIGRATIONS, OWN_TABLES
from storage.pg_schema import PG_MIGRATIONS
from tests.support.storage import async_test, open_db, request

OWNER = "engine:rules"


def test_both_backends_have_the_same_steps() -> None:
    assert [m.description for m in MIGRATIONS] == [m.description for m in PG_MIGRATIONS]
    assert "channel_defaults" in OWN_TABLES


@async_test
async def test_check_intake_says_what_enqueue_would_refuse(store):
    """A command asks before it asks the member for more (the paint form); the queue's insert
    refuses the same in its transaction."""
    async with await open_db(store) as db:
        (await db.guilds.get(1)).check_intake(77)  # every channel, no pause
        await db.guilds.allow_channel(1, 78)
        with pytest.raises(ChannelNotAllowed, match="renders are not allowed in this channel; use <#78>"):
            (await db.guilds.get(1)).check_intake(77)
        await db.guilds.pause_intake(1, "new GPU")
        with pytest.raises(IntakePaused, match=r"paused new renders \(new GPU\); try again later"):
            (await db.guilds.get(1)).check_intake(78)
        with pytest.raises(IntakePaused):
            await db.jobs.enqueue(request(channel_id=78))


@async_test
async def test_channel_defaults_lie_over_the_servers(store):
    async with await open_db(store) as db:
        await db.guilds.set_defaults(1, {"steps": 150, "eta": 0.5}, actor_id=5)
        settings = await db.guilds.set_defaults(1, {"steps": 60}, channel_id=77, actor_id=5)
        assert settings.defaults_for(77) == {"steps": 60, "eta": 0.5}
        assert settings.defaults_for(78) == settings.defaults_for(None) == {"steps": 150, "eta": 0.5}
        settings = await db.guilds.set_defaults(1, {}, channel_id=77, actor_id=5)
        assert settings.channel_defaults == {} and settings.defaults_for(77)["steps"] == 150
        assert (await db.guilds.get(2)).defaults_for(77) == {}
        actions = [(e.action, e.target, e.detail) for e in await db.audit.list(1)]
        assert actions[:2] == [("defaults.reset", "77", {}), ("defaults.set", "77", {"steps": 60})]
        with pytest.raises(InvalidValue, match="20,000 characters"):
            await db.guilds.set_defaults(1, {"text_prompts": "x" * 20_001}, channel_id=77)


@async_test
async def test_allowed_models_and_max_images(store):
    async with await open_db(store) as db:
        assert (await db.guilds.get(1)).allowed_clip_models is None  # every model
        settings = await db.guilds.set_allowed_models(1, "clip", ["RN50::openai", "ViT-B-32::openai"],
                                                      actor_id=5)
        assert settings.allowed_clip_models == ("RN50::openai", "ViT-B-32::openai")
        assert settings.allowed_models is None
        settings = await db.guilds.set_allowed_models(1, "diffusion", ["256x256_diffusion_uncond"])
        assert settings.allowed_models == ("256x256_diffusion_uncond",)
        assert (await db.guilds.set_allowed_models(1, "clip", None)).allowed_clip_models is None
        with pytest.raises(InvalidValue, match="allow 1 to 64 model names"):
            await db.guilds.set_allowed_models(1, "clip", [])
        with pytest.raises(InvalidValue, match="choose diffusion or clip"):
            await db.guilds.set_allowed_models(1, "secondary", ["x"])
        assert (await db.guilds.get(1)).limits.max_images == 4
        assert (await db.guilds.set_limits(1, max_images=2)).limits.max_images == 2
        entries = [(e.action, e.detail) for e in await db.audit.list(1)]
        assert ("models.clip.allow", {"models": "every"}) in entries
        assert ("models.clip.allow", {"models": ["RN50::openai", "ViT-B-32::openai"]}) in entries


@async_test
async def test_an_abandoned_delivery_is_refunded_once(store):
    async with await open_db(store) as db:
        job = await db.jobs.enqueue(request())
        claimed = await db.leases.claim(OWNER)
        await db.leases.complete(claimed.id, claimed.attempt, OWNER, artifacts=[], gpu_seconds=40)
        assert (await db.quotas.status(1, 10))["day"].user_used == 40
        await db.jobs.begin_delivery(job.id)
        await db.jobs.abandon_delivery(job.id)
        await db.jobs.abandon_delivery(job.id)  # a second call refunds nothing more
        assert (await db.quotas.status(1, 10))["day"].user_used == 0
        refunds = [e for e in await db.audit.list(1) if e.action == "quota.refund"]
        assert len(refunds) == 1 and refunds[0].actor_id is None and refunds[0].target == job.id
        assert refunds[0].detail == {"seconds": 40, "reason": "the result could not be delivered"}
