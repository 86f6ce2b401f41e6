"""A RenderSpec from what the command line gives: a settings file (our JSON or a DD
*_settings.txt), `--set key=value` options and the explicit flags, layered in that order.
`disco render`, `disco study` and `disco jobs submit` share these options. Torch-free."""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.errors import SpecError
from engine.media.files import read_user_file
from engine.spec.ddsettings import import_dd_settings
from engine.spec.jsontext import read_json
from engine.spec.render import RenderSpec, parse_set_options


def add_spec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="settings file: our JSON or a DD *_settings.txt")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any setting, e.g. --set clip_guidance_scale=8000 (repeatable)")
    p.add_argument("--steps", type=bounded_int(1, 10_000))
    p.add_argument("--width", type=bounded_int(1, 100_000))
    p.add_argument("--height", type=bounded_int(1, 100_000))
    p.add_argument("--seed", type=bounded_int(0, 2**32 - 1))
    p.add_argument("--models", default="dd-default", help="model set: dd-default, random-full, test-tiny")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto = DD's choice: fp16 on CUDA, fp32 on CPU; bf16 is faster on CPUs with AMX")
    p.add_argument("--allow-download", action="store_true",
                   help="download missing model files (otherwise a missing file is an error)")


def build_spec(args: argparse.Namespace):
    """The RenderSpec the command line describes, plus lines to show the user."""
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
    raw = read_user_file(path, what="--settings")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"--settings: cannot read {path} as JSON ({exc}); give a file written by "
                        "disco or a DD *_settings.txt") from None
    data = read_json(text, f"--settings: {path}")
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


def bounded_int(low: int, high: int):
    """An argparse type: an integer from `low` to `high`, else argparse's one-line usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 20 else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"give a whole number from {low} to {high}, not {text[:40]!r}")
        return value
    return parse
