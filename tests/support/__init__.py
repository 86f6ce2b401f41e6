"""Shared test helpers: tiny engines, temporary databases, the bot against the loopback Discord
(fakediscord/), and the child processes the crash tests kill."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures"
