"""How fast the bot acknowledges `/disco` under load: N simultaneous commands across G guilds.

    .venv/bin/python benchmarks/bot_latency.py [--count 50] [--guilds 10] [--busy-engine]

The real `DiscoBot` (discord.py, storage on a temporary SQLite file, the poster running, no
engine of its own) talks to the loopback Discord of the tests (`tests/support/fakediscord`). All
interactions are dispatched at once; for each one the fake records when the bot's deferral
(callback type 5) arrived and when the echo follow-up ("**Queued** ...") arrived, both measured
from the moment the fake sent INTERACTION_CREATE. Discord's deadline for the deferral is 3 s;
the project's target is p99 < 250 ms for 50 commands over 10 guilds.

`--busy-engine` also runs `disco engine --models test-tiny --device cpu` on the same database
and waits until it is rendering a warm-up job before the burst, so the bot shares the CPU and the
SQLite file with a working engine (as on a real host, where the engine's Python process
competes with the bot for the CPU and for the database's write lock).

Prints one JSON object. Importing this module has no side effects beyond making the repository
root importable (the fake lives in `tests/`, which is not an installed package).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/bot_latency.py` puts only benchmarks/ on the path
    sys.path.insert(0, str(ROOT))

# Cheap settings every guild gets as defaults, so the jobs (and a busy engine's renders) stay small.
FAST_DEFAULTS = {"cutn_batches": 1, "clip_models": ["ViT-B-32::openai"], "display_rate": 5}
# Ids far from tests/support/fakediscord's defaults so they read as "benchmark" in any log.
GUILD_BASE = 210000000000000000
CHANNEL_BASE = 410000000000000000
USER_BASE = 510000000000000000
KEYS = ("count", "guilds", "busy_engine", "p50_ms", "p90_ms", "p99_ms", "max_ms", "all_deferred",
        "deferred", "queued", "echo_p50_ms", "echo_p99_ms", "echo_max_ms", "wall_s")


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def make_guilds(count: int):
    """`count` guilds, each with one text channel, an owner and one ordinary member."""
    from tests.support.fakediscord import FakeChannel, FakeGuild, FakeMember, FakeUser

    guilds = []
    for k in range(count):
        owner = FakeUser(USER_BASE + 10 * k, f"owner{k}")
        member = FakeUser(USER_BASE + 10 * k + 1, f"member{k}")
        guilds.append(FakeGuild(id=GUILD_BASE + k, name=f"Bench Guild {k}", owner_id=owner.id,
                                channels=[FakeChannel(CHANNEL_BASE + k, "general")],
                                members=[FakeMember(owner), FakeMember(member)]))
    return guilds


def bot_config(data_dir: Path, fake):
    """The bot as an operator would run it (default poll/edit rates), but with no engine child."""
    from bot.config import BotConfig, EngineSettings

    return BotConfig(data_dir=data_dir, api_base=fake.api_base, gateway_url=fake.gateway_url,
                     dev_guild_id=fake.guild.id, spawn_engine=False,
                     engine=EngineSettings(model_set="test-tiny", device="cpu"))


def engine_env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(data_dir / "models"),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


async def start_busy_engine(db, data_dir: Path, guild, timeout: float) -> subprocess.Popen:
    """Queue a long warm-up render, start `disco engine` and return once it is rendering it."""
    from engine.spec.render import SCHEMA_VERSION, RenderSpec
    from storage import JobKind, JobRequest

    spec = RenderSpec.from_dict({**FAST_DEFAULTS, "text_prompts": "warm-up", "width": 128, "height": 128,
                                 "steps": 500, "skip_steps": 0, "seed": 1, "n_batches": 1})
    job = await db.jobs.enqueue(JobRequest(
        guild_id=guild.id, channel_id=guild.channels[0].id, user_id=guild.owner_id, kind=JobKind.STILL,
        spec_json=spec.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny", width=128,
        height=128, steps=500, seed=1))
    # The engine's log goes to a file: a pipe nobody reads would block it once full.
    with open(data_dir / "engine.log", "wb") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "disco", "engine", "--models", "test-tiny", "--device", "cpu",
             "--data-dir", str(data_dir)], env=engine_env(data_dir), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while (await db.jobs.get(job.id)).progress_step < 1:
        if process.poll() is not None:
            tail = (data_dir / "engine.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the engine exited with {process.returncode} before rendering:\n{tail}")
        if time.monotonic() > deadline:
            stop_engine(process)
            raise TimeoutError(f"the engine did not start rendering within {timeout} s")
        await asyncio.sleep(0.2)
    return process


def stop_engine(process: subprocess.Popen) -> None:
    """SIGTERM (the engine's graceful stop), then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def echo_delay(fake, record) -> Optional[float]:
    """Seconds from INTERACTION_CREATE to the first follow-up POST (the echo or a refusal)."""
    posts = [r for r in fake.requests if r.method == "POST" and r.path.startswith("/webhooks/")
             and r.path.endswith(record.token) and 200 <= r.status < 300]
    return posts[0].mono - record.mono if posts else None


def summarize(fake, records, *, guilds: int, busy_engine: bool, wall: float) -> dict:
    deferrals, echoes, deferred, queued = [], [], 0, 0
    for record in records:
        callbacks = fake.callbacks_for(record.id)
        if callbacks:
            deferrals.append(callbacks[0].delay)
            deferred += callbacks[0].type == 5
        delay = echo_delay(fake, record)
        if delay is not None:
            echoes.append(delay)
        queued += any(m.content.startswith("**Queued**") for m in fake.followups_for(record.id))

    def ms(values, q):
        return round(percentile(values, q) * 1000.0, 1)

    return {
        "count": len(records), "guilds": guilds, "busy_engine": busy_engine,
        "p50_ms": ms(deferrals, 50), "p90_ms": ms(deferrals, 90), "p99_ms": ms(deferrals, 99),
        "max_ms": ms(deferrals, 100), "all_deferred": deferred == len(records), "deferred": deferred,
        "queued": queued, "echo_p50_ms": ms(echoes, 50), "echo_p99_ms": ms(echoes, 99),
        "echo_max_ms": ms(echoes, 100), "wall_s": round(wall, 2),
        "fake_errors": [repr(e) for e in fake.errors],
    }


async def measure(data_dir: Path, *, count: int = 50, guilds: int = 10, busy_engine: bool = False,
                  engine_timeout: float = 180.0, settle_timeout: float = 60.0) -> dict:
    """Run one burst of `count` `/disco` commands spread evenly over `guilds` guilds."""
    from bot.client import DiscoBot
    from storage import Database
    from tests.support.fakediscord import FakeDiscord

    per_guild = -(-count // guilds)  # ceiling: every command must fit under the guild caps
    async with FakeDiscord(make_guilds(guilds)) as fake:
        db = await Database.open(data_dir / "disco.db")
        engine = None
        try:
            for guild in fake.guilds:
                await db.guilds.set_defaults(guild.id, FAST_DEFAULTS)
                await db.guilds.set_limits(guild.id, max_queued_per_user=per_guild + 1,
                                           max_queued_per_guild=per_guild + 1)
            if busy_engine:
                engine = await start_busy_engine(db, data_dir, fake.guild, engine_timeout)
            bot = DiscoBot(bot_config(data_dir, fake), guild_ready_timeout=0.1)
            async with fake.run_client(bot):
                # Round-robin over guilds, so each guild gets count/guilds commands.
                sends = []
                for n in range(count):
                    guild = fake.guilds[n % guilds]
                    options = {"prompt": f"a lighthouse in a storm {n}:2 | yellow:-0.5", "steps": 10,
                               "width": 64, "height": 64}
                    sends.append(fake.slash("disco", options, guild_id=guild.id))
                started = time.perf_counter()
                records = await asyncio.gather(*sends)
                await fake.wait_for(lambda: all(r.followup_ids for r in records), timeout=settle_timeout,
                                    what="for every echo")
                wall = time.perf_counter() - started
        finally:
            if engine is not None:
                await asyncio.to_thread(stop_engine, engine)
            await db.close()
        return summarize(fake, records, guilds=guilds, busy_engine=busy_engine, wall=wall)


def run_benchmark(*, count: int = 50, guilds: int = 10, busy_engine: bool = False,
                  data_dir: Optional[Path] = None, **kwargs) -> dict:
    """Synchronous entry point (a fresh event loop); a temporary data dir unless one is given."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="disco-bench-")))
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        return asyncio.run(measure(Path(data_dir), count=count, guilds=guilds, busy_engine=busy_engine,
                                   **kwargs))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50, help="simultaneous /disco commands (default 50)")
    parser.add_argument("--guilds", type=int, default=10, help="guilds they are spread over (default 10)")
    parser.add_argument("--busy-engine", action="store_true",
                        help="run `disco engine --models test-tiny` on the same database during the burst")
    parser.add_argument("--dir", type=Path, help="keep the database and logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.count < 1 or args.guilds < 1:
        parser.error("--count and --guilds must be at least 1")
    result = run_benchmark(count=args.count, guilds=args.guilds, busy_engine=args.busy_engine,
                           data_dir=args.dir)
    print(json.dumps(result))
    return 0 if result["all_deferred"] else 1


if __name__ == "__main__":
    sys.exit(main())
