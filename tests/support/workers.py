"""`disco worker` processes for the fleet tests and benchmarks/worker_bench.py: each in its own
folder (data dir, model cache, the file holding the database URL), started, waited for until
the fleet shows it live, and stopped with SIGTERM (a clean exit leaves the fleet)."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from engine.spec.render import SCHEMA_VERSION, RenderSpec
from storage import Database, JobRequest
from tests.support import REPO_ROOT

TINY_STILL = {"cutn_batches": 1, "clip_models": ["ViT-B-32::openai"], "display_rate": 2, "width": 64,
              "height": 64, "skip_steps": 0, "n_batches": 1}


def start_worker(url: str, folder: Path, *extra: str, threads: int = 1) -> subprocess.Popen:
    """A `disco worker` on the CPU with test-tiny models, its own folder under `folder`, and the
    URL in a file (never on the command line). The environment has no Discord token. `threads`:
    torch's CPU threads (OMP_NUM_THREADS; 0 = torch's default, every core), so several workers
    on one small machine do not fight over its cores."""
    folder.mkdir(parents=True, exist_ok=True)
    url_file = folder / "database-url"
    url_file.write_text(url)
    env = {k: v for k, v in os.environ.items() if k not in ("DISCORD_TOKEN", "DISCO_DATABASE_URL")}
    env["HF_HUB_OFFLINE"] = "1"
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    log_path = folder / "worker.log"
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would stall a long run's worker
        process = subprocess.Popen(
            [sys.executable, "-m", "disco", "worker", "--database-file", str(url_file), "--device", "cpu",
             "--models", "test-tiny", "--data-dir", str(folder / "data"), "--models-dir", str(folder / "models"),
             "--lease-seconds", "20", "--checkpoint-every", "4", *extra],
            cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_path  # type: ignore[attr-defined]  # its output, for the caller
    return process


async def wait_until_live(db: Database, count: int, processes: list[subprocess.Popen],
                          timeout: float = 240.0) -> None:
    """Until `count` workers are live in the fleet (a process that exits first fails)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while sum(w.live for w in await db.workers.list()) < count:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"worker exited with {process.returncode}: {process.log_path.read_text()}")
        if loop.time() > deadline:
            raise AssertionError(f"fewer than {count} workers live after {timeout:.0f} s")
        await asyncio.sleep(0.2)


def stop_workers(processes: list[subprocess.Popen], grace: float = 30.0) -> list[str]:
    """SIGTERM each, then wait (kill after `grace`); their output."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    outputs = []
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        outputs.append(process.log_path.read_text())
    return outputs


def tiny_still(guild: int, channel: int, user: int, seed: int, steps: int = 4) -> JobRequest:
    """A prompt-only still on test-tiny, as the bot would queue it."""
    spec = RenderSpec.from_dict({**TINY_STILL, "text_prompts": "a lighthouse", "steps": steps, "seed": seed})
    return JobRequest(guild_id=guild, channel_id=channel, user_id=user, kind="still",
                      spec_json=spec.to_json(), spec_version=SCHEMA_VERSION, model_set="test-tiny",
                      width=64, height=64, steps=steps, seed=seed)
