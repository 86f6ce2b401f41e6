"""A RenderSpec from what the command line gives: a settings file (our JSON or a DD
*_settings.txt), `--set key=value` options and the explicit flags, layered in that order.
`disco render`, `disco study` and `disco jobs submit` share these options (declared in
engine/spec/options.py). Torch-free."""
from __future__ import annotations

import argparse
from pathlib import Path

from engine.errors import SpecError
from engine.media.files import PNG_SIGNATURE, png_settings, read_user_file
from engine.spec.ddfile import read_settings
from engine.spec.ddsettings import import_dd_settings
from engine.spec.overrides import parse_set_options
from engine.spec.render import RenderSpec, follow_steps
from engine.spec.schedules import short_repr


# Where each explicit flag's value goes, and how a note names the flag.
FLAGS = {"text_prompts": ("prompt", "the prompt"), "steps": ("steps", "--steps"),
         "width": ("width", "--width"), "height": ("height", "--height"),
         "seed": ("seed", "--seed"), "n_batches": ("batches", "--batches")}


def build_spec(args: argparse.Namespace, base: dict | None = None):
    """The RenderSpec the command line describes, plus lines to show the user; `base`: settings
    under all of it (e.g. those a PNG of ours carries). A later source that changes a value an
    earlier one gave says so (as the bot's echo does): a flag silently beating the file's
    prompt would look like the file was not read."""
    report: list[str] = []
    layers: list[tuple[str, dict]] = []
    if getattr(args, "settings", None):
        from_file, report = load_settings_file(args.settings)
        layers.append((f"--settings {Path(args.settings).name}", from_file))
    layers.append(("--set", parse_set_options(args.set)))
    flags = {key: value for key, (attr, _) in FLAGS.items()
             if (value := getattr(args, attr, None)) is not None}
    layers.append(("", flags))
    data: dict = dict(base or {})
    origin: dict[str, str] = {}
    for label, values in layers:
        for key, value in values.items():
            name = label or FLAGS[key][1]
            if key in origin and key in data and data[key] != value:
                report.append(f"{key}: {short_repr(value)} from {name} replaces "
                              f"{short_repr(data[key])} from {origin[key]}")
            origin[key] = name
        data = follow_steps(data, values)
    if "n_batches" not in data:
        data["n_batches"] = 1  # DD's default of 50 images is a notebook habit, not a CLI one
    spec = RenderSpec.from_dict(data)
    return spec, report + list(spec.notes)


def read_settings_path(path: Path) -> dict:
    """The file --settings names, as a dict (JSON, JSON5 or YAML, or the settings a PNG of ours
    carries); SpecError when unreadable."""
    carried = png_settings(path) if str(path) != "-" else None
    if carried is not None:
        return read_settings(carried, f"the settings in {path.name}")
    data = read_user_file(path, what="--settings")
    if data.startswith(PNG_SIGNATURE):
        raise SpecError(f"--settings {path.name} is a PNG that carries no settings (only the "
                        f"images this engine renders do); give a settings file, e.g. the "
                        f"*_settings.txt written beside an image")
    return read_settings(data, f"--settings {path.name}")


def load_settings_file(path: Path) -> tuple[dict, list[str]]:
    """The settings a --settings file holds, as RenderSpec names, and the importer's report lines
    (a DD or discoart file goes through the DD importer; our own JSON is taken as it is)."""
    data = read_settings_path(path)
    if is_dd_file(data):
        spec, report = import_dd_settings(data)
        imported = spec.to_dict()
        if "n_batches" not in data:  # DD files carry no image count; don't turn it into DD's 50
            imported.pop("n_batches")
        return imported, [f"{path.name}: {line}" for line in report]
    return data, []


def is_dd_file(data: dict) -> bool:
    """Our own settings JSON holds only RenderSpec names with prompts as a list; anything else
    (DD's files, partial DD files, discoart configs, our DD-format exports) goes through the
    DD importer, which reports the keys it does not use instead of refusing them."""
    ours = set(RenderSpec.model_fields) | {"schema_version"}
    return any(key not in ours for key in data) or isinstance(data.get("text_prompts"), dict)
