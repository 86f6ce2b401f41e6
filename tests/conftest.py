"""Test-wide settings: no network, slow tests only on request, tests/e2e/ marked `e2e`."""
from __future__ import annotations

import os
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


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs CUDA (skipped without it); benchmarks/gpu_check.sh runs them")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


E2E_DIR = Path(__file__).parent / "e2e"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:  # everything under tests/e2e/ is end to end: processes, the loopback Discord
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
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
