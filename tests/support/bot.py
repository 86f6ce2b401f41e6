"""Shared helpers for the bot's end-to-end tests: a BotConfig/DiscoBot pointed at a FakeDiscord,
a runner that opens the test-side Database, a queued job, waits for delivery.

Moved out of tests/e2e/test_supervised_engine.py so the button and job-command tests reuse them.
"""
from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from PIL import Image

from bot.client import DiscoBot
from bot.config import BotConfig, EngineSettings
from engine.spec.render import SCHEMA_VERSION, RenderSpec
from storage import Database, JobRequest
from tests.support.fakediscord import FakeDiscord

# Small enough for a CPU render in about a second once the engine is up.
FAST_DEFAULTS = {"cutn_batches": 1, "clip_models": ["ViT-B-32::openai"], "display_rate": 2}
OWNER = "engine:test:1"


def bot_config(tmp_path: Path, fake: FakeDiscord, *, spawn_engine: bool = False, **overrides) -> BotConfig:
    return BotConfig(data_dir=tmp_path, api_base=fake.api_base, gateway_url=fake.gateway_url,
                     dev_guild_id=fake.guild.id, poll_seconds=0.1, status_edit_seconds=0.2,
                     preview_seconds=0.2, spawn_engine=spawn_engine, engine_restart_max_seconds=2.0,
                     engine_stop_seconds=5.0,
                     engine=EngineSettings(model_set="test-tiny", device="cpu", lease_seconds=10.0,
                                           checkpoint_every=4), **overrides)


def make_bot(tmp_path: Path, fake: FakeDiscord, **kwargs) -> DiscoBot:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(tmp_path / "models")}
    return DiscoBot(bot_config(tmp_path, fake, **kwargs), engine_env=env, guild_ready_timeout=0.1)


def run(body, tmp_path: Path, timeout: float = 180.0, **fake_kwargs) -> None:
    """Start a FakeDiscord and a test-side Database on tmp_path, run ``body(fake, db)``."""
    async def main():
        async with FakeDiscord(**fake_kwargs) as fake:
            db = await Database.open(tmp_path / "disco.db")
            try:
                await db.guilds.set_defaults(fake.guild.id, FAST_DEFAULTS)
                await body(fake, db)
            finally:
                await db.close()
            assert not fake.errors, fake.errors
            assert not fake.unhandled, [(r.method, r.path) for r in fake.unhandled]
    asyncio.run(asyncio.wait_for(main(), timeout))


def write_png(path: Path, color=(200, 80, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), color).save(path)
    return path


async def queue_job(db: Database, fake: FakeDiscord, *, guild_id: int | None = None, seed: int = 7) -> str:
    """A 64×64 still of the test member's; in the fake's guild unless `guild_id` names another."""
    spec = RenderSpec.from_dict({**FAST_DEFAULTS, "text_prompts": "a lighthouse", "width": 64, "height": 64,
                                 "steps": 8, "skip_steps": 0, "seed": seed, "n_batches": 1})
    job = await db.jobs.enqueue(JobRequest(
        guild_id=guild_id or fake.guild.id, channel_id=fake.channel.id, user_id=fake.member.id, kind="still",
        spec_json=spec.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64,
        steps=8, seed=seed))
    return job.id


async def queue_animation(db: Database, fake: FakeDiscord):
    """A 10-frame 64×64 2D animation of the test member's; the queued Job."""
    from engine.spec.animation import AnimationSpec  # only the animation tests need it

    anim = AnimationSpec.from_dict({"render": {"text_prompts": "a lighthouse", "width": 64, "height": 64,
                                               "steps": 4, "seed": 3}, "max_frames": 10})
    return await db.jobs.enqueue(JobRequest(
        guild_id=fake.guild.id, channel_id=fake.channel.id, user_id=fake.member.id, kind="animation",
        spec_json=anim.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64,
        steps=2, seed=3, frames=10))


async def delivered(db: Database, job_id: str, timeout: float = 5.0, *, state: str = "posted"):
    """The job once the poster has recorded its delivery as `state` (it posts first, then
    records; "abandoned": given up)."""
    for _ in range(int(timeout / 0.05)):
        job = await db.jobs.get(job_id)
        if job.delivery_state == state:
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id}'s delivery is {job.delivery_state}, not {state}")


def has_png(message) -> bool:
    """A result message: a rendered PNG (the progress message's preview.png does not count)."""
    return any(name.endswith(".png") and name != "preview.png" for name in message.files)


async def finish(db: Database, tmp_path: Path, job_id: str, color=(200, 80, 20)) -> Path:
    """Play the engine: claim the next job (it must be `job_id`) and complete it with one PNG,
    stored as the job's blob as the engine stores it."""
    job = await db.leases.claim(OWNER)
    assert job.id == job_id
    png = write_png(tmp_path / "engine" / job_id / "out_0.png", color)
    ref = await db.blobs.put(png.read_bytes(), "out_0.png", job_id=job_id, role="output",
                             fence=(job.attempt, OWNER))
    await db.leases.complete(job_id, job.attempt, OWNER, artifacts=[ref], gpu_seconds=1.0)
    return png


def answer(fake: FakeDiscord, rec):
    """The ephemeral answer of a deferred click (the follow-up fills the placeholder)."""
    cb = fake.callbacks_for(rec.id)[0]
    assert cb.type == 5 and cb.delay < 3.0
    message = fake.original_response(rec.id)
    assert message is not None and message.ephemeral
    return message


async def click(fake: FakeDiscord, message_id: int, custom_id: str, **kwargs):
    rec = await fake.click(message_id, custom_id, **kwargs)
    await fake.wait_for(lambda: fake.original_response(rec.id) is not None
                        and not fake.original_response(rec.id).loading, 15, "for the click's answer")
    return rec, answer(fake, rec)


def job_id_in(text: str) -> str:
    return re.search(r"`([0-9A-Z]{26})`", text).group(1)


async def answered(fake: FakeDiscord, rec):
    """The caller's answer to a deferred command or submit (the follow-up fills the placeholder)."""
    await fake.wait_for(lambda: fake.original_response(rec.id) is not None
                        and not fake.original_response(rec.id).loading, 30, "for the answer")
    return fake.original_response(rec.id)


async def last_answer(fake: FakeDiscord, rec):
    """The last message the bot showed for interaction `rec` (response or follow-up)."""
    def last():
        if rec.followup_ids:
            return fake.message(rec.followup_ids[-1])
        original = fake.original_response(rec.id)
        return original if original is not None and original.content else None
    return await fake.wait_for(last, what=f"an answer to interaction {rec.id}")


def form_values(modal: dict) -> dict[str, str]:
    """What a modal shows pre-filled: input custom_id -> its default text."""
    inputs = [node["component"] for node in modal["components"] if node["type"] == 18]
    return {text_input["custom_id"]: text_input.get("value", "") for text_input in inputs}
