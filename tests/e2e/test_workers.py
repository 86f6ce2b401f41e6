"""The fleet end to end on PostgreSQL: two `disco worker` processes and the bot (the real
discord.py client against the loopback Discord), each process with its own temporary folder,
render and deliver 10 jobs from 3 guilds exactly once; `disco workers` lists them while they
run and not after they leave.

Files: each worker works in its own data folder and pushes every job file as a blob into the
database, from which the bot's poster reads it: nothing but PostgreSQL is shared.
"""
from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter

import pytest

from storage import Database
from tests.support import REPO_ROOT
from tests.support.bot import bot_config, has_png
from tests.support.fakediscord import DEFAULT_GUILD_ID, FakeDiscord, default_guild
from tests.support.storage import Store, skip_without_postgres
from tests.support.workers import start_worker, stop_workers, tiny_still, wait_until_live

GUILDS = (DEFAULT_GUILD_ID, DEFAULT_GUILD_ID + 1, DEFAULT_GUILD_ID + 2)
JOBS_PER_GUILD = (4, 3, 3)


def disco_workers(url: str) -> str:
    done = subprocess.run([sys.executable, "-m", "disco", "workers"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env={"DISCO_DATABASE_URL": url, "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.timeout(1500)  # two torch processes and the bot: minutes on two busy cores
def test_two_workers_and_the_bot_on_postgresql_deliver_every_job_once(tmp_path):
    from bot.client import DiscoBot

    skip_without_postgres()
    store = Store("postgresql", tmp_path)
    workers = [start_worker(store.url, tmp_path / f"worker{n}") for n in (1, 2)]

    async def main() -> None:
        async with FakeDiscord(guilds=[default_guild(g) for g in GUILDS]) as fake:
            db = await Database.open(store.url)
            try:
                await wait_until_live(db, 2, workers)
                listing = await asyncio.to_thread(disco_workers, store.url)
                assert listing.count("worker:") == 2 and "2 live of 2 registered" in listing
                bot_dir = tmp_path / "bot"
                bot = DiscoBot(bot_config(bot_dir, fake, database_url=store.url), guild_ready_timeout=0.1)
                jobs = {}
                async with fake.run_client(bot):
                    for n, (guild_id, count) in enumerate(zip(GUILDS, JOBS_PER_GUILD)):
                        channel = next(g for g in fake.guilds if g.id == guild_id).channels[0].id
                        for k in range(count):
                            job = await db.jobs.enqueue(tiny_still(guild_id, channel, 500 + k, seed=n * 10 + k))
                            jobs[job.id] = channel
                    await fake.wait_for(lambda: sum(has_png(m) for c in set(jobs.values())
                                                    for m in fake.messages_in(c)) >= len(jobs),
                                        timeout=1200, what="every result posted")
                    for _ in range(50):  # the poster records each delivery just after posting it
                        done = [await db.jobs.get(j) for j in jobs]
                        if all(j.delivery_state == "posted" for j in done):
                            break
                        await asyncio.sleep(0.1)
                posted = Counter(job_id for channel in set(jobs.values()) for m in fake.messages_in(channel)
                                 if has_png(m) for job_id in jobs if job_id in m.content)
                assert posted == Counter({job_id: 1 for job_id in jobs}), posted
                assert all(j.state == "succeeded" and j.delivery_state == "posted" for j in done)
                assert {j.lease_owner for j in done} == {None}
                fleet = {w.id: w for w in await db.workers.list()}
                assert sum(w.jobs_done for w in fleet.values()) == len(jobs)
                assert all(w.jobs_done > 0 for w in fleet.values()), "both workers took jobs"
            finally:
                await db.close()

    try:
        asyncio.run(asyncio.wait_for(main(), 1500))
        outputs = stop_workers(workers)
        assert all("Traceback" not in out for out in outputs), outputs
        assert "no workers" in disco_workers(store.url)  # a clean exit leaves the fleet
    finally:
        stop_workers(workers)
        store.drop()
