"""What a `disco` command loads before it answers: listings, help and refusals that need no
model code answer without torch or open_clip (seconds of start-up), and an engine or worker
checks its config, data folder and database before torch loads, so a wrong URL, an unreachable
server or a damaged file is one line at once. Each case runs `disco.cli.main` in a child process
and reads `sys.modules` there; no timings are asserted (benchmarks/startup_bench.py has them)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support import REPO_ROOT
from tests.support.storage import postgres_url, skip_without_postgres

HEAVY = ("torch", "torchvision", "open_clip", "lpips", "imageio", "cv2")
# What only some commands' handlers need: building the parser (any --help) loads none of them.
HANDLERS_ONLY = ("numpy", "pydantic", "storage", "yaml")
PROBE = (
    "import json, sys\n"
    "from disco.cli import main\n"
    "try:\n"
    "    code = main(json.loads(sys.argv[1]))\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    f"loaded = [name for name in {HEAVY + HANDLERS_ONLY!r} if name in sys.modules]\n"
    "print(json.dumps({'code': code, 'loaded': loaded}), file=sys.stderr)\n"
)


def run_disco(argv: list[str], tmp_path: Path) -> tuple[int, list[str], str, str]:
    """`disco ARGV` in a child: its exit code, which of HEAVY and HANDLERS_ONLY it imported,
    stdout, and stderr without the probe's own last line."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(tmp_path / "models")}
    env.pop("DISCO_DATABASE_URL", None)
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    *lines, probe = done.stderr.rstrip("\n").split("\n")
    report = json.loads(probe)
    return report["code"], report["loaded"], done.stdout, "".join(f"{line}\n" for line in lines)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMANDS = ("render", "bench", "animate", "study", "gobig", "describe", "models", "engine", "worker",
            "workers", "jobs", "db", "bot")


@pytest.mark.parametrize("argv", [["--help"]] + [[command, "--help"] for command in COMMANDS])
def test_help_loads_only_the_parser(argv, tmp_path):
    code, loaded, out, err = run_disco(argv, tmp_path)
    assert code == 0 and out.startswith("usage: disco"), err
    assert loaded == []


@pytest.mark.parametrize("argv", [["models", "list"], ["models", "list", "--json"]])
def test_the_model_listing_loads_no_model_code(argv, tmp_path):
    code, loaded, out, err = run_disco(argv, tmp_path)
    assert code == 0 and err == "", err
    assert not set(loaded) & set(HEAVY)
    # the CLIP rows come from the registry's copy of open_clip's table, not from open_clip
    assert "ViT-B-32::openai" in out and "RN101-quickgelu::yfcc15m" in out


def test_an_unreachable_database_is_one_line_before_torch_loads(tmp_path):
    url = f"postgresql://disco@127.0.0.1:{closed_port()}/disco"
    for command in ("worker", "engine"):
        database = ["--database", url] if command == "worker" else []
        env_url = [] if command == "worker" else ["--config", str(_config(tmp_path, url))]
        code, loaded, _, err = run_disco([command, *database, *env_url, "--burst", "--models", "test-tiny",
                                          "--device", "cpu", "--data-dir", str(tmp_path / "data")], tmp_path)
        assert code == 2 and not set(loaded) & set(HEAVY), (command, err)
        assert err.startswith("error: PostgreSQL at ") and "is not reachable" in err and err.count("\n") == 1


def test_a_damaged_database_file_is_one_line_before_torch_loads(tmp_path):
    """Not --burst: a worker waits for a PostgreSQL server that is down, but a file that is no
    database is refused at once."""
    damaged = tmp_path / "disco.db"
    damaged.write_bytes(b"this is not a database\n" * 100)
    code, loaded, _, err = run_disco(["worker", "--database", f"sqlite:///{damaged}", "--models", "test-tiny",
                                      "--device", "cpu", "--data-dir", str(tmp_path / "data")], tmp_path)
    assert code == 2 and not set(loaded) & set(HEAVY), err
    assert err.startswith("error: ") and str(damaged) in err and err.count("\n") == 1


@pytest.mark.parametrize("path,says", [("/disco_no_such_database", 'database "disco_no_such_database" does not exist'),
                                        ("USER", 'role "disco_no_such_role" does not exist')])
def test_a_wrong_postgresql_url_is_one_line_before_torch_loads(path, says, tmp_path):
    """Not --burst either: a live server that refuses the login or the database is the URL's
    fault, refused at once (only a server that is down is waited for)."""
    skip_without_postgres()
    parts = urlsplit(postgres_url())
    wrong = parts._replace(netloc="disco_no_such_role@" + parts.netloc.rpartition("@")[2]) if path == "USER" \
        else parts._replace(path=path)
    code, loaded, _, err = run_disco(["worker", "--database", urlunsplit(wrong), "--models", "test-tiny",
                                      "--device", "cpu", "--data-dir", str(tmp_path / "data")], tmp_path)
    assert code == 2 and not set(loaded) & set(HEAVY), err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1


@pytest.mark.parametrize("argv,says", [
    (["worker", "--models", "no-such-set"], "unknown model set 'no-such-set'"),
    (["worker", "--database", "mysql://db/disco"], "database URL scheme 'mysql' is not supported"),
    (["engine", "--config", "CONFIG"], "[engine] model_set = 'no-such-set' is not a model set"),
])
def test_a_wrong_setting_is_refused_before_torch_loads(argv, says, tmp_path):
    config = tmp_path / "disco.toml"
    config.write_text("[engine]\nmodel_set = 'no-such-set'\n", encoding="utf-8")
    argv = [str(config) if arg == "CONFIG" else arg for arg in argv]
    code, loaded, _, err = run_disco([*argv, "--burst", "--data-dir", str(tmp_path / "data")], tmp_path)
    assert code == 2 and not set(loaded) & set(HEAVY), err
    assert says in err and err.count("\n") == 1


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "engine.toml"
    path.write_text(f"[storage]\nurl = {json.dumps(url)}\n", encoding="utf-8")
    return path
