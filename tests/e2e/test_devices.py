"""`[engine] devices`: the bot's supervisor runs one engine per device (two "cpu" engines here,
on SQLite), each with its own lease owner names and its own row in the fleet; the one that
dies is restarted alone, and the jobs are delivered."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import signal

from storage import Database
from tests.support.bot import bot_config, delivered, has_png, queue_job, run
from tests.support.fakediscord import FakeDiscord


def test_one_engine_per_device_and_only_the_dead_one_restarts(tmp_path):
    from bot.client import DiscoBot

    async def body(fake: FakeDiscord, db: Database) -> None:
        config = bot_config(tmp_path, fake, spawn_engine=True)
        config = dataclasses.replace(config, engine=dataclasses.replace(config.engine, devices=("cpu", "cpu")))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(tmp_path / "models")}
        bot = DiscoBot(config, engine_env=env, guild_ready_timeout=0.1)
        async with fake.run_client(bot):
            first, second = bot.supervisors
            live = await live_workers(db, {first, second})
            assert {w.id for w in live} == {first.owner, second.owner} and first.owner != second.owner
            assert {w.device for w in live} == {"cpu"}
            second.process.send_signal(signal.SIGKILL)
            jobs = [await queue_job(db, fake) for _ in range(2)]
            for job_id in jobs:
                await fake.wait_for_message(fake.channel.id, lambda m, j=job_id: has_png(m) and j in m.content,
                                            timeout=240)
                assert (await delivered(db, job_id)).state == "succeeded"
            assert (first.starts, second.starts) == (1, 2)
            await live_workers(db, {first, second})
    run(body, tmp_path, timeout=600)


async def live_workers(db: Database, supervisors: set, timeout: float = 240.0) -> list:
    """The fleet once every supervisor's current engine is in it and live."""
    for _ in range(int(timeout / 0.2)):
        live = [w for w in await db.workers.list() if w.live]
        if {s.owner for s in supervisors} <= {w.id for w in live}:
            return live
        await asyncio.sleep(0.2)
    raise AssertionError(f"the engines of {len(supervisors)} devices did not all register")
