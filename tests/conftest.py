"""Test-wide settings: no network, slow tests only on request, tests/e2e/ marked `e2e`, and how
many pytest-xdist workers `-n auto` (scripts/test.sh) starts."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

# Fail fast instead of waiting ~46 s on Hugging Face retries, and keep model caches in a sandbox.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Temporary files (tmp_path, and the child processes' through TMPDIR) on the RAM disk where
# there is one with room: every SQLite commit syncs its file (synchronous=FULL), ~2 ms on a
# disk and nothing in RAM (tests/storage, tests/bot and tests/commands: 38 s -> 29 s). What the tests
# check is the same: a killed process leaves its writes in the page cache on either. A TMPDIR
# set by whoever runs the tests wins; without room (Docker's /dev/shm is 64 MiB) the default stays.
RAM_DISK, RAM_DISK_ROOM = Path("/dev/shm"), 8 << 30  # a full run leaves ~300 MB; pytest keeps 3
if "TMPDIR" not in os.environ and RAM_DISK.is_dir() and os.access(RAM_DISK, os.W_OK) \
        and shutil.disk_usage(RAM_DISK).free > RAM_DISK_ROOM:
    os.environ["TMPDIR"] = str(RAM_DISK)
    tempfile.tempdir = None  # gettempdir() reads TMPDIR again

# Each xdist worker (and every engine or worker process a test starts) gets one torch thread:
# two workers with torch's default of a thread per core would run 4 busy threads on the 2 cores
# CI has. Set before anything imports torch; a value set by whoever runs the tests wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

WHOLE_SUITE_WORKERS = 2  # the isolation of tests run side by side is checked for two


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CUDA (skipped without it); benchmarks/gpu_check.sh runs them")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def slow_selected(config) -> bool:
    """--run-slow, or a -m expression that names `slow` other than as `not slow` (--fast's)."""
    marks = re.sub(r"\bnot\s+slow\b", "", config.getoption("-m") or "")
    return config.getoption("--run-slow") or re.search(r"\bslow\b", marks) is not None


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: plain pytest runs without it
def pytest_xdist_auto_num_workers(config):
    """`-n auto`: two workers for the whole suite (most tests wait on child processes, sockets
    or PostgreSQL, so two overlap well on two cores), none when the arguments name files or
    tests (one process starts sooner) or select the real-size checks (GBs of RAM each).
    `-n N` on the command line, or PYTEST_XDIST_AUTO_NUM_WORKERS, overrides this."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    if config.args_source == pytest.Config.ArgsSource.ARGS or slow_selected(config):
        return 0
    cores = len(os.sched_getaffinity(0))
    return min(WHOLE_SUITE_WORKERS, cores) if cores > 1 else 0


E2E_DIR = Path(__file__).parent / "e2e"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:  # everything under tests/e2e/ is end to end: processes, the loopback Discord
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
    if slow_selected(config):
        return
    skip = pytest.mark.skip(reason="slow real-size check: run with --run-slow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """An empty database of each backend in turn (the storage conformance suite): SQLite in
    tmp_path, PostgreSQL on DISCO_TEST_POSTGRES_URL (skipped with a hint when it is not set)."""
    from tests.support.storage import Store, skip_without_postgres

    if request.param == "postgresql":
        skip_without_postgres()
    made = Store(request.param, tmp_path)
    yield made
    made.drop()


@pytest.fixture(autouse=True)
def _sandboxed_models_dir(tmp_path_factory, monkeypatch):
    if "DISCO_MODELS_DIR" not in os.environ or os.environ.get("DISCO_TEST_KEEP_MODELS_DIR") != "1":
        monkeypatch.setenv("DISCO_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
