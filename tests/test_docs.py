"""README.md and docs/*.md say what the code does: every slash command, `disco` command line,
config key and file they name exists, with the options, flags and choices they show.

Each check reads the docs' code spans and blocks, so a renamed flag, option or module fails
here rather than in front of a new operator or member following the README.
"""
from __future__ import annotations

import argparse
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from disco.cli import build_parser
from disco.config import DEFAULTS, load_config
from tests.bot.test_command_tree import SUB_COMMAND, SUB_COMMAND_GROUP, build_tree, slash_commands
from tests.support import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
README = REPO_ROOT / "README.md"
EXAMPLE = REPO_ROOT / "config.example.toml"
# Code spans that begin with "/" but are folders of the Docker image, not slash commands.
IMAGE_PATHS = {"/data", "/models", "/config"}
TOP_LEVEL = ("bot/", "commands/", "disco/", "engine/", "storage/", "tests/", "benchmarks/", "scripts/",
             "docs/")
_SPAN = re.compile(r"(?<!`)`([^`]+)`(?!`)")
_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def spans(path: Path) -> list[str]:
    """The inline code spans of a Markdown file (a span may wrap a line), blocks left out."""
    return [" ".join(span.split()) for span in _SPAN.findall(_BLOCK.sub("", path.read_text()))]


def command_lines(path: Path) -> list[list[str]]:
    """The words of each `disco …` command line (from `disco` on): inline spans, and the lines of
    shell blocks (comments dropped, continuations joined), the image's in `docker run … IMAGE
    COMMAND` too."""
    names = set(subcommands(build_parser()))
    lines = [s for s in spans(path) if re.match(r"(\.venv/bin/)?disco ", s)]
    for block in _BLOCK.findall(path.read_text()):
        lines += [re.sub(r"\s#.*$", "", line) for line in block.replace("\\\n", " ").splitlines()
                  if not line.lstrip().startswith("#")]
    found = []
    for line in lines:
        words = shlex.split(line.replace("…", ""))
        for i, word in enumerate(words[:-1]):
            if word in ("disco", ".venv/bin/disco", "disco-discord") and words[i + 1] in names:
                found.append(["disco", *words[i + 1:]])
                break
    return found


# ---- slash commands ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> list[dict]:
    """Every command the bot syncs: slash commands and context menus."""
    return build_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture(scope="module")
def tree(synced) -> dict[str, dict]:
    return {command["name"]: command for command in slash_commands(synced)}


def slash_mentions() -> list[tuple[str, str]]:
    """(doc, span) for every code span that begins with a slash command: in the docs, and in the
    guide `/disco-help` shows and a setting's "Set it" line."""
    from commands.help_text import guide_text, setting_text

    texts = {doc.name: doc.read_text() for doc in DOCS}
    texts["/disco-help"] = guide_text() + "\n" + setting_text("zoom") + "\n" + setting_text("steps")
    found = []
    for doc, text in texts.items():
        for span in (" ".join(span.split()) for span in _SPAN.findall(_BLOCK.sub("", text))):
            head = span.split()[0]
            if re.fullmatch(r"/[a-z][a-z-]*", head) and head not in IMAGE_PATHS:
                found.append((doc, span))
    return found


def resolve(tree: dict[str, dict], words: list[str]) -> tuple[dict, list[str]]:
    """The command node a span's leading words name, and the words after it."""
    node = tree[words[0]]
    rest = words[1:]
    while rest and ":" not in rest[0]:
        children = {o["name"]: o for o in node.get("options") or ()
                    if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)}
        names = rest[0].split("|")
        assert all(name in children for name in names), f"no subcommand {rest[0]} under {node['name']}"
        node = children[names[0]]
        rest = rest[1:]
    return node, rest


def test_every_slash_command_option_and_choice_the_docs_show_exists(tree):
    mentions = slash_mentions()
    assert len(mentions) > 20  # the docs are read at all
    for doc, span in mentions:
        words = shlex.split(span.replace("[", "").replace("]", ""))
        assert words[0][1:] in tree, f"{doc}: `{span}`: no command /{words[0][1:]}"
        node, options = resolve(tree, [words[0][1:], *words[1:]])
        by_name = {o["name"]: o for o in node.get("options") or ()}
        for option in options:
            name, _, value = option.partition(":")
            assert name in by_name, f"{doc}: `{span}`: /{node['name']} has no option {name}"
            choices = [str(c["value"]) for c in by_name[name].get("choices") or ()]
            for one in (value.split("|") if choices and value else ()):
                assert one in choices, f"{doc}: `{span}`: {name} has no choice {one} ({choices})"


