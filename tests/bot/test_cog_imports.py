"""Cogs share code through bot modules (params, answers, checks, settings_text, …), never through
each other: a cog can then be loaded, changed or dropped alone."""
from __future__ import annotations

import ast

from tests.support import REPO_ROOT


def imported(path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import in a file, relative ones made absolute."""
    package = list(path.relative_to(REPO_ROOT).parent.parts)
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            found.append((".".join(base + ([node.module] if node.module else [])),
                          [alias.name for alias in node.names]))
    return found


def test_no_module_but_the_client_imports_the_cogs():
    """Cogs share code through bot modules (params, answers, checks, …), never through each
    other; the client loads them by name from `bot.cogs.EXTENSIONS`."""
    found = [(str(path.relative_to(REPO_ROOT)), module, names)
             for path in sorted((REPO_ROOT / "bot").rglob("*.py"))
             for module, names in imported(path) if module == "bot.cogs" or module.startswith("bot.cogs.")]
    assert found == [("bot/client.py", "bot.cogs", ["EXTENSIONS"])]
