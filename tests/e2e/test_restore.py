"""The restore drill: a running install backed up with the real `disco db backup`, everything
stopped, the backup restored, and the bot (against the loopback Discord) and a real engine (the
`test-tiny` models) started on the restored install. Every job is delivered, once:

- the install at the backup: one result posted, one finished but not yet posted (the original
  bot posts it after the snapshot), one job rendering with a checkpoint (its engine killed after
  the backup: its lease is held by an owner that is gone), two queued;
- restored with `disco db restore` into a new data folder, or with `disco db migrate --from` the
  backup into an empty database (PostgreSQL when the tests have one, else SQLite);
- then: the queued jobs render and are posted once; the rendering one resumes from its
  checkpoint (attempt 2, not from step 0) once its lease runs out and is posted once; the one
  posted before the backup is not posted again; the one posted after it is posted again only
  when the restore comes after Discord's nonce window (README "Backups" says so), and so is
  the progress message of a job queued then; the restored install takes new work (/disco).

The engine runs in the test's process (its models loaded once): the same worker loop `disco
engine` runs, without a second interpreter's start-up.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.client import DiscoBot
from engine.jobs.context import WorkerConfig
from engine.jobs.worker import EngineWorker
from engine.spec.render import SCHEMA_VERSION, RenderSpec
from storage import Database, JobRequest
from tests.support import REPO_ROOT
from tests.support.bot import FAST_DEFAULTS, bot_config, delivered, finish, has_png, job_id_in, queue_job
from tests.support.engine import tiny_pool
from tests.support.fakediscord import FakeDiscord
from tests.support.storage import Store, postgres_url

OLD_ENGINE = "engine:old-host:4242:1"
QUICK = WorkerConfig(lease_seconds=2.0, heartbeat_seconds=0.5, checkpoint_every=4, poll_seconds=0.2)


@dataclass
class Drill:
    backup: Path
    printed: str
    posted: str          # delivered before the backup
    unposted: str        # finished before the backup, delivered after it by the original bot
    running: str         # rendering at the backup, with a checkpoint
    queued: list[str]


def disco(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISCO_DATABASE_URL")}
    return subprocess.run([sys.executable, "-m", "disco", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


async def queue_long(db: Database, fake: FakeDiscord) -> str:
    """A still long enough to be caught between checkpoints (every 4 of its 24 steps)."""
    spec = RenderSpec.from_dict({**FAST_DEFAULTS, "text_prompts": "a lighthouse", "width": 64, "height": 64,
                                 "steps": 24, "skip_steps": 0, "seed": 21, "n_batches": 1})
    job = await db.jobs.enqueue(JobRequest(
        guild_id=fake.guild.id, channel_id=fake.channel.id, user_id=fake.member.id, kind="still",
        spec_json=spec.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=64, height=64,
        steps=24, seed=21))
    return job.id


def start_bot(data: Path, fake: FakeDiscord, url: str = "") -> DiscoBot:
    return DiscoBot(bot_config(data, fake, database_url=url), guild_ready_timeout=0.1)


async def running_install(fake: FakeDiscord, data: Path) -> Drill:
    """The original install, backed up by `disco db backup` while its engine renders; then
    everything stops (the engine as if killed: its lease stays held)."""
    db = await Database.open(data / "disco.db")
    try:
        await db.guilds.set_defaults(fake.guild.id, FAST_DEFAULTS)
        posted = await queue_job(db, fake, seed=1)
        await finish(db, data, posted)
        async with fake.run_client(start_bot(data, fake)):
            await delivered(db, posted, timeout=30)
        unposted = await queue_job(db, fake, seed=2)
        await finish(db, data, unposted, color=(20, 80, 200))
        running = await queue_long(db, fake)
        queued = [await queue_job(db, fake, seed=seed) for seed in (3, 4)]
        engine = EngineWorker(db, tiny_pool(), data / "engine", owner=OLD_ENGINE, config=QUICK)
        rendering = asyncio.create_task(engine.run())
        try:
            for _ in range(1200):
                job = await db.jobs.get(running)
                if job.checkpoint_path and job.progress_step >= 8:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("no checkpoint within 60 s")
            made = await asyncio.to_thread(disco, "db", "backup", "--data-dir", str(data))
            assert made.returncode == 0, made.stderr
        finally:
            # Everything stops. What the engine does to the original install from here on is
            # after the snapshot: in the backup its job is running, under a lease whose owner
            # is gone, with the checkpoint it had stored.
            engine.stop()
            rendering.cancel()
            await asyncio.gather(rendering, return_exceptions=True)
        async with fake.run_client(start_bot(data, fake)):  # posted after the snapshot
            await delivered(db, unposted, timeout=30)
    finally:
        await db.close()
    backup = Path(made.stdout.split("verified: ", 1)[1].split(" (", 1)[0])
    return Drill(backup, made.stdout, posted, unposted, running, queued)


async def run_restored(fake: FakeDiscord, data: Path, url: str, drill: Drill, then=None) -> Database:
    """The bot and an engine on the restored install until every job is posted; then
    `await then(fake, db)` while they still run."""
    db = await Database.open(url)
    try:
        # A backup holds no fleet (storage/transfer.py copies no `workers` rows): the killed
        # engine is not listed as live; only its lease remains, and runs out like any dead one's.
        assert await db.workers.list() == []
        assert (await db.jobs.get(drill.running)).state == "running"
        engine = EngineWorker(db, tiny_pool(), data / "engine", owner="engine:new-host:7:1", config=QUICK)
        rendering = asyncio.create_task(engine.run())
        try:
            async with fake.run_client(start_bot(data, fake, url)):
                for job_id in (drill.unposted, drill.running, *drill.queued):
                    await delivered(db, job_id, timeout=90)
                if then is not None:
                    await then(fake, db)
        finally:
            engine.stop()
            await asyncio.wait_for(rendering, 30)
    except BaseException:
        await db.close()
        raise
    return db


def results_of(fake: FakeDiscord, job_id: str) -> list:
    return [m for m in fake.messages_in(fake.channel.id) if has_png(m) and job_id in m.content]


async def check_each_delivered(fake: FakeDiscord, db: Database, drill: Drill, *, unposted_times: int) -> None:
    resumed = await db.jobs.get(drill.running)
    assert resumed.state == "succeeded" and resumed.attempt == 2
    for job_id in (drill.posted, drill.running, *drill.queued):
        assert len(results_of(fake, job_id)) == 1, job_id
    assert len(results_of(fake, drill.unposted)) == unposted_times


def test_a_backup_restored_with_disco_db_restore_delivers_every_job_once(tmp_path, caplog):
    async def main():
        async with FakeDiscord() as fake:
            drill = await running_install(fake, tmp_path / "data")
            assert f"disco db restore {drill.backup}" in drill.printed
            restored = tmp_path / "restored"
            done = await asyncio.to_thread(disco, "db", "restore", "--data-dir", str(restored), str(drill.backup))
            assert done.returncode == 0, done.stderr
            with caplog.at_level("INFO", logger="disco.engine"):
                db = await run_restored(fake, restored, f"sqlite:///{restored / 'disco.db'}", drill)
            try:
                # Within Discord's nonce window the result posted after the snapshot is
                # returned, not posted again: the nonce is the job's, the same on both installs.
                await check_each_delivered(fake, db, drill, unposted_times=1)
                for job_id in drill.queued:  # its progress message too: found again, then edited
                    shown = [m for m in fake.messages_in(fake.channel.id)
                             if not has_png(m) and f"`{job_id}`" in m.content]
                    assert [m.content.split()[0] for m in shown] == ["**Done**"], job_id
            finally:
                await db.close()
            assert not fake.errors, fake.errors
        assert f"job {drill.running}: resuming at image 0 (from its checkpoint)" in caplog.messages

    asyncio.run(asyncio.wait_for(main(), 170))


async def new_work(fake: FakeDiscord, db: Database) -> None:
    """The restored install takes new work: /disco queues a job (its ids and the queue's
    counters carried on from the backup) and its result is posted."""
    rec = await fake.slash("disco", {"prompt": "a harbour", "steps": 8, "width": 64, "height": 64})
    await fake.wait_for(lambda: rec.followup_ids, 30, "for the echo")
    echo = fake.message(rec.followup_ids[-1]).content
    assert echo.startswith("**Queued**"), echo
    job_id = job_id_in(echo)
    await delivered(db, job_id, timeout=60)
    assert len(results_of(fake, job_id)) == 1


@pytest.mark.parametrize("kind", ["postgresql" if postgres_url() else "sqlite"])
def test_a_backup_migrated_into_an_empty_database_delivers_every_job_and_says_what_it_posts_twice(
        tmp_path, caplog, kind):
    target = Store(kind, tmp_path)

    async def main():
        # Discord's nonce window passed before the restore: the result posted after the backup
        # was taken cannot be recognised and is posted a second time (README "Backups").
        async with FakeDiscord(nonce_window=0.0) as fake:
            drill = await running_install(fake, tmp_path / "data")
            done = await asyncio.to_thread(disco, "db", "migrate", "--from", f"sqlite:///{drill.backup / 'disco.db'}",
                                           "--to", target.url)
            assert done.returncode == 0, done.stderr
            with caplog.at_level("INFO", logger="disco.engine"):
                db = await run_restored(fake, tmp_path / "restored", target.url, drill, then=new_work)
            try:
                await check_each_delivered(fake, db, drill, unposted_times=2)
                # The progress messages the original bot posted after the snapshot are unknown
                # to the backup too: each queued job gets a second one, and the first is left
                # showing "Queued" (README "Backups").
                for job_id in drill.queued:
                    shown = [m for m in fake.messages_in(fake.channel.id)
                             if not has_png(m) and f"`{job_id}`" in m.content]
                    assert [m.content.split()[0] for m in shown] == ["**Queued**", "**Done**"], job_id
            finally:
                await db.close()
            assert not fake.errors, fake.errors
        assert f"job {drill.running}: resuming at image 0 (from its checkpoint)" in caplog.messages

    try:
        asyncio.run(asyncio.wait_for(main(), 170))
    finally:
        target.drop()
