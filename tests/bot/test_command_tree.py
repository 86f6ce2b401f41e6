"""The bot's whole slash-command tree, checked against Discord's limits before any sync.

Discord refuses a sync whose commands break its limits (and a refused sync leaves the old
commands in place), so these checks run on the tree the real cogs build: the client is created
and every extension loaded as `setup_hook` does, without logging in or connecting.
"""
from __future__ import annotations

import asyncio
import re

import pytest

from bot.client import DiscoBot
from bot.cogs import EXTENSIONS
from bot.config import BotConfig
from storage import Database

NAME = re.compile(r"^[-_\w]{1,32}$")
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
CHAT_INPUT, MESSAGE_MENU = 1, 3  # application command types: a slash command, a message context menu


def build_tree(tmp_path) -> list[dict]:
    """Every top-level command as Discord would receive it (`to_dict`): the slash commands and
    the context menus, as the sync sends them."""
    async def main():
        bot = DiscoBot(BotConfig(data_dir=tmp_path, spawn_engine=False))
        bot.db = await Database.open(tmp_path / "disco.db")
        try:
            for extension in EXTENSIONS:
                await bot.load_extension(extension)
            return [command.to_dict(bot.tree) for command in bot.tree.get_commands()]
        finally:
            await bot.db.close()
    return asyncio.run(main())


def text_size(node: dict) -> int:
    """Discord's per-command character count: names, descriptions and choices, all levels."""
    total = len(node["name"]) + len(node.get("description", ""))
    for choice in node.get("choices") or ():
        total += len(choice["name"]) + len(str(choice["value"]))
    return total + sum(text_size(option) for option in node.get("options") or ())


