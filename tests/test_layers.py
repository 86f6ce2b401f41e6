"""The import rules of docs/architecture.md, enforced.

bot → commands → {engine.spec.render, storage}; engine and storage import nothing of the bot;
the bot process never imports torch; the engine never imports discord.
"""
from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.support import REPO_ROOT

ROOT = REPO_ROOT
TORCH_FREE = ["bot", "commands", "storage", "engine.spec.render", "engine.spec.fields", "engine.spec.schedules",
              "engine.spec.prompts", "engine.spec.ddsettings", "engine.models.registry", "engine.errors", "disco.cli",
              "disco.config", "commands.cli_jobs", "engine.cli.render", "engine.cli.engine",
              "commands.prompt_syntax", "commands.job_options", "commands.echo", "commands.sizes",
              "engine.spec.study", "engine.media.grid", "engine.spec.keyframes", "engine.spec.frame_prompts",
              "engine.spec.animation"]
HEAVY = ("torch", "torchvision", "open_clip", "guided_diffusion", "timm", "lpips", "cv2")
# Every module of the bot process's packages, not only those listed: the bot never imports torch.
TORCH_FREE += sorted({".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                      for package in ("bot", "commands", "storage") for path in (ROOT / package).rglob("*.py")})
TORCH_FREE += ["engine.media.video"]


def imported_modules(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module))
    return found


@pytest.mark.parametrize("package,forbidden", [
    ("engine", ("discord", "bot", "commands")),
    ("storage", ("discord", "bot", "commands", "engine", "torch")),
    ("commands", ("bot", "torch", "open_clip")),
    ("bot", ("torch", "open_clip")),
])
def test_static_import_rules(package, forbidden):
    bad = [(f, m) for f, m in imported_modules(package) if m.split(".")[0] in forbidden]
    assert not bad, f"{package}/ must not import {forbidden}: {bad}"


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
    out = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_no_eval_or_exec_anywhere():
    for package in ("engine", "storage", "commands", "bot", "disco"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    assert node.func.id not in ("eval", "exec", "compile"), f"{path}: {node.func.id}()"
                if isinstance(node, ast.Attribute) and node.attr == "literal_eval":
                    raise AssertionError(f"{path}: literal_eval")
