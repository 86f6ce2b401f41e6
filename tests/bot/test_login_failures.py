"""`disco bot` that cannot log in stops at once with one line that says what to fix: a token
Discord refuses, an API address nothing answers at. Each runs the real entry as a process."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _RefusesEveryToken(BaseHTTPRequestHandler):
    def do_GET(self):  # Discord's answer to GET /users/@me with a wrong token
        body = json.dumps({"message": "401: Unauthorized", "code": 0}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_bot(tmp_path, api_base: str) -> subprocess.CompletedProcess:
    config = tmp_path / "config.toml"
    config.write_text(f'[discord]\napi_base = "{api_base}"\ngateway_url = "ws://127.0.0.1:9/"\n'
                      '[bot]\nspawn_engine = false\n')
    env = {**os.environ, "DISCORD_TOKEN": "not-a-token"}
    return subprocess.run([sys.executable, "-m", "disco", "bot", "--config", str(config),
                           "--data-dir", str(tmp_path / "data")],
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def refusing_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusesEveryToken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v10"
    server.shutdown()


def test_a_token_discord_refuses_is_one_line_naming_where_to_get_one(tmp_path, refusing_api):
    done = _run_bot(tmp_path, refusing_api)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Discord refused the bot token in DISCORD_TOKEN") and "Reset Token" in last
    assert "a bug" not in done.stderr


def test_an_api_nothing_answers_at_is_one_line_naming_the_address(tmp_path):
    api_base = f"http://127.0.0.1:{_closed_port()}/api/v10"
    done = _run_bot(tmp_path, api_base)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot reach Discord's API at {api_base} (") and "[discord] api_base" in last
    assert "a bug" not in done.stderr
    assert "logging in" in done.stderr and "voice" not in done.stderr  # discord.py's voice warnings: not ours


class _NotFoundEverywhere(BaseHTTPRequestHandler):
    def do_GET(self):  # an api_base with a wrong path, behind a web server that is not Discord
        self.send_response(404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "9")
        self.end_headers()
        self.wfile.write(b"not found")

    def log_message(self, *args):
        pass


def test_an_api_that_answers_the_login_with_an_error_is_one_line_naming_the_status(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFoundEverywhere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_base = f"http://127.0.0.1:{server.server_address[1]}/wrong/v10"
    try:
        done = _run_bot(tmp_path, api_base)
    finally:
        server.shutdown()
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: Discord's API at {api_base} answered the login with HTTP 404 Not Found;")
    assert "[discord] api_base" in last and "a bug" not in done.stderr


@pytest.fixture
def silent_api():
    """An address that accepts connections (the kernel completes them) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/v10"


def test_an_api_that_never_answers_the_login_is_one_line_after_the_login_timeout(
        tmp_path, silent_api, monkeypatch, capsys):
    import argparse

    import discord.gateway
    import discord.http

    import bot.client
    from bot.cli import cmd_bot

    # cmd_bot points discord.py at the config's endpoints: put them back after the test.
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    monkeypatch.setattr(bot.client, "LOGIN_TIMEOUT_S", 0.5)
    monkeypatch.setenv("DISCORD_TOKEN", "not-a-token")
    from disco.config import load_config

    config = tmp_path / "config.toml"
    config.write_text(f'[discord]\napi_base = "{silent_api}"\n')
    args = argparse.Namespace(config=str(config), no_engine=True)
    assert cmd_bot(args, load_config(config), tmp_path / "data") == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == (f"error: Discord's API at {silent_api} accepted the connection but gave no answer to "
                    "the login within 0.5 s; check this host's proxy, or [discord] api_base in the config file")


def test_the_login_timeout_does_not_cover_a_slow_database_after_the_login(tmp_path, monkeypatch):
    """The setup hook waits for a PostgreSQL server that is down at start as long as it takes:
    only the login's requests are timed."""
    import asyncio

    import discord

    import bot.client
    from bot.client import DiscoBot
    from bot.config import BotConfig

    async def answered_login(self, token):  # discord.py's login with its requests answered at once
        await self.setup_hook()

    real_open = bot.client.Database.open

    async def slow_open(*args, **kwargs):
        await asyncio.sleep(1.0)
        return await real_open(*args, **kwargs)

    async def no_sync(self):  # the commands would go to the application the login named
        pass

    monkeypatch.setattr(discord.Client, "login", answered_login)
    monkeypatch.setattr(DiscoBot, "sync_commands", no_sync)
    monkeypatch.setattr(bot.client.Database, "open", slow_open)

    async def main():
        async with DiscoBot(BotConfig(data_dir=tmp_path, spawn_engine=False)) as client:
            client.login_timeout_s = 0.2
            await client.login("token")
            assert client.db is not None  # the whole setup hook ran

    asyncio.run(main())
