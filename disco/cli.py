"""`disco <command>`: a thin dispatcher. Each layer registers its own subcommands and imports
its heavy dependencies only when its command runs, so `disco --help` stays fast and the bot's
commands never load torch."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from bot.cli import add_bot_command
    from commands.cli_jobs import add_jobs_command
    from engine.cli import render as engine_cli
    from engine.cli.animate import add_animate_command
    from engine.cli.bench import add_bench_command
    from engine.cli.engine import add_engine_command
    from engine.cli.models import add_models_commands
    from engine.cli.study import add_study_command

    parser = argparse.ArgumentParser(prog="disco", description="Disco Diffusion for Discord.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    engine_cli.add_render_command(commands)
    add_bench_command(commands)
    add_animate_command(commands)
    add_study_command(commands)
    add_models_commands(commands)
    add_engine_command(commands)
    add_jobs_command(commands)
    add_bot_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