def problems(node: dict, path: str, depth: int) -> list[str]:
    """Everything in `node` (a command, group, subcommand or option) Discord would refuse."""
    found = []
    name, description = node["name"], node.get("description", "")
    where = f"{path} {name}".strip()
    if not NAME.match(name) or name != name.lower():
        found.append(f"{where}: name must be 1-32 lowercase letters, digits, - or _")
    if not 1 <= len(description) <= 100:
        found.append(f"{where}: description is {len(description)} chars (1-100)")
    choices = node.get("choices") or []
    if len(choices) > 25:
        found.append(f"{where}: {len(choices)} choices (at most 25)")
    for choice in choices:
        if not 1 <= len(choice["name"]) <= 100 or len(str(choice["value"])) > 100:
            found.append(f"{where}: choice {choice['name']!r} is too long (name 1-100, value ≤ 100)")
    options = node.get("options") or []
    if len(options) > 25:
        found.append(f"{where}: {len(options)} options (at most 25)")
    plain = [o for o in options if o["type"] not in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    required = [o.get("required", False) for o in plain]
    if required != sorted(required, reverse=True):
        found.append(f"{where}: required options must come before optional ones")
    if plain and len(plain) != len(options):
        found.append(f"{where}: mixes subcommands with plain options")
    for option in options:
        if option["type"] == SUB_COMMAND_GROUP and depth >= 1:
            found.append(f"{where} {option['name']}: groups nest only one level (root → group → sub)")
        if option["type"] == SUB_COMMAND and depth >= 2:
            found.append(f"{where} {option['name']}: subcommands nest at most two levels")
        found += problems(option, where, depth + 1 if option["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)
                          else depth)
    return found


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return build_tree(tmp_path_factory.mktemp("tree"))


def slash_commands(tree: list[dict]) -> list[dict]:
    return [command for command in tree if command.get("type", CHAT_INPUT) == CHAT_INPUT]


def menu_problems(menu: dict) -> list[str]:
    """What Discord would refuse of a context menu: a name of 1-32 characters (spaces and
    capitals allowed), no description, no options."""
    found = []
    if not 1 <= len(menu["name"]) <= 32 or menu["name"] != menu["name"].strip():
        found.append(f"menu {menu['name']!r}: name must be 1-32 characters")
    if menu.get("description") or menu.get("options"):
        found.append(f"menu {menu['name']!r}: a context menu has no description or options")
    return found


def test_every_command_is_within_discords_limits(tree):
    slash = slash_commands(tree)
    menus = [command for command in tree if command not in slash]
    assert len(slash) <= 100 and len([m for m in menus if m["type"] == MESSAGE_MENU]) <= 5
    found = [p for command in slash for p in problems(command, "/", 0)]
    found += [f"/{c['name']}: {text_size(c)} characters (at most 4000)" for c in slash if text_size(c) > 4000]
    found += [p for menu in menus for p in menu_problems(menu)]
    assert not found, "\n".join(found)


def test_the_message_menus_are_registered_for_servers_only(tree):
    menus = {command["name"]: command for command in tree if command.get("type") == MESSAGE_MENU}
    assert set(menus) == {"Describe image", "Paint from this image", "Enlarge (GoBig)"}
    assert all(menu.get("contexts") == [0] or menu.get("dm_permission") is False for menu in menus.values())
    assert menu_problems({"name": "x" * 33, "description": "d"}) == [
        f"menu {'x' * 33!r}: name must be 1-32 characters",
        f"menu {'x' * 33!r}: a context menu has no description or options"]


def test_the_expected_commands_are_registered(tree):
    by_name = {command["name"]: command for command in tree}
    assert {"disco", "disco-admin", "preset", "disco-info"} <= set(by_name)
    admin = by_name["disco-admin"]
    # Only a root command's default_member_permissions counts: Manage Guild = 1 << 5.
    assert int(admin["default_member_permissions"]) == 1 << 5
    assert admin.get("contexts") == [0] or admin.get("dm_permission") is False
    subcommands = {o["name"]: {s["name"] for s in o.get("options", []) if s["type"] == SUB_COMMAND}
                   for o in admin["options"]}
    assert subcommands == {"quota": {"set", "clear", "show"}, "limits": {"set", "show"},
                           "channels": {"allow", "disallow", "clear", "list"}, "intake": {"pause", "resume"},
                           "banned-words": {"add", "remove", "list"}, "audit": set(),
                           "defaults": {"set", "reset", "show"}, "models": {"allow", "show"},
                           "refund": set(), "workers": set(), "stats": set()}
    assert {o["name"] for o in by_name["preset"]["options"]} == {"save", "use", "list", "delete"}


def test_the_checker_catches_what_discord_refuses():
    bad = {"name": "Bad Name", "description": "", "type": 1, "options": [
        {"name": "a", "description": "x" * 101, "type": 3, "required": False},
        {"name": "b", "description": "y", "type": 3, "required": True,
         "choices": [{"name": str(i), "value": str(i)} for i in range(26)]}]}
    found = "\n".join(problems(bad, "/", 0))
    for expected in ("lowercase", "description is 0", "101 chars", "26 choices", "required options"):
        assert expected in found
    deep = {"name": "r", "description": "d", "type": 1, "options": [
        {"name": "g", "description": "d", "type": 2, "options": [
            {"name": "h", "description": "d", "type": 2, "options": []}]}]}
    assert any("nest" in p for p in problems(deep, "/", 0))


# ---- commands named in what the bot says -----------------------------------------------------

# "/name", "/name sub" or "/name group sub" in a message; not a path ("a/b", "/srv/x"), a URL or
# an option ("/rerun job:").
_WORD = r"([a-z][a-z-]*)(?![\w:/-])"
COMMAND_MENTION = re.compile(rf"(?<![\w/<.:~])/{_WORD}(?: {_WORD})?(?: {_WORD})?")
SAID_BY = ("bot", "commands", "storage")  # the packages whose messages reach Discord users


def user_texts(root) -> list[tuple[str, str]]:
    """(file, text) for every string literal, and every literal part of an f-string, in the
    packages whose messages members and admins read."""
    import ast
    found = []
    for package in SAID_BY:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.append((str(path.relative_to(root)), node.value))
    return found


def unknown_commands(tree: list[dict], texts: list[tuple[str, str]]) -> list[str]:
    """Each "/command …" in `texts` that names a command the bot does not have: an unknown root
    starting with "disco", a command word (any command's or subcommand's name) its group lacks,
    or another command's name written after a root that has no subcommands ("/disco cancel")."""
    subs = {c["name"]: {o["name"]: {s["name"] for s in o.get("options") or () if s["type"] == SUB_COMMAND}
                        for o in c.get("options") or () if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)}
            for c in tree}
    words = set(subs) | {name for groups in subs.values() for group, leaves in groups.items()
                         for name in (group, *leaves)}
    wrong = []
    for where, text in texts:
        for match in COMMAND_MENTION.finditer(text):
            root, first, second = match.groups()
            said = f"{where}: {match.group(0)!r}"
            if root not in subs:
                if root.startswith("disco"):
                    wrong.append(f"{said}: no command /{root}")
            elif not subs[root]:
                if first in subs:
                    wrong.append(f"{said}: /{root} takes no subcommand; /{first} is its own command")
            elif first in subs[root]:
                if second is not None and subs[root][first] and second not in subs[root][first]:
                    wrong.append(f"{said}: /{root} {first} has no {second!r}")
            elif first in words:
                wrong.append(f"{said}: /{root} has no {first!r}")
    return wrong


def test_every_command_a_message_names_exists(tree):
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    assert unknown_commands(tree, user_texts(root)) == []


def test_the_command_checker_catches_a_wrong_name(tree):
    texts = [("x.py", "cancel one with /disco cancel"), ("x.py", "see /preset remove"),
             ("x.py", "run /disco-queue"), ("x.py", "/disco-admin intake stop"),
             ("x.py", "fine: /cancel, /preset list, /disco-admin intake resume, /srv/disco, a/b")]
    found = "\n".join(unknown_commands(tree, texts))
    for expected in ("/disco cancel", "/preset remove", "/disco-queue", "intake stop"):
        assert expected in found
    assert "fine" not in found
