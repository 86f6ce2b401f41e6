"""The supervisor: runs `disco engine` as a child process of the bot and keeps it running.
With `[engine] devices`, the bot runs one supervisor per device (`supervise_devices`), each
with its own lease owner names, so a dying engine's jobs go back to the queue and only that
engine restarts.

The engine is a separate process because it imports torch and holds the GPU; the bot must stay
responsive (3 s to answer an interaction) whatever the engine does. Each start gets a fresh
lease owner name (`--owner`), so when a child dies the supervisor can hand its jobs straight
back to the queue with `requeue_owned_by` instead of waiting for their leases to expire.

A child that exits is restarted after a back-off that doubles up to `max_backoff` seconds and
resets once a child has lived a minute (a crash loop must not spin the CPU or flood the log).
`stop()` sends SIGTERM (the engine stops its job at the next step and hands it back to the
queue, to resume from what it stored) and kills the child after `stop_grace` seconds. A bot
that dies without stopping it (SIGKILL) leaves no engine behind: `--parent-pid` makes the engine
stop once the bot is no longer its parent, so a restarted bot never shares the GPU with it.
The child gets the bot's environment without the bot token: the engine never talks to Discord.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import TOKEN_VARIABLE

log = logging.getLogger("disco.bot.supervisor")

HEALTHY_SECONDS = 60.0  # a child that lived this long resets the back-off


def engine_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) without the bot token."""
    env = dict(os.environ if base is None else base)
    env.pop(TOKEN_VARIABLE, None)
    return env


class EngineSupervisor:
    def __init__(self, db: Any, data_dir: Path, engine_args: Sequence[str], *,
                 config_path: Path | None = None, max_backoff: float = 60.0,
                 stop_grace: float = 10.0, env: dict[str, str] | None = None,
                 slot: int | None = None) -> None:
        self.db = db
        self.slot = slot  # which of several engines (None: the only one)
        self.data_dir = Path(data_dir)
        self.engine_args = list(engine_args)
        self.config_path = config_path
        self.max_backoff = max_backoff
        self.stop_grace = stop_grace
        self.env = env
        self.process: asyncio.subprocess.Process | None = None
        self.owner: str | None = None
        self.starts = 0
        self._stopping = False
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        name = "engine-supervisor" if self.slot is None else f"engine-supervisor-{self.slot}"
        self._task = asyncio.create_task(self._keep_running(), name=name)

    def next_owner(self) -> str:
        """A fresh lease owner name for the next start (unique per slot and start)."""
        slot = "" if self.slot is None else f"d{self.slot}."
        return f"engine:{socket.gethostname()}:{os.getpid()}:{slot}{self.starts}"

    def command(self, owner: str) -> list[str]:
        args = [sys.executable, "-m", "disco", "engine", "--data-dir", str(self.data_dir),
                "--owner", owner, "--parent-pid", str(os.getpid()), *self.engine_args]
        return args + (["--config", str(self.config_path)] if self.config_path else [])

    async def _keep_running(self) -> None:
        backoff = 1.0
        while not self._stopping:
            self.starts += 1
            self.owner = self.next_owner()
            started = time.monotonic()
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *self.command(self.owner), env=engine_environment(self.env),
                    stdin=asyncio.subprocess.DEVNULL)
            except OSError as exc:
                log.error("cannot start the engine: %s", exc)
            else:
                log.info("engine started (pid %d, owner %s)", self.process.pid, self.owner)
                code = await self.process.wait()
                if self._stopping:
                    return
                log.warning("engine exited with code %s; requeueing its jobs", code)
                await self._requeue(self.owner, f"the engine process exited with code {code}")
            if time.monotonic() - started > HEALTHY_SECONDS:
                backoff = 1.0
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _requeue(self, owner: str, reason: str) -> None:
        try:
            jobs = await self.db.leases.requeue_owned_by(owner, reason)
        except Exception:  # the next claim re-queues expired leases anyway
            log.exception("requeueing the jobs of %s failed", owner)
            return
        if jobs:
            log.info("requeued %d job(s) of %s", len(jobs), owner)

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period; waits for the child and the task."""
        self._stopping = True
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), self.stop_grace)
            except asyncio.TimeoutError:
                log.warning("engine did not stop in %.0f s; killing it", self.stop_grace)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def supervise_devices(db: Any, data_dir: Path, engine: Any, devices: Sequence[str], **kwargs: Any
                      ) -> list[EngineSupervisor]:
    """One supervisor per device (`engine`: the bot's EngineSettings; `devices` empty: one
    engine on `engine.device`, named as before); `kwargs` go to every supervisor."""
    if not devices:
        return [EngineSupervisor(db, data_dir, engine.arguments(), **kwargs)]
    return [EngineSupervisor(db, data_dir, engine.arguments(device), slot=n, **kwargs)
            for n, device in enumerate(devices)]
