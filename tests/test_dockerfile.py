"""Static checks of the Dockerfile and .dockerignore (no Docker engine is needed or used).

The Dockerfile is parsed line by line: comments dropped, backslash continuations joined, each
instruction split into its keyword and its arguments, and grouped by build stage. The checks are
the deployment promises: a non-root user with a fixed uid, the model and data volumes, offline
Hugging Face, unbuffered logs, the project installed by pip from pyproject.toml (so the torch
pins live in one place), the `disco` entry point and no secret in the image.
"""
from __future__ import annotations

import json
import re
import shlex
import tomllib

import pytest

from tests.support import REPO_ROOT

ROOT = REPO_ROOT
DOCKERFILE = ROOT / "Dockerfile"
# A Discord bot token's shape: three base64url parts separated by dots.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}")


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction; comment lines inside continuations are skipped too."""
    result, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        result.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def stages(parsed: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Instructions grouped by FROM; the last group is the image that ships."""
    groups: list[list[tuple[str, str]]] = []
    for keyword, args in parsed:
        if keyword == "FROM":
            groups.append([])
        assert groups, f"{keyword} before the first FROM"
        groups[-1].append((keyword, args))
    return groups


def env_vars(stage: list[tuple[str, str]]) -> dict[str, str]:
    """ENV key=value pairs of a stage (the legacy `ENV key value` form is refused)."""
    values = {}
    for keyword, args in stage:
        if keyword == "ENV":
            for pair in shlex.split(args):
                key, sep, value = pair.partition("=")
                assert sep, f"ENV {args!r}: use the key=value form"
                values[key] = value
    return values


def exec_form(args: str) -> list[str]:
    value = json.loads(args)  # the JSON (exec) form: signals reach disco, not a shell
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


@pytest.fixture(scope="module")
def text() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def final(text) -> list[tuple[str, str]]:
    return stages(instructions(text))[-1]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_parser_joins_continuations_and_skips_comments():
    parsed = instructions("FROM a AS b\n# note\nRUN one \\\n  # inside\n  && two\nUSER x\n")
    assert parsed == [("FROM", "a AS b"), ("RUN", "one && two"), ("USER", "x")]


def test_runs_as_a_fixed_non_root_user_before_entrypoint_and_cmd(final):
    keywords = [k for k, _ in final]
    assert "USER" in keywords, "the final stage never sets USER"
    user_at = max(i for i, k in enumerate(keywords) if k == "USER")
    user = final[user_at][1].split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    for keyword in ("ENTRYPOINT", "CMD"):
        assert keyword in keywords and keywords.index(keyword) > user_at, f"USER must come before {keyword}"
    commands = [c.split() for k, args in final if k == "RUN" for c in re.split(r"&&|;", args)]
    useradd = next((c for c in commands if c and c[0] == "useradd"), None)
    assert useradd and "--uid" in useradd, "create the user with useradd --uid"
    uid, name = useradd[useradd.index("--uid") + 1], useradd[-1]
    assert uid.isdigit() and int(uid) >= 1000 and name == "disco", "a fixed, non-system-range uid for disco"
    assert user in (uid, name), f"USER {user} is not the disco user (uid {uid}) created above"


def test_environment_volumes_and_workdir(final):
    env = env_vars(final)
    assert env["DISCO_MODELS_DIR"] == "/models" and env["DISCO_DATA_DIR"] == "/data"
    assert env["HF_HUB_OFFLINE"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    volumes = [v for k, args in final if k == "VOLUME" for v in exec_form(args)]
    assert {"/models", "/data"} <= set(volumes)
    assert [args for k, args in final if k == "WORKDIR"][-1] == "/app"


def test_entrypoint_cmd_and_healthcheck(final):
    last = {k: args for k, args in final}
    assert exec_form(last["ENTRYPOINT"]) == ["disco"]
    assert exec_form(last["CMD"]) == ["bot", "--config", "/config/config.toml"]
    health = last.get("HEALTHCHECK", "")
    assert "CMD" in health.split() and "disco" in health, "a HEALTHCHECK that runs a disco command"


def test_pip_installs_the_project_from_pyproject(text, pyproject):
    parsed = instructions(text)
    copied = [args for k, args in parsed if k == "COPY" and "--from" not in args]
    assert any("pyproject.toml" in args.split() for args in copied)
    installs = [args for k, args in parsed if k == "RUN" and "pip install" in args]
    assert any(re.search(r"pip install\b[^&;|]*\s\.(\s|$)", args) for args in installs), \
        "pip must install the project (`pip install .`)"
    # Every package pyproject ships is copied into the build (a new package can't be forgotten).
    for package in (p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]):
        assert any(args.split()[0] == package for args in copied), f"{package}/ is not copied"
    # The built venv is what the final stage runs.
    assert any(k == "COPY" and "--from=" in args for k, args in stages(parsed)[-1])


def test_torch_versions_match_the_pyproject_pins(text, pyproject):
    pins = dict(re.match(r"([A-Za-z0-9_.-]+)==(\S+)", d).groups()
                for d in pyproject["project"]["dependencies"] if "==" in d)
    mentioned = re.findall(r"\b(torch|torchvision)(?:==|\s+)(\d+\.\d+\.\d+)", text)
    assert mentioned, "the Dockerfile should name the torch build it expects"
    for name, version in mentioned:
        assert pins[name] == version, f"Dockerfile says {name} {version}, pyproject pins {pins[name]}"
    installs = " ".join(args for k, args in instructions(text) if k == "RUN")
    assert not re.search(r"\btorch(vision)?[=<>~]", installs), "pin torch in pyproject.toml only"


def test_no_secrets_in_the_image(text):
    for keyword, args in instructions(text):
        if keyword in ("ENV", "ARG", "LABEL"):
            assert "TOKEN" not in args.upper(), f"{keyword} {args}: tokens are passed at run time"
        assert not re.search(r"DISCORD_TOKEN=(?!\S*your)", args), f"{keyword} sets DISCORD_TOKEN"
    assert not TOKEN_SHAPE.search(text), "something shaped like a bot token is in the Dockerfile"


def test_dockerignore_keeps_state_out_and_the_sources_in(text):
    ignored = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "data", "config.toml", "models"} <= ignored
    for keyword, args in instructions(text):
        if keyword == "COPY" and "--from" not in args:
            *sources, _dest = args.split()
            for source in sources:
                assert source not in ignored, f"COPY {source}, but .dockerignore leaves it out"
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
