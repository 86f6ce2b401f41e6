"""Static checks of compose.yaml (no Docker engine is needed or used), like
tests/test_dockerfile.py: PostgreSQL, the bot and one worker per GPU; every secret comes from a
file, no password or token is written inline, and workers never see the Discord token."""
from __future__ import annotations

import re

import yaml

from tests.support import REPO_ROOT

COMPOSE = REPO_ROOT / "compose.yaml"
URL_WITH_PASSWORD = re.compile(r"\w+://[^/\s:@]+:[^@\s]+@")


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return dict(item.split("=", 1) for item in env) if isinstance(env, list) else dict(env)


def workers(services: dict) -> dict[str, dict]:
    return {name: s for name, s in services.items() if s.get("command", [None])[0] == "worker"}


def test_postgres_the_bot_and_workers_are_there():
    services = compose()["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["bot"]["command"][0] == "bot" and services["bot"]["build"] == "."
    assert len(workers(services)) >= 2
    assert "--no-engine" in services["bot"]["command"]  # the workers render; the bot has no GPU
    for service in (services["bot"], *workers(services).values()):
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_no_password_or_token_is_inline():
    text = COMPOSE.read_text(encoding="utf-8")
    assert not URL_WITH_PASSWORD.search(text.replace("$(cat secrets/db_password)", ""))
    for name, service in compose()["services"].items():
        for key, value in environment(service).items():
            if any(word in key.upper() for word in ("PASSWORD", "TOKEN", "SECRET")) or key == "DISCO_DATABASE_URL":
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
    declared = compose()["secrets"]
    assert all(set(secret) == {"file"} and secret["file"].startswith("./secrets/") for secret in declared.values())
    assert environment(compose()["services"]["postgres"])["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"


def test_workers_get_the_database_but_never_the_discord_token():
    services = compose()["services"]
    assert services["bot"]["env_file"] == ["secrets/discord.env"]
    for name, worker in workers(services).items():
        assert "env_file" not in worker and "DISCORD_TOKEN" not in environment(worker), name
        assert environment(worker)["DISCO_DATABASE_URL_FILE"] == "/run/secrets/database_url"
        assert worker["secrets"] == ["database_url"]
        assert "--device" in worker["command"] and "--database" not in worker["command"]
        assert not any(str(volume).startswith("disco-data") for volume in worker.get("volumes", [])), name


def test_each_worker_holds_its_own_gpu():
    gpus = []
    for worker in workers(compose()["services"]).values():
        [device] = worker["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        gpus += device["device_ids"]
    assert len(gpus) == len(set(gpus))
