"""Parameter studies ("EZ Charts"): one or two axes of values over a shared base `RenderSpec`.

An axis is written ``param=value,value,...``::

    clip_guidance_scale=1500,5000,15000      numbers (checked against the setting's bounds)
    skip_augs=true,false                     booleans
    sampling_mode=ddim,plms                  choices (diffusion_model, perlin_mode too)
    cut_ic_pow=[1]*1000,[4]*400+[1]*600      schedules
    clip_models=ViT-B-32::openai,ViT-B-32::openai+RN50::openai   lists
    text_prompts="a cat, red","a dog"        text with commas: double-quote the value

Values are separated by commas outside brackets and double quotes, so schedules and
``[0.1, 0.5]`` lists stay whole. A CLIP model list joins its names with ``+`` (``,`` already
separates values). Each value is read like ``--set param=value`` and validated by building the
cell's spec, so an axis accepts exactly what a render accepts; a bad value is a `SpecError`
naming the axis, the value and what the setting allows.

`seed`, `n_batches`, `batch_name`, `display_rate`, `intermediate_saves` and the GoBig settings
cannot be axes: the seed is what every cell shares (it is what makes the cells comparable), each
cell is exactly one image, and the others only name files, draw previews, keep in-between images
or enlarge finished stills (a study's cells are never enlarged, so `gobig` is refused in the base
too), so they would draw identical cells.

Torch-free: the bot validates studies without loading the engine.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from engine.errors import SpecError
from engine.spec.fields import SPEC_ALLOWED
from engine.spec.jsontext import read_json
from engine.spec.overrides import parse_set_options
from engine.spec.render import RenderSpec
from engine.spec.schedules import format_number

STUDY_VERSION = 1
STUDY_FILE = "study.json"  # the study, recorded in its output folder (engine/study/render.py)
MAX_VALUES = 8
MAX_CELLS = 36
MAX_AXIS_TEXT = 20_000
MAX_LABEL = 60

NOT_AXES: dict[str, str] = {
    "seed": "every cell shares the study's seed, which is what makes the cells comparable; "
            "set it with seed=",
    "n_batches": "each cell is exactly one image",
    "batch_name": "it only names the output files, so every cell would look the same",
    "display_rate": "it only sets how often the progress preview is drawn, so every cell would look the same",
    "intermediate_saves": "it only keeps in-between images, which a study does not show, so every cell "
                          "would look the same",
    **{name: "a study's cells are rendered, never enlarged; ⬆ GoBig under a finished image enlarges it"
       for name in ("gobig", "gobig_scale", "gobig_overlap", "gobig_skip_ratio")},
}
# Settings that are free text or lists: their values are never split on '+'.
_LIST_AXES = {"clip_models"}


class Axis(NamedTuple):
    """One varied setting: canonical values (JSON-ready, as `RenderSpec.to_dict` writes them)
    and the labels drawn on the grid (the values as the user typed them)."""

    param: str
    values: tuple
    labels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"param": self.param, "values": list(self.values), "labels": list(self.labels)}


class Cell(NamedTuple):
    """One image of the study: `index` runs row by row (y), then column by column (x)."""

    index: int
    x_index: int
    y_index: int
    spec: RenderSpec


def split_values(text: str) -> list[str]:
    """Split on commas outside brackets and double quotes ('[1]*500,[4]*500' is two values)."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "[({":
            depth += 1
        elif not quoted and char in "])}":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and char == ",":
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _axis_name(name: str) -> str:
    return f"{name} axis" if name in ("x", "y") else name


def parse_axis(text: str, base: RenderSpec | None = None, *, name: str = "x") -> Axis:
    """Parse ``param=v1,v2,...`` and validate every value against `base` (DD's defaults if None)."""
    where = _axis_name(name)
    if not isinstance(text, str) or len(text) > MAX_AXIS_TEXT:
        raise SpecError(f"{where}: give the axis as text param=value,value of at most "
                        f"{MAX_AXIS_TEXT} characters")
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"{where}: expected param=value,value,..., found {text.strip()[:60]!r} — "
                        f"e.g. clip_guidance_scale=1500,5000,15000")
    base = base if base is not None else RenderSpec()
    # parse_set_options resolves DD's aliases (set_seed, diffusion_sampling_mode) and names the
    # closest setting for a typo; the value here is a placeholder, only the key matters.
    if key.strip().lower().replace("-", "_") == "width_height":
        raise SpecError(f"{where}: vary width and height as two axes (x: width=..., "
                        f"y: height=...)", "width_height")
    try:
        keys = list(parse_set_options([f"{key}=0"]))
    except SpecError as err:
        raise SpecError(f"{where}: {err}", err.param) from None
    param = keys[0]
    if param in NOT_AXES:
        raise SpecError(f"{where}: {param} cannot be varied: {NOT_AXES[param]}", param)
    raws = split_values(raw)
    if any(not value for value in raws):
        raise SpecError(f"{where}: {param} has an empty value in {raw.strip()[:80]!r}; separate "
                        f"values with single commas", param)
    if len(raws) > MAX_VALUES:
        raise SpecError(f"{where}: {param} has {len(raws)} values; at most {MAX_VALUES}", param)
    values, labels = [], []
    for position, value_text in enumerate(raws, 1):
        value = _read_value(param, value_text, where, position, len(raws))
        canonical = _validated(base, param, value, value_text, where)
        if canonical in values:
            first = labels[values.index(canonical)]
            raise SpecError(f"{where}: {param} value {value_text!r} is the same setting as "
                            f"{first!r}; give each value once", param)
        values.append(canonical)
        labels.append(_label(value_text))
    return Axis(param, tuple(values), tuple(labels))


def _read_value(param: str, text: str, where: str, position: int, count: int) -> Any:
    """The raw text as `--set` reads it; '+' joins the names of a CLIP model list."""
    if param in _LIST_AXES and "+" in text and not text.startswith(("[", '"')):
        return [part.strip() for part in text.split("+") if part.strip()]
    try:
        return parse_set_options([f"{param}={text}"])[param]
    except SpecError as err:
        raise SpecError(f"{where}: {param} value {position} of {count} ({text[:60]!r}): {err}",
                        param) from None


def _validated(base: RenderSpec, param: str, value: Any, text: str, where: str) -> Any:
    """The value as the spec stores it (rounded, canonical), or a SpecError saying why not."""
    try:
        spec = base.replace(**{param: value})
    except SpecError as err:
        allowed = SPEC_ALLOWED.get(param, "")
        reason = str(err)
        hint = f"; allowed: {allowed}" if allowed and "allowed:" not in reason else ""
        raise SpecError(f"{where}: {param} value {text[:60]!r} is not allowed — {reason}{hint}",
                        param) from None
    return spec.to_dict()[param]


def _label(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


@dataclass(frozen=True)
class StudySpec:
    """A validated study: the base settings, the x axis and an optional y axis."""

    base: RenderSpec
    x: Axis
    y: Axis | None = None
    max_cells: int = MAX_CELLS

    def __post_init__(self):
        if self.base.seed is None:
            raise SpecError("a study needs a fixed seed shared by every cell; use "
                            "build_study, which picks one, or set seed=", "seed")
        if self.base.gobig:
            raise SpecError("gobig: a study's cells are rendered, never enlarged; leave gobig out "
                            "(enlarge a finished image with disco gobig or ⬆ GoBig)", "gobig")
        if self.y is not None and self.y.param == self.x.param:
            raise SpecError(f"the x and y axes both vary {self.x.param}; vary two different "
                            f"settings, or put every value on one axis", self.x.param)
        if self.n_cells > self.max_cells:
            raise SpecError(f"{len(self.x.values)} × {len(self.y.values if self.y else (0,))} = "
                            f"{self.n_cells} cells; at most {self.max_cells} — give fewer values")
        self.cells()  # every combination must be a valid render (e.g. skip_steps < steps)

    @property
    def shape(self) -> tuple[int, int]:
        """(columns, rows)."""
        return len(self.x.values), len(self.y.values) if self.y else 1

    @property
    def n_cells(self) -> int:
        columns, rows = self.shape
        return columns * rows

    def cells(self) -> list[Cell]:
        """Every cell's spec: the base with the axis values, the study's seed, one image."""
        columns, rows = self.shape
        result = []
        for row in range(rows):
            for column in range(columns):
                changes = {self.x.param: self.x.values[column], "n_batches": 1}
                label = f"{self.x.param}={self.x.labels[column]}"
                if self.y is not None:
                    changes[self.y.param] = self.y.values[row]
                    label += f", {self.y.param}={self.y.labels[row]}"
                try:
                    spec = self.base.replace(**changes)
                except SpecError as err:
                    raise SpecError(f"the cell {label} is not a valid render: {err}",
                                    err.param) from None
                result.append(Cell(row * columns + column, column, row, spec))
        return result

    def header_lines(self) -> list[str]:
        """The grid's header: the prompt, the seed, and the fixed settings DD would not use."""
        varied = {self.x.param, self.y.param if self.y else None}
        defaults = RenderSpec().to_dict()
        ours = self.base.to_dict()
        skip = varied | {"text_prompts", "seed", "n_batches", "batch_name", "display_rate",
                         "schema_version"}
        fixed = [f"{name}={_text(ours[name])}" for name in ours
                 if name not in skip and ours[name] != defaults.get(name)]
        lines = [self.base.prompt_summary(), f"seed {self.base.seed}"]
        if fixed:
            lines.append("fixed: " + ", ".join(fixed))
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"study_version": STUDY_VERSION, "base": self.base.to_dict(),
                "x": self.x.to_dict(), "y": self.y.to_dict() if self.y else None,
                "max_cells": self.max_cells}

    def to_json(self) -> str:
        """Canonical JSON: equal studies give equal bytes (the resume check compares them)."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, allow_nan=False,
                          separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> StudySpec:
        """Read and validate a study again: the engine trusts nothing it did not check."""
        data = read_json(text, "the study")
        if not isinstance(data, dict) or data.get("study_version") != STUDY_VERSION:
            raise SpecError(f"expected a study_version {STUDY_VERSION} study object")
        base = RenderSpec.from_dict(data.get("base"))
        max_cells = data.get("max_cells", MAX_CELLS)
        if not isinstance(max_cells, int) or isinstance(max_cells, bool) or max_cells < 1:
            raise SpecError("max_cells must be a whole number of at least 1")
        x = _axis_from_dict(data.get("x"), base, "x")
        y = _axis_from_dict(data["y"], base, "y") if data.get("y") is not None else None
        return cls(base, x, y, max_cells)


def _axis_from_dict(data: object, base: RenderSpec, name: str) -> Axis:
    if not isinstance(data, dict) or not isinstance(data.get("param"), str):
        raise SpecError(f"{name} axis: expected an object with param, values and labels")
    param, values, labels = data["param"], data.get("values"), data.get("labels")
    if param in NOT_AXES or param not in RenderSpec.model_fields:
        raise SpecError(f"{name} axis: {param!r} cannot be varied", param)
    if (not isinstance(values, list) or not isinstance(labels, list)
            or not 1 <= len(values) <= MAX_VALUES or len(labels) != len(values)
            or not all(isinstance(label, str) for label in labels)):
        raise SpecError(f"{name} axis: expected 1..{MAX_VALUES} values, each with a text label")
    canonical = tuple(_validated(base, param, v, str(l), _axis_name(name))
                      for v, l in zip(values, labels))
    return Axis(param, canonical, tuple(_label(l) for l in labels))


def build_study(base: RenderSpec, x: str, y: str | None = None, *,
                max_cells: int = MAX_CELLS) -> StudySpec:
    """A study from axis text: a base without a seed gets one, which every cell then shares."""
    if base.seed is None:
        base = base.replace(seed=secrets.randbelow(2**32))
    base = base.replace(n_batches=1)
    x_axis = parse_axis(x, base, name="x")
    y_axis = parse_axis(y, base, name="y") if y and y.strip() else None
    return StudySpec(base, x_axis, y_axis, max_cells)


def recorded_seed(out_dir: Path) -> int | None:
    """The seed of the study recorded in `out_dir`; None when there is none or it is unreadable.
    A study run again without a seed takes it, so it resumes there instead of starting afresh
    with a new seed (which that folder would refuse as a different study)."""
    try:
        return StudySpec.from_json((Path(out_dir) / STUDY_FILE).read_bytes()).base.seed
    except (OSError, SpecError):
        return None


def _text(value: Any) -> str:
    """A setting's value for the header, short and readable."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, list):
        return "+".join(_text(item) if not isinstance(item, dict) else str(item.get("text"))
                        for item in value)
    text = str(value)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"