def test_the_readme_names_every_slash_command(tree):
    named = {span.split()[0][1:] for doc, span in slash_mentions() if doc == "README.md"}
    assert set(tree) - named == set(), "README.md never shows these commands"


def test_the_help_guide_names_every_members_command(tree):
    named = {span.split()[0][1:] for doc, span in slash_mentions() if doc == "/disco-help"}
    assert set(tree) - named == {"disco-admin"}, "/disco-help's guide never shows these commands"


def test_the_readme_and_the_help_guide_name_every_message_menu(synced):
    from commands.help_text import guide_text

    menus = [command["name"] for command in synced if command not in slash_commands(synced)]
    assert menus, "the bot has no message menus"
    for text, where in ((README.read_text(), "README.md"), (guide_text(), "/disco-help's guide")):
        assert [name for name in menus if f"**{name}**" not in text] == [], f"{where} never shows these menus"


# ---- the disco command line ----------------------------------------------------------------

def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_every_disco_command_line_in_the_docs_parses_to_its_flags():
    parser = build_parser()
    lines = [(doc.name, line) for doc in DOCS for line in command_lines(doc)]
    assert len(lines) > 30
    for doc, line in lines:
        words, shown = line[1:], " ".join(line)
        command, path = parser, ["disco"]
        while words and subcommands(command) and not words[0].startswith("-"):
            choices = subcommands(command)
            assert words[0] in choices, f"{doc}: `{shown}`: {' '.join(path)} has no command {words[0]}"
            command, path = choices[words[0]], [*path, words.pop(0)]
        for word in (word.strip("[]") for word in words):  # [--flag]: optional
            if word.startswith("--"):
                flag = word.split("=", 1)[0]
                assert flag in flags(command), f"{doc}: `{shown}`: {' '.join(path)} has no flag {flag}"


def test_the_readme_shows_every_disco_command():
    shown = {line[1] for line in command_lines(README)}
    assert set(subcommands(build_parser())) - shown == set()


# ---- the config file -----------------------------------------------------------------------

def test_the_example_config_shows_the_defaults_it_stands_for():
    """config.example.toml is read as the list of defaults: each value there is the loader's."""
    written = tomllib.loads(EXAMPLE.read_text())
    loaded = load_config(None)
    for section, values in DEFAULTS.items():
        for key in values:
            assert written[section][key] == loaded[section][key], f"[{section}] {key}"


def test_every_config_key_the_docs_name_exists():
    named = set()
    for doc in [*DOCS, EXAMPLE]:
        named |= set(re.findall(r"\[(storage|engine|discord|bot)\]`?\s+`?(?!sections?\b)([a-z_]+)",
                                doc.read_text()))
    assert len(named) > 8
    unknown = {f"[{section}] {key}" for section, key in named if key not in DEFAULTS[section]}
    assert not unknown, unknown


# ---- files and modules ---------------------------------------------------------------------

def test_every_file_and_module_the_docs_name_exists():
    missing = []
    for doc in DOCS:
        for span in spans(doc):
            for token in re.findall(r"[\w./-]+", span):
                token = token.rstrip(".")
                if token.startswith(TOP_LEVEL) and not any(c in token for c in "<>*{"):
                    if not (REPO_ROOT / token).exists():
                        missing.append(f"{doc.name}: {token}")
                elif (re.fullmatch(r"(bot|commands|disco|engine|storage)(\.\w+)+", token)
                      and not token.endswith((".py", ".db"))):  # a file: disco.db, cogs/disco.py
                    if not module_has(token.split(".")):
                        missing.append(f"{doc.name}: {token}")
    assert not missing, "\n".join(missing)


def module_has(parts: list[str]) -> bool:
    """Whether the longest module prefix of a dotted name exists and mentions the next name."""
    for end in range(len(parts), 0, -1):
        base = REPO_ROOT.joinpath(*parts[:end])
        source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if source.is_file():
            rest = parts[end:]
            return not rest or re.search(rf"\b{re.escape(rest[0])}\b", source.read_text()) is not None
    return False
