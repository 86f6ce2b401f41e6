"""`disco study`: a parameter study (EZ Chart) on the command line.

    disco study "a lighthouse" --x "clip_guidance_scale=1500,5000" --y "steps=50,100" --out DIR

Every cell shares the seed and every setting but the varied ones. Rerunning the same command
with the same --out resumes: finished cells are kept. Prints the grid's path.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.render import command_line_pool
from engine.errors import EngineError
from engine.spec.options import add_spec_options, bounded_int


def add_study_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("study", help="a labelled grid varying one or two settings",
                            description="Render a parameter study: one image per combination of "
                            "axis values, all with the same seed, composed into a labelled grid.")
    p.add_argument("prompt", nargs="?", help='prompts joined by "|", each "text:weight"')
    p.add_argument("--x", required=True, metavar="PARAM=V1,V2,...",
                   help="the columns, e.g. clip_guidance_scale=1500,5000,15000; values split on "
                        "commas outside [brackets] and \"quotes\"; join CLIP models with +")
    p.add_argument("--y", metavar="PARAM=V1,V2,...", help="the rows (optional), e.g. steps=50,100")
    p.add_argument("--max-cells", type=bounded_int(1, 1000), default=None, help="cell limit (default 36)")
    p.add_argument("--out", type=Path, default=Path("out/study"),
                   help="output folder (default ./out/study); the same folder resumes")
    add_spec_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_study)


class _Progress:
    """One tqdm bar per cell, titled "cell k of n"."""

    def __init__(self, disable: bool):
        self.disable, self.bar, self.k = disable, None, 0

    def __call__(self, k: int, n: int, info) -> None:
        from tqdm import tqdm

        if info is None:
            self.close()
            return
        if k != self.k:
            self.close()
            self.k = k
            self.bar = tqdm(total=info.total, initial=info.step - 1, unit="step",
                            desc=f"cell {k} of {n}", disable=self.disable)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_study(args: argparse.Namespace) -> int:
    from engine.spec.sources import build_spec
    from engine.spec.study import MAX_CELLS, build_study, recorded_seed

    progress = _Progress(args.no_progress)
    try:
        base, report = build_spec(args)
        recorded = recorded_seed(args.out) if base.seed is None else None
        if recorded is not None:
            base = base.replace(seed=recorded)
            report.append(f"seed {base.seed}: the seed of the study already in {args.out}")
        max_cells = MAX_CELLS if args.max_cells is None else args.max_cells
        if max_cells < 1:
            raise EngineError("--max-cells: give a whole number of at least 1")
        study = build_study(base, args.x, args.y, max_cells=max_cells)
        for line in report:
            print(f"note: {line}", file=sys.stderr)
        from engine.study.render import render_study

        result = render_study(command_line_pool(args), study, args.out, callback=progress)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the study to {args.out}: {exc.strerror or exc}; "
              "choose another --out folder or free some space", file=sys.stderr)
        return 2
    finally:
        progress.close()
    kept = len(result.cells) - len(result.rendered)
    print(f"{result.grid}  {len(result.cells)} cells, seed {study.base.seed}"
          + (f" ({kept} kept from an earlier run)" if kept else ""))
    return 0
