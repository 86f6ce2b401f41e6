"""`disco gobig IMAGE`: GoBig on the command line — an image enlarged tile by tile with the
engine, without the queue (engine/diffusion/gobig.py).

The settings are those the image carries when it is one of ours (the `disco_settings` PNG
chunk every render writes: prompts, model, seed), under `--settings`, `--set` and the flags as
for `disco render`; the render size is the image's own. The enlarged PNG goes to `--out`, and
its finished tiles to a folder beside it, so a run stopped part-way and started again
re-diffuses only the tiles it had not finished.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import EngineError, SpecError
from engine.media.still_formats import FORMAT_LIST
from engine.spec.options import add_spec_options, bounded_int

if TYPE_CHECKING:
    from PIL import Image

    from engine.spec.render import RenderSpec

# What a stored spec says about the image it made, not about enlarging it.
_NOT_CARRIED = ("gobig", "gobig_init", "n_batches", "width", "height", "init_image", "schema_version")


def add_gobig_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("gobig", help="enlarge an image tile by tile (GoBig)",
                            description="Enlarge an image 2× or 3×: Lanczos, then every tile "
                                        "re-diffused with the prompts and blended.")
    p.add_argument("image", type=Path, help=f"a {FORMAT_LIST} (a PNG of ours keeps its settings)")
    p.add_argument("prompt", nargs="?", help="prompts, when the image carries none or to change them")
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    p.add_argument("--scale", type=bounded_int(2, 3), help="gobig_scale (default 2)")
    p.add_argument("--overlap", type=bounded_int(8, 256), help="gobig_overlap in pixels (default 64)")
    add_spec_options(p)
    p.add_argument("--no-progress", action="store_true", help="no line per tile")
    p.set_defaults(func=cmd_gobig)


def gobig_spec(args: argparse.Namespace) -> tuple[RenderSpec, Image.Image, list[str]]:
    """The spec that enlarges `args.image`, the image read once, and lines to show the user.
    SpecError when the image is unusable or a setting invalid."""
    from engine.media.stills import read_still_file
    from engine.spec.fields import MIN_SIDE
    from engine.spec.gobig import MAX_GOBIG_PIXELS, MAX_SEED
    from engine.spec.sources import build_spec

    source = read_still_file(args.image, MAX_GOBIG_PIXELS)
    width, height = source.size
    if (args.width is None and width < MIN_SIDE) or (args.height is None and height < MIN_SIDE):
        raise SpecError(f"{args.image} is {width}×{height}; GoBig renders from at least "
                        f"{MIN_SIDE}×{MIN_SIDE} pixels — give --width and --height (e.g. "
                        f"--width {max(width, MIN_SIDE)} --height {max(height, MIN_SIDE)}) to "
                        "enlarge it from that size")
    carried, report = _carried_settings(args.image)
    args.batches = None
    spec, notes = build_spec(args, base=carried)
    chosen = {"gobig_scale": args.scale, "gobig_overlap": args.overlap}
    spec = spec.replace(gobig=True, gobig_init=str(args.image.resolve()), n_batches=1,
                        width=args.width or width, height=args.height or height,
                        seed=spec.seed if spec.seed is not None else random.randint(0, MAX_SEED),
                        **{k: v for k, v in chosen.items() if v is not None})
    return spec, source, report + notes + list(spec.notes)


def _carried_settings(image: Path) -> tuple[dict, list[str]]:
    from engine.media.files import png_settings
    from engine.spec.jsontext import read_json

    text = png_settings(image)
    if not text:
        return {}, [f"{image.name} carries no settings: DD's defaults and the prompt you give"]
    data = read_json(text, f"the settings in {image.name}")
    if not isinstance(data, dict):
        raise SpecError(f"the settings in {image.name} are not a mapping; give --settings instead")
    return {k: v for k, v in data.items() if k not in _NOT_CARRIED}, [f"settings from {image.name}"]


def cmd_gobig(args: argparse.Namespace) -> int:
    try:
        spec, source, report = gobig_spec(args)
        for line in report:
            print(f"note: {line}", file=sys.stderr)
        from engine.cli.render import command_line_pool
        from engine.diffusion.gobig import gobig_image
        from engine.diffusion.pipeline import DiscoPipeline
        from engine.spec.gobig import gobig_tiles

        pool = command_line_pool(args)
        out = args.out / f"{args.image.stem}_x{spec.gobig_scale}.png"
        tiles = len(gobig_tiles(spec))

        def on_tile(event) -> None:
            if event.step is None and not args.no_progress:
                print(f"tile {event.tile + 1} of {tiles}{' (kept)' if event.reused else ''}", file=sys.stderr)

        path = gobig_image(DiscoPipeline(pool), spec, source, spec.seed,
                           args.out / f"{args.image.stem}_gobig_tiles", out, callback=on_tile)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write to {args.out}: {exc.strerror or exc}; choose another --out folder "
              "or free some space", file=sys.stderr)
        return 2
    print(f"{path}  {spec.width * spec.gobig_scale}×{spec.height * spec.gobig_scale}  seed {spec.seed}")
    return 0
