"""Start-up time of the processes a user and an operator start: wall seconds from launch to exit
of each `disco` command below, and whether it loaded torch or open_clip on the way.

    .venv/bin/python benchmarks/startup_bench.py [--repeat 3] [--only NAME,NAME] [--dir DIR]

Prints one JSON object: per command, its exit code, the min and median of `--repeat` runs, and
the heavy packages the command imported (one extra run under `python -X importtime`, not timed).
Nothing needs a network: the worker's database is a closed local port, the engine drains an
empty SQLite queue, the render is two 64×64 steps on test-tiny. On a shared machine read the
figures side by side (run before and after a change on the same load), not as absolutes.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "torchvision", "open_clip", "lpips", "imageio", "cv2", "discord", "numpy",
         "pydantic")


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cases(work: Path) -> dict[str, list[str]]:
    bad_config = work / "bad.toml"
    bad_config.write_text("[engine]\nmodel_set = 'no-such-set'\n", encoding="utf-8")
    db = f"postgresql://disco@127.0.0.1:{closed_port()}/disco?connect_timeout=2"
    data = str(work / "data")
    return {
        "help": ["--help"],
        "render --help": ["render", "--help"],
        "models list": ["models", "list"],
        "jobs list": ["jobs", "list", "--data-dir", data],
        "workers": ["workers", "--data-dir", data],
        "bot (no token)": ["bot", "--data-dir", data],
        "db migrate (refused URL)": ["db", "migrate", "--from", "mysql://x", "--to", "sqlite:///x"],
        "worker (config error)": ["worker", "--config", str(bad_config)],
        "worker (database unreachable)": ["worker", "--database", db, "--models", "test-tiny",
                                          "--device", "cpu", "--burst", "--data-dir", data],
        "engine --burst (empty queue)": ["engine", "--burst", "--models", "test-tiny", "--device",
                                         "cpu", "--data-dir", data],
        "render test-tiny 2 steps": ["render", "a lighthouse", "--models", "test-tiny", "--device",
                                    "cpu", "--steps", "2", "--width", "64", "--height", "64", "--set", "skip_steps=0",
                                    "--set", "cutn_batches=1", "--set", "clip_models=ViT-B-32::openai",
                                    "--no-progress", "--out", str(work / "out")],
    }


def run_once(argv: list[str], env: dict[str, str], importtime: bool = False) -> tuple[float, int, str]:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "disco", *argv]
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - start, done.returncode, done.stderr


def heavy_imports(stderr: str) -> list[str]:
    found = set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$", stderr, re.MULTILINE))
    return sorted({name for _indent, name in found if name in HEAVY})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--dir", type=Path, help="work folder (default: a temp folder)")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="disco-startup-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DISCO_MODELS_DIR": str(work / "models")}
    for name in ("DISCO_DATABASE_URL", "DISCORD_TOKEN"):
        env.pop(name, None)
    wanted = {name.strip() for name in args.only.split(",") if name.strip()}
    report: dict[str, dict] = {}
    for name, argv in cases(work).items():
        if wanted and name not in wanted:
            continue
        _, rc, stderr = run_once(argv, env, importtime=True)
        times = [run_once(argv, env)[0] for _ in range(args.repeat)]
        report[name] = {"rc": rc, "min_s": round(min(times), 2),
                        "median_s": round(statistics.median(times), 2),
                        "imports": heavy_imports(stderr)}
    print(json.dumps({"load_average": os.getloadavg(), "repeat": args.repeat, "commands": report},
                     indent=1))


if __name__ == "__main__":
    main()
