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
