"""`disco describe IMAGE`: the image's CLIP interrogation on the command line — the best
mediums, movements, artists and flavours from the shipped word lists, and a DD prompt made of
them (engine/describe/interrogate.py). `--json` prints it as one JSON object."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from engine.errors import EngineError, SpecError
from engine.media.still_formats import FORMAT_LIST
from engine.models.registry import MODEL_SETS

DEFAULT_CLIP_MODELS = "ViT-B-32::openai,ViT-B-16::openai,RN50::openai"  # DD's default three


def add_describe_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("describe", help="describe an image as a DD prompt (CLIP interrogation)",
                            description="Rank mediums, movements, artists and flavours against an "
                                        "image with CLIP and print a weighted DD prompt.")
    p.add_argument("image", type=Path, help=f"a {FORMAT_LIST}")
    p.add_argument("--clip-models", default=DEFAULT_CLIP_MODELS,
                   help=f"CLIP models, comma-separated (default {DEFAULT_CLIP_MODELS})")
    p.add_argument("--models", default="dd-default", help=f"model set: {', '.join(MODEL_SETS)}")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--allow-download", action="store_true", help="download missing model files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_describe)


def cmd_describe(args: argparse.Namespace) -> int:
    from engine.media.stills import read_still_file
    from engine.spec.gobig import MAX_GOBIG_PIXELS

    try:
        clip_models = _clip_models(args.clip_models)
        image = read_still_file(args.image, MAX_GOBIG_PIXELS)
        from engine.cli.render import command_line_pool
        from engine.describe.interrogate import describe_image

        description = describe_image(command_line_pool(args), image, clip_models)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(description), ensure_ascii=False))
        return 0
    for name, ranked in description.ranked.items():
        print(f"{name}: " + ", ".join(f"{r.phrase} ({r.score:.3f})" for r in ranked))
    print(description.prompt)
    return 0


def _clip_models(text: str) -> list[str]:
    from engine.spec.fields import Invalid, check_clip_models

    try:
        return check_clip_models(text, "clip_models")
    except Invalid as err:
        fix = f"; {err.fix}" if err.fix else ""
        raise SpecError(f"--clip-models: {err.what}{fix}") from None
