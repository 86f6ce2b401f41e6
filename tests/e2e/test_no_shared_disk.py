"""No shared disk: the bot and the engines each have their own data folder and share only a
PostgreSQL database. An upload, the checkpoints, the result and its preview all travel as blobs
(storage/blobs.py); a job whose engine is killed resumes on another engine, in another folder,
from the checkpoint blob alone, to the same PNG."""
from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from bot.client import DiscoBot
from engine.jobs.context import WorkerConfig
from engine.jobs.worker import serve
from storage import Database, JobRequest
from tests.support import REPO_ROOT
from tests.support.bot import FAST_DEFAULTS, bot_config, delivered, has_png
from tests.support.engine import fast_spec, tiny_pool
from tests.support.fakediscord import FakeDiscord, FakeFile
from tests.support.storage import Store, skip_without_postgres


@pytest.fixture
def postgres(tmp_path):
    skip_without_postgres()
    made = Store("postgresql", tmp_path)
    yield made
    made.drop()


def engine(url: str, data_dir, *extra: str) -> subprocess.Popen:
    """`disco engine` on the database at `url`, with its own data folder (scratch files only)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_DATABASE_URL": url}
    return subprocess.Popen([sys.executable, "-m", "disco", "engine", "--models", "test-tiny", "--device", "cpu",
                             "--data-dir", str(data_dir), "--lease-seconds", "2", "--checkpoint-every", "4",
                             *extra], cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def files_in(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_a_still_with_an_init_image_crosses_from_bot_to_engine_through_the_database(postgres, tmp_path):
    bot_dir, engine_dir = tmp_path / "bot", tmp_path / "engine"
    buffer = io.BytesIO()
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, format="PNG")
    upload = buffer.getvalue()

    async def main():
        async with FakeDiscord() as fake:
            db = await Database.open(postgres.url)
            try:
                await db.guilds.set_defaults(fake.guild.id, FAST_DEFAULTS)
                bot = DiscoBot(bot_config(bot_dir, fake, database_url=postgres.url), guild_ready_timeout=0.1)
                async with fake.run_client(bot):
                    rec = await fake.slash("disco", {
                        "prompt": "a lighthouse", "steps": 8, "width": 64, "height": 64, "seed": 7,
                        "skip_steps": 2, "init_image": FakeFile("photo.png", upload, "image/png", 64, 64)})
                    await fake.wait_for(lambda: rec.followup_ids)
                    assert fake.message(rec.followup_ids[-1]).content.startswith("**Queued**")
                    (job,) = await db.jobs.list()
                    process = await asyncio.to_thread(engine, postgres.url, engine_dir, "--burst")
                    assert await asyncio.to_thread(process.wait, 300) == 0
                    result = await fake.wait_for_message(fake.channel.id, has_png, timeout=60)
                    done = await delivered(db, job.id, timeout=30)
                ref = done.artifacts[0]
                posted = next(data for name, data in result.files.items() if name.endswith(".png"))
                stored_upload = await db.blobs.get(json.loads(job.spec_json)["init_image"])
                return done, stored_upload, posted, await db.blobs.get(ref), await db.blobs.job_files(job.id)
            finally:
                await db.close()

    done, stored_upload, posted, result, files = asyncio.run(asyncio.wait_for(main(), 400))
    assert done.state == "succeeded" and stored_upload == upload
    assert posted == result  # the bot posted the engine's PNG, read from PostgreSQL
    assert {f.role for f in files} >= {"input", "checkpoint", "output"}
    # Nothing crossed a disk: the bot kept no job file, the engine no database and no blob, and
    # the engine's scratch folder went with the job.
    assert not any(name.startswith(("blobs", "scratch", "jobs", "uploads")) for name in files_in(bot_dir))
    assert files_in(engine_dir) == []


def test_kill_9_of_an_engine_resumes_on_another_engine_from_the_checkpoint_blob(postgres, tmp_path, caplog):
    spec = fast_spec(steps=16, seed=21)  # a checkpoint (every 4) by step 8, and steps left after it

    async def enqueue():
        async with await Database.open(postgres.url) as db:
            return [(await db.jobs.enqueue(JobRequest(
                guild_id=1, channel_id=2, user_id=3, kind="still", spec_json=spec.to_json(), spec_version=1,
                model_set="test-tiny", width=64, height=64, steps=16))).id for _ in range(2)]

    async def state(job_id: str):
        async with await Database.open(postgres.url) as db:
            return await db.jobs.get(job_id)

    crashed, reference = asyncio.run(enqueue())
    first = engine(postgres.url, tmp_path / "first")
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            job = asyncio.run(state(crashed))
            if job.checkpoint_path and job.progress_step >= 8:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("no checkpoint within 240 s")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    time.sleep(2.2)  # the dead engine's lease runs out
    # The second engine runs in this process (no second interpreter's start-up to wait for);
    # it never saw the first one's memory, and only the database is shared with it.
    with caplog.at_level("INFO", logger="disco.engine"):
        assert asyncio.run(serve(tmp_path / "second", tiny_pool(), burst=True, database=postgres.url,
                                 config=WorkerConfig(lease_seconds=2, checkpoint_every=4))) == 2
    assert f"job {crashed}: resuming at image 0 (from its checkpoint)" in caplog.messages

    async def results():
        async with await Database.open(postgres.url) as db:
            resumed, whole = await db.jobs.get(crashed), await db.jobs.get(reference)
            return resumed, await db.blobs.get(resumed.artifacts[0]), await db.blobs.get(whole.artifacts[0])

    resumed, resumed_png, reference_png = asyncio.run(results())
    assert resumed.state == "succeeded" and resumed.attempt == 2
    assert resumed_png == reference_png
    assert files_in(tmp_path / "second") == []
