"""Test-wide settings: no network, slow tests only on request."""
from __future__ import annotations

import os

import pytest

# Fail fast instead of waiting ~46 s on Hugging Face retries, and keep model caches in a sandbox.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow") or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow real-size check: run with --run-slow or -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _sandboxed_models_dir(tmp_path_factory, monkeypatch):
    if "DISCO_MODELS_DIR" not in os.environ or os.environ.get("DISCO_TEST_KEEP_MODELS_DIR") != "1":
        monkeypatch.setenv("DISCO_MODELS_DIR", str(tmp_path_factory.mktemp("models")))
