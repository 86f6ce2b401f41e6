"""`disco models list | download | verify`: look after the model cache from the command line.

`add_models_commands(subparsers, options)` plugs the commands into the main `disco` parser; every
handler takes the parsed arguments, prints its report and returns the process exit code. Errors
are printed as one message (what went wrong and how to fix it), never as a traceback. With
`options` (the entry's `--config` parent) list, download and verify see the config file's custom
models, which the entry registers before calling them. `disco models add` appends a
`[models.custom.NAME]` table to the config file given with `--config` (or prints it).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.models.custom import ARCHITECTURE_KEYS, config_table, parse_custom_models
from engine.models.download import (
    download,
    is_marked_verified,
    model_path,
    models_dir,
    reference_sha256,
    verify,
)
from engine.models.registry import (
    MODEL_SETS,
    ModelFile,
    all_models,
    custom_model_names,
    get_model,
    model_set_members,
)
from engine.spec.options import bounded_float

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_models_commands(subparsers: argparse._SubParsersAction,
                        options: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Register `models` and its subcommands; each sets `func` to its handler. `options`: the
    entry's config parent, so the config file's custom models are registered first."""
    parents = [options] if options is not None else []
    models = subparsers.add_parser(
        "models", help="list, download and verify model files",
        description=f"Manage the model cache ({models_dir()}; set DISCO_MODELS_DIR to move it).")
    commands = models.add_subparsers(dest="models_command", metavar="{list,download,verify,add}")
    commands.required = True

    listing = commands.add_parser("list", help="show every known model file and model set",
                                  parents=parents)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=cmd_models_list)

    fetch = commands.add_parser("download", help="download model files (resumes partial downloads)",
                                parents=parents)
    fetch.add_argument("names", nargs="*", metavar="NAME", help="model names, e.g. ViT-B-32::openai")
    fetch.add_argument("--set", dest="model_set", metavar="SET",
                       help=f"download every file of a model set ({', '.join(MODEL_SETS)})")
    fetch.add_argument("--timeout", type=bounded_float(1, 600), default=10.0,
                       help="seconds to wait for a server before trying the next mirror (1-600; default 10)")
    fetch.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    fetch.set_defaults(func=cmd_models_download)

    check = commands.add_parser("verify", help="check cached files against their SHA-256",
                                parents=parents)
    check.add_argument("names", nargs="*", metavar="NAME", help="models to check (default: every cached file)")
    check.set_defaults(func=cmd_models_verify)

    add = commands.add_parser(
        "add", help="add your own diffusion model (DD's 'custom') as [models.custom.NAME]",
        description="Writes a [models.custom.NAME] table: appended to --config FILE (checked to "
                    "read back as the same model; the rest of the file is kept byte for byte), "
                    "or printed to paste yourself. Architecture values not given keep DD's 512 model's.")
    add.add_argument("name", metavar="NAME", help="the model's name, as diffusion_model will name it")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="an http(s) address the engine downloads it from")
    source.add_argument("--path", help="the file on the engine's machine, used where it is")
    add.add_argument("--sha256", required=True, metavar="HEX", help="the file's SHA-256 (sha256sum FILE)")
    add.add_argument("--cut-schedules", dest="cut_schedules", metavar="GROUP",
                     help="DD's cut-schedule group: default, pad_or_pulp or watercolor")
    for key in ARCHITECTURE_KEYS:
        kind = _ARG_TYPES.get(key, str)
        add.add_argument(f"--{key.replace('_', '-')}", dest=key, type=kind, metavar="V",
                         help=f"guided-diffusion's {key}")
    add.add_argument("--config", dest="config_file", metavar="FILE",
                     help="the TOML config file to append the table to (default: print it)")
    add.set_defaults(func=cmd_models_add)
    return models


