"""The import rules of docs/architecture.md, enforced.

The layers, the torch-free boundary, "only engine.jobs imports storage", "nothing below the bot
imports discord" and "no import cycles" are import-linter contracts in pyproject.toml
([tool.importlinter]); this file runs them, then checks at run time that the bot's process
really imports with torch unimportable, and that no string is ever evaluated.
"""
from __future__ import annotations

import ast
import logging
import subprocess
import sys

from importlinter.cli import lint_imports

from tests.support import REPO_ROOT

HEAVY = ("torch", "torchvision", "open_clip", "guided_diffusion", "timm", "lpips", "cv2")
# What the bot's process loads: every module of bot/, commands/ and storage/, the engine's spec,
# media and errors, and the `disco` entry with every command's parser (their heavy imports wait
# until the command runs).
TORCH_FREE_PACKAGES = ("bot", "commands", "storage", "disco", "engine/spec", "engine/media", "engine/cli")
TORCH_FREE = sorted({".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for package in TORCH_FREE_PACKAGES for path in (REPO_ROOT / package).rglob("*.py")
                     if path.name != "__main__.py"}
                    | {"engine.errors", "engine.models.registry", "engine.models.download"})


def test_import_contracts_hold(capsys):
    # import-linter configures logging with dictConfig, which disables every logger that
    # exists: put them back, or later tests in this process see no log records.
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    enabled = [logger for logger in loggers if not logger.disabled]
    try:
        code = lint_imports(config_filename=str(REPO_ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    finally:
        for logger in enabled:
            logger.disabled = False
    assert code == 0, capsys.readouterr().out


def test_torch_free_modules_import_with_torch_unimportable():
    blocker = (
        "import sys\n"
        "class Block:\n"
        f"    heavy = {HEAVY!r}\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in self.heavy:\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"import importlib\nfor m in {TORCH_FREE!r}: importlib.import_module(m)\n"
        "from engine.spec.render import RenderSpec\nRenderSpec.from_dict({'text_prompts': 'a lighthouse'})\n"
        "from disco.cli import build_parser\nbuild_parser().parse_args(['render', 'x'])\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", blocker], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_no_eval_or_exec_anywhere():
    for package in ("engine", "storage", "commands", "bot", "disco"):
        for path in (REPO_ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in ("eval", "exec", "compile"), f"{path}: {node.func.id}()"
                if isinstance(node, ast.Attribute) and node.attr == "literal_eval":
                    raise AssertionError(f"{path}: literal_eval")
