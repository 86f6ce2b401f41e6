"""The engine supervisor's child process: what it is started with."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from types import SimpleNamespace

from bot.supervisor import EngineSupervisor


def test_the_engine_child_never_sees_the_bot_token(tmp_path, monkeypatch):
    """The engine never talks to Discord, so the token stays in the bot's process."""
    seen = tmp_path / "environment.json"
    monkeypatch.setenv("DISCORD_TOKEN", "the-bot-token")
    monkeypatch.setenv("DISCO_KEPT", "yes")
    dump = f"import json, os; open({str(seen)!r}, 'w').write(json.dumps(dict(os.environ)))"
    monkeypatch.setattr(EngineSupervisor, "command", lambda self, owner: [sys.executable, "-c", dump])

    async def start_once() -> None:
        async def requeue_owned_by(owner, reason):
            return []

        db = SimpleNamespace(leases=SimpleNamespace(requeue_owned_by=requeue_owned_by))
        supervisor = EngineSupervisor(db=db, data_dir=tmp_path, engine_args=[], max_backoff=60)
        supervisor.start()
        for _ in range(200):
            if supervisor.process is not None and supervisor.process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await supervisor.stop()

    asyncio.run(start_once())
    child = json.loads(seen.read_text())
    assert "DISCORD_TOKEN" not in child and child["DISCO_KEPT"] == "yes"
    assert os.environ["DISCORD_TOKEN"] == "the-bot-token"  # the bot's own is untouched
