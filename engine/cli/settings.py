"""`disco settings [NAME]`: every Disco Diffusion setting the engine takes, with its allowed
values and default (still settings, then animation settings), or one explained with how to give
it on the command line; `--json` prints them as data. The words are engine.spec.setting_docs',
the same `/disco-help setting:` shows on Discord.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from engine.errors import SpecError


def add_settings_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("settings", help="list the DD settings, or explain one",
                            description="Every Disco Diffusion setting with its allowed values and "
                                        "default, or one setting explained.")
    p.add_argument("name", nargs="?", help="a setting to explain, e.g. cut_ic_pow or zoom")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_settings)


def cmd_settings(args: argparse.Namespace) -> int:
    from engine.spec.setting_docs import closest_setting, setting_help, setting_names

    if args.name is None:
        entries = [entry for name in setting_names() for entry in setting_help(name)]
    else:
        entries = list(setting_help(args.name))
        if not entries:
            guess = closest_setting(args.name)
            raise SpecError(f"there is no setting called {args.name[:60]!r}"
                            + (f"; did you mean {guess!r}?" if guess else ";")
                            + " `disco settings` lists them all")
    if args.json:
        print(json.dumps([asdict(entry) for entry in entries], indent=1, ensure_ascii=False))
    elif args.name is None:
        for animation, title in ((False, "Settings (disco render --set NAME=VALUE, settings files)"),
                                 (True, "Animation settings (disco animate --set NAME=VALUE)")):
            print(title)
            for entry in (e for e in entries if e.animation == animation):
                print(f"  {entry.name:<32} {entry.allowed}  [default: {_clipped(entry.default)}]")
    else:
        for entry in entries:
            command = "animate" if entry.animation else "render"
            print(f"{entry.name} ({'animation setting' if entry.animation else 'setting'}): {entry.meaning}\n"
                  f"  allowed: {entry.allowed}\n  default: {entry.default}\n"
                  f"  give it: disco {command} ... --set {entry.name}=VALUE (or in a settings file)")
    return 0


def _clipped(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
