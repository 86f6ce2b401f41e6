"""`disco <command>`: a thin dispatcher. Each layer registers its own subcommands and imports
its heavy dependencies only when its command runs, so `disco --help` stays fast and the bot's
commands never load torch.

The config file belongs to this entry, not to the layers. A command that reads it (bot, engine,
jobs) builds its parser with `parents=[options]` from `config_options()`: that adds `--config`
and `--data-dir` (one spelling, one help text) and marks the command. `main()` then loads the
file once, resolves the data folder once and calls the command as `func(args, config, data_dir)`;
every other command is called as `func(args)`. No layer imports `disco`: the dependency points
one way, from the entry down.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import traceback

from disco.config import (
    ConfigError,
    load_config,
    register_config_models,
    resolve_data_dir,
)
from engine.errors import EngineError


def config_options(*, data_dir: bool = True) -> argparse.ArgumentParser:
    """The parent parser of every command that reads the config file; `data_dir=False` for one
    that uses no data folder (`models`: its cache is DISCO_MODELS_DIR)."""
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--config", help="TOML config file (see config.example.toml)")
    if data_dir:
        options.add_argument("--data-dir", help="database and job files (default: DISCO_DATA_DIR, "
                                                "[storage] data_dir of --config, or ./data)")
    options.set_defaults(reads_config=True)
    return options


def build_parser() -> argparse.ArgumentParser:
    from bot.cli import add_bot_command
    from commands.cli_db import add_db_command
    from commands.cli_jobs import add_jobs_command
    from commands.cli_stats import add_stats_command
    from engine.cli import render as engine_cli
    from engine.cli.animate import add_animate_command
    from engine.cli.bench import add_bench_command
    from engine.cli.describe import add_describe_command
    from engine.cli.engine import add_engine_command
    from engine.cli.gobig import add_gobig_command
    from engine.cli.models import add_models_commands
    from engine.cli.settings import add_settings_command
    from engine.cli.study import add_study_command
    from engine.cli.worker import add_worker_command
    from commands.cli_workers import add_workers_command

    parser = argparse.ArgumentParser(prog="disco", description="Disco Diffusion for Discord.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    options = config_options()
    engine_cli.add_render_command(commands)
    add_bench_command(commands)
    add_animate_command(commands)
    add_study_command(commands)
    add_gobig_command(commands)
    add_describe_command(commands)
    add_settings_command(commands)
    add_models_commands(commands, config_options(data_dir=False))
    add_engine_command(commands, options)
    add_worker_command(commands, options)
    add_workers_command(commands, options)
    add_stats_command(commands, options)
    add_jobs_command(commands, options)
    add_db_command(commands, options)
    add_bot_command(commands, options)
    for name in ("render", "animate", "study", "gobig"):  # the engine alone: only the custom models
        commands.choices[name].add_argument(
            "--config", help="TOML config file whose [models.custom.NAME] models to use")
        commands.choices[name].set_defaults(registers_models=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run a command. No traceback reaches the terminal: a known failure (a bad config, setting,
    file or database) is one line that says what to do; anything else is one line naming the
    file that holds the full traceback."""
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `disco models list | head`: the reader has all it wanted
        # Python flushes stdout again at exit: point it at /dev/null so that says nothing either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a process SIGPIPE stopped
    except Exception as exc:
        if is_users_to_fix(exc):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        # a bug: keep the traceback for the report, not on the terminal
        print(f"error: unexpected {type(exc).__name__}: {str(exc)[:300]} (a bug; the full traceback "
              f"is in {write_traceback(exc)}, please include it when reporting)", file=sys.stderr)
        return 1


def is_users_to_fix(exc: BaseException) -> bool:
    """Whether `exc` is of a layer's root error class: a bad config, setting, file or database,
    the user's to fix. storage is looked at only when the command loaded it (a StorageError
    cannot come from a package never imported), so `disco --help` or a render never loads it."""
    if isinstance(exc, (ConfigError, EngineError)):
        return True
    storage_errors = sys.modules.get("storage.errors")
    return storage_errors is not None and isinstance(exc, storage_errors.StorageError)


def write_traceback(exc: BaseException) -> str:
    """Write `exc`'s traceback to a new file in the temp folder; its path."""
    fd, path = tempfile.mkstemp(prefix="disco-error-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"disco {' '.join(sys.argv[1:])[:2000]}\n")
        traceback.print_exception(exc, file=f)
    return path


def run(args: argparse.Namespace) -> int:
    """Call the command; one that reads the config gets its sections and the data folder (and
    the engine's own commands, with --config, its custom models)."""
    if getattr(args, "registers_models", False) and args.config:
        register_config_models(load_config(args.config))
    if not getattr(args, "reads_config", False):
        return int(args.func(args) or 0)
    config = load_config(args.config)
    register_config_models(config)
    return int(args.func(args, config, resolve_data_dir(getattr(args, "data_dir", None), config)) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