def _flag(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError("expected true or false")
    return text.lower() == "true"


_ARG_TYPES = {"image_size": int, "num_channels": int, "num_res_blocks": int, "num_heads": int,
              "num_head_channels": int, "diffusion_steps": int, "learn_sigma": _flag,
              "resblock_updown": _flag, "use_scale_shift_norm": _flag, "rescale_timesteps": _flag,
              "use_new_attention_order": _flag}


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_FAILED


def _human_size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def _describe(entry: ModelFile) -> dict[str, Any]:
    path = model_path(entry)
    part = path.with_name(path.name + ".part")
    cached = path.is_file()
    expected, source = reference_sha256(entry, path)
    return {
        "name": entry.name, "kind": entry.kind, "filename": entry.filename, "path": str(path),
        "size": path.stat().st_size if cached else entry.size, "cached": cached,
        "partial_bytes": part.stat().st_size if part.is_file() else 0,
        "verified": cached and is_marked_verified(entry, path),
        "sha256": expected, "sha256_source": source, "urls": list(entry.urls), "notes": entry.notes,
        "custom": entry.name in custom_model_names(),
    }


def _list_entries() -> tuple[list[ModelFile], str | None]:
    """All entries; if the CLIP table cannot be read (open_clip missing or broken), the rest and why."""
    try:
        return list(all_models()), None
    except (EngineError, ImportError) as err:
        return list(all_models(include_clip=False)), f"CLIP models are not listed: {err}"


def cmd_models_list(args: argparse.Namespace, *_config: Any) -> int:
    entries, problem = _list_entries()
    rows = [_describe(entry) for entry in entries]
    if getattr(args, "json", False):
        print(json.dumps({"models_dir": str(models_dir()), "models": rows, "sets": MODEL_SETS,
                          "problem": problem}, indent=1))
        return EXIT_OK
    header = ("NAME", "KIND", "SIZE", "CACHED", "VERIFIED", "SHA256")
    table = [header] + [(row["name"], row["kind"], _human_size(row["size"]),
                         "yes" if row["cached"] else ("partial" if row["partial_bytes"] else "no"),
                         "yes" if row["verified"] else ("no" if row["cached"] else "-"), row["sha256_source"])
                        for row in rows]
    widths = [max(len(line[col]) for line in table) for col in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    print(f"\nCache folder: {models_dir()}  (set DISCO_MODELS_DIR to change it)")
    print("SHA256: 'published' = checked against a published hash; 'recorded' = hash of the first download; "
          "'none' = nothing to check against yet.")
    print("\nModel sets:")
    for name, description in MODEL_SETS.items():
        print(f"  {name}: {description}")
    custom = custom_model_names()
    print("\nCustom models (the config file's [models.custom.NAME]): "
          + (", ".join(custom) if custom else "none; add one with `disco models add`"))
    if problem:
        print(f"\nwarning: {problem}", file=sys.stderr)
    return EXIT_OK


def cmd_models_download(args: argparse.Namespace, *_config: Any) -> int:
    names = list(args.names)
    try:
        if args.model_set:
            members = model_set_members(args.model_set)
            if not members:
                print(f"Model set {args.model_set!r} uses random weights; there is nothing to download.")
            names.extend(name for name in members if name not in names)
    except EngineError as err:
        return _fail(str(err))
    if not names and not args.model_set:
        print("error: name at least one model (see `disco models list`) or a set with --set dd-default",
              file=sys.stderr)
        return EXIT_USAGE
    failed = 0
    for name in names:
        try:
            path = download(get_model(name), progress=not args.no_progress, timeout=args.timeout)
        except KeyboardInterrupt:
            print(f"\ninterrupted; run the same command again to resume {name}", file=sys.stderr)
            return EXIT_INTERRUPTED
        except EngineError as err:
            failed += 1
            _fail(str(err))
            continue
        print(f"OK  {name}  {path}")
    if failed:
        print(f"{failed} of {len(names)} model file(s) could not be downloaded.", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_models_verify(args: argparse.Namespace, *_config: Any) -> int:
    try:
        if args.names:
            entries = [get_model(name) for name in args.names]
        else:
            entries = [entry for entry in _list_entries()[0] if model_path(entry).is_file()]
    except EngineError as err:
        return _fail(str(err))
    if not entries:
        print(f"No model files in {models_dir()} yet; fetch some with `disco models download NAME`.")
        return EXIT_OK
    all_ok = True
    for entry in entries:
        try:
            result = verify(entry, progress=True)
        except OSError as err:
            all_ok = False
            _fail(f"cannot read {model_path(entry)}: {err.strerror or err}")
            continue
        print(result.describe())
        all_ok = all_ok and result.ok
    return EXIT_OK if all_ok else EXIT_FAILED


def cmd_models_add(args: argparse.Namespace) -> int:
    """Print the new table, or append it to --config after checking the whole file reads back."""
    values = {key: getattr(args, key) for key in ("url", "path", "sha256", "cut_schedules",
                                                  *ARCHITECTURE_KEYS)
              if getattr(args, key, None) is not None}
    try:
        table = config_table(args.name, values)
    except EngineError as err:
        return _fail(str(err))
    if not args.config_file:
        print(table, end="")
        print("# paste this into the config file (or run again with --config FILE)", file=sys.stderr)
        return EXIT_OK
    try:
        _append_table(Path(args.config_file), args.name, table)
    except (EngineError, OSError, ValueError) as err:
        return _fail(str(err))
    print(f"Added [models.custom.{args.name}] to {args.config_file}; the bot and the engine use "
          f"it from their next start.")
    return EXIT_OK


def _append_table(path: Path, name: str, table: str) -> None:
    """Append `table` to the config file, or refuse. Appending keeps every byte (and comment) of
    the file; the result is parsed again and must hold exactly the old tables plus this one
    before it replaces the file atomically."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    try:
        before = tomllib.loads(old)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML ({err}); fix it first, or run without --config "
                         f"and paste the table yourself") from None
    if name in before.get("models", {}).get("custom", {}):
        raise ValueError(f"{path} already has [models.custom.{name}]; edit it there, or choose "
                         f"another name")
    new = old + ("\n" if old and not old.endswith("\n") else "") + ("\n" if old else "") + table
    after = tomllib.loads(new)
    entries = parse_custom_models(after.get("models", {}).get("custom", {}))
    if {k: v for k, v in after.items() if k != "models"} != {k: v for k, v in before.items()
                                                             if k != "models"} \
            or name not in {entry.name for entry in entries}:
        raise ValueError(f"appending to {path} would change its other settings; paste the table "
                         f"yourself (run without --config)")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
