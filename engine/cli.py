"""`disco render` and `disco bench`: the engine on the command line, without Discord.

Settings are layered: DD's defaults < `--settings` file (our JSON or a DD settings.txt) <
`--set key=value` < the explicit flags (prompt, steps, size, seed, batches).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import EngineError

NOISE_WARNING = ("model set {name}: tiny random models — the output is noise, useful only to check "
                 "the pipeline. Use --models dd-default for real images.")


def add_render_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("render", help="render still images from a prompt",
                            description="Render Disco Diffusion still images.")
    p.add_argument("prompt", nargs="?", help='prompts joined by "|", each "text:weight", e.g. '
                                             '"a lighthouse:2 | yellow:-0.5"')
    p.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    add_spec_options(p)
    p.add_argument("--batches", type=int, help="images to render (n_batches; default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_render)


def add_bench_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("bench", help="measure seconds per step and peak memory (JSON)",
                            description="Benchmark the engine; prints one JSON object.")
    p.add_argument("--models", default="random-full", choices=("random-full", "test-tiny"))
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--cutn-batches", type=int, default=1)
    p.add_argument("--clip-models", nargs="+", default=["ViT-B-32::openai"], metavar="ARCH::TAG")
    p.add_argument("--secondary", action=argparse.BooleanOptionalAction, default=True,
                   help="use the secondary model (default on)")
    p.add_argument("--sampling-mode", default="ddim", choices=("ddim", "plms"))
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto = DD's choice: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other setting, repeatable")
    p.add_argument("--animation", action="store_true",
                   help="instead: per-frame animation cost outside diffusion (warps, depth, encode)")
    p.add_argument("--repeats", type=int, default=3, help="--animation: timed repeats per part")
    p.add_argument("--encode-frames", type=int, default=24, help="--animation: frames in the test clip")
    p.set_defaults(func=cmd_bench)


def add_spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="settings file: our JSON or a DD *_settings.txt")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting, e.g. --set clip_guidance_scale=8000 (repeatable)")
    p.add_argument("--steps", type=int)
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--models", default="dd-default", help="model set: dd-default, random-full, test-tiny")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto = DD's choice: fp16 on CUDA, fp32 on CPU; bf16 is faster on CPUs with AMX")
    p.add_argument("--allow-download", action="store_true",
                   help="download missing model files (otherwise a missing file is an error)")


def build_spec(args: argparse.Namespace):
    """The RenderSpec the command line describes, plus lines to show the user."""
    from .spec import RenderSpec, parse_set_options

    report: list[str] = []
    data: dict = {}
    if getattr(args, "settings", None):
        data, report = _read_settings_file(args.settings)
    data.update(parse_set_options(args.set))
    explicit = {"text_prompts": getattr(args, "prompt", None), "steps": args.steps,
                "width": args.width, "height": args.height, "seed": getattr(args, "seed", None),
                "n_batches": getattr(args, "batches", None)}
    data.update({k: v for k, v in explicit.items() if v is not None})
    if "n_batches" not in data:
        data["n_batches"] = 1  # DD's default of 50 images is a notebook habit, not a CLI one
    spec = RenderSpec.from_dict(data)
    return spec, report + list(spec.notes)


def _read_settings_file(path: Path) -> tuple[dict, list[str]]:
    from .ddsettings import import_dd_settings
    from .errors import SpecError

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SpecError(f"--settings: cannot read {path} as JSON ({exc}); give a file written by "
                        "disco or a DD *_settings.txt") from None
    if not isinstance(data, dict):
        raise SpecError(f"--settings: {path} does not hold a JSON object")
    if _looks_like_dd(data):
        spec, report = import_dd_settings(data)
        imported = spec.to_dict()
        if "n_batches" not in data:  # DD files carry no image count; don't turn it into DD's 50
            imported.pop("n_batches")
        return imported, [f"{path.name}: {line}" for line in report]
    return data, []


def _looks_like_dd(data: dict) -> bool:
    return "width_height" in data or "set_seed" in data or isinstance(data.get("text_prompts"), dict)


def resolve_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError(f"--device {name}: no CUDA device is available here; use --device cpu")
    return device


def cmd_render(args: argparse.Namespace) -> int:
    try:
        spec, report = build_spec(args)
        for line in report:
            print(f"note: {line}", file=sys.stderr)
        from .models import ModelPool
        from .pipeline import DiscoPipeline
        from .progress import TqdmProgress

        pool = ModelPool(args.models, resolve_device(args.device), allow_download=args.allow_download,
                         precision=args.precision)
        if pool.produces_noise:
            print(NOISE_WARNING.format(name=args.models), file=sys.stderr)
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


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench
    from .bench_animation import run_animation_bench

    try:
        report = run_animation_bench(args) if args.animation else run_bench(args)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0
