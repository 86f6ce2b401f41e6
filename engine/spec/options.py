"""The command-line options every command that renders shares (`disco render`, `study`, `gobig`,
`jobs submit`) and the bounded integer type of every numeric flag.

Only argparse: building `disco`'s parser loads no spec model, numpy or torch (engine/spec/
sources.py turns the parsed options into a RenderSpec).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.models.devices import PRECISIONS
from engine.models.registry import MODEL_SETS


def add_spec_options(p: argparse.ArgumentParser, *, renders_here: bool = True) -> None:
    """The settings flags; with `renders_here` (render, study, gobig) also the flags of the models
    this process loads. A queued job (`renders_here=False`) is rendered by whichever engine claims
    it, on that engine's device, precision and downloads: only its model set is the job's."""
    p.add_argument("--settings", type=Path, help="settings file: our JSON or a DD *_settings.txt "
                                                 "(or a PNG this engine rendered)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting, e.g. --set clip_guidance_scale=8000 (repeatable)")
    p.add_argument("--steps", type=bounded_int(1, 10_000), help="diffusion steps (DD's default 250)")
    p.add_argument("--width", type=bounded_int(1, 100_000),
                   help="pixels, rounded down to a multiple of 64 as DD does (DD's default 1280)")
    p.add_argument("--height", type=bounded_int(1, 100_000),
                   help="pixels, rounded down to a multiple of 64 as DD does (DD's default 768)")
    p.add_argument("--seed", type=bounded_int(0, 2**32 - 1),
                   help="0 to 4294967295 (default random); image n of a batch uses seed + n")
    if not renders_here:
        p.add_argument("--models", choices=tuple(MODEL_SETS),
                       help="the job's model set: a disco worker claims only jobs of its own (default: "
                            "[engine] model_set of --config, else dd-default)")
        return
    p.add_argument("--models", default="dd-default", help=f"model set: {', '.join(MODEL_SETS)}")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto = DD's choice: fp16 on CUDA, fp32 on CPU; bf16 is faster on CPUs with AMX")
    p.add_argument("--allow-download", action="store_true",
                   help="download missing model files (otherwise a missing file is an error)")


def add_batches_option(p: argparse.ArgumentParser) -> None:
    """`--batches`, DD's n_batches, within RenderSpec's bound (1-100)."""
    p.add_argument("--batches", type=bounded_int(1, 100), help="images to render (n_batches, 1-100; default 1)")


def bounded_float(low: float, high: float):
    """An argparse type: a number from `low` to `high`, else argparse's one-line usage error."""
    return _bounded(float, low, high, f"a number from {low:g} to {high:g}")


def bounded_int(low: int, high: int):
    """An argparse type: an integer from `low` to `high`, else argparse's one-line usage error."""
    return _bounded(int, low, high, f"a whole number from {low} to {high}")


def _bounded(number: type, low: float, high: float, wanted: str):
    def parse(text: str):
        try:
            value = number(text) if len(text) <= 20 else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:  # NaN fails both comparisons
            raise argparse.ArgumentTypeError(f"give {wanted}, not {text[:40]!r}")
        return value
    return parse
