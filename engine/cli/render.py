"""`disco render`: the engine on the command line, without Discord.

Settings are layered: DD's defaults < `--settings` file (our JSON or a DD settings.txt) <
`--set key=value` < the explicit flags (prompt, steps, size, seed, batches).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.errors import EngineError
from engine.spec.options import add_batches_option, add_spec_options

NOISE_WARNING = ("model set {name}: tiny random models — the output is noise, useful only to check "
                 "the pipeline. Use --models dd-default for real images.")


def command_line_pool(args: argparse.Namespace):
    """The ModelPool that --models, --device, --allow-download and --precision name (imports
    torch), with a warning on stderr when its models only make noise. The command's --out folder
    is made first: a file in its way (or no permission) stops the command with its own error
    line before the models load, not after."""
    from engine.models.pool import ModelPool, resolve_device

    if getattr(args, "out", None) is not None:
        args.out.mkdir(parents=True, exist_ok=True)

    pool = ModelPool(args.models, resolve_device(args.device), allow_download=args.allow_download,
                     precision=getattr(args, "precision", "auto"))  # describe has no --precision
    if pool.produces_noise:
        print(NOISE_WARNING.format(name=args.models), file=sys.stderr)
    return pool


def add_render_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("render", help="render still images from a prompt",
                            description="Render Disco Diffusion still images.")
    p.add_argument("prompt", nargs="?", help='prompts joined by "|", each "text:weight", e.g. '
                                             '"a lighthouse:2 | yellow:-0.5"')
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    add_spec_options(p)
    add_batches_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from engine.spec.sources import build_spec

    try:
        spec, report = build_spec(args)
        for line in report:
            print(f"note: {line}", file=sys.stderr)
        from engine.diffusion.pipeline import DiscoPipeline
        from engine.diffusion.progress import TqdmProgress
        from engine.diffusion.prompt_length import still_prompts, unread_prompt_notes

        pool = command_line_pool(args)
        for line in unread_prompt_notes(pool, spec.clip_models, still_prompts(spec)):
            print(f"note: {line}", file=sys.stderr)
        progress = TqdmProgress(disable=args.no_progress)
        results = DiscoPipeline(pool)(spec, out_dir=args.out, callback=progress)
        progress.close()
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output folder: missing permissions, a file in the way, disk full
        print(f"error: cannot write the results to {args.out}: {exc.strerror or exc}; "
              "choose another --out folder or free some space", file=sys.stderr)
        return 2
    for result in results:
        print(f"{result.path}  seed {result.seed}  {result.seconds:.1f} s")
    return 0
