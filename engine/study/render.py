"""Render a `StudySpec` cell by cell, resumably, into one folder:

    out_dir/study.json        the study (canonical JSON); a rerun must name the same study
    out_dir/cells/01.png ...  one PNG per finished cell (1-based, row by row), written atomically
    out_dir/partial_grid.png  the grid so far, rewritten after every cell (the progress preview)
    out_dir/grid.png          the final labelled grid, with the study JSON in a text chunk

A cell is the unit of work: a cell already on disk is never rendered again, so a crash or a
cancel loses at most the cell in progress. Each cell is a deterministic render of its own spec
(same seed for every cell), so a resumed study's grid is byte-identical to an uninterrupted one.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PIL import Image

from engine.diffusion.pipeline import DiscoPipeline, read_input_images
from engine.diffusion.sampling import StepInfo
from engine.errors import Cancelled, SpecError
from engine.media.files import atomic_write_bytes, save_png
from engine.media.grid import compose_grid, png_bytes
from engine.models.pool import ModelPool
from engine.spec.study import STUDY_FILE, StudySpec

# callback(k, n, info): cell k (1-based) of n; info is the StepInfo of each step, and None
# once the cell is saved (partial_grid.png has just been rewritten).
StudyCallback = Callable[[int, int, "StepInfo | None"], None]


@dataclass
class StudyResult:
    cells: list[Path]
    grid: Path
    rendered: list[int] = field(default_factory=list)  # 1-based cells rendered by this call
    seconds: dict[int, float] = field(default_factory=dict)  # per rendered cell


def cell_path(out_dir: Path, k: int) -> Path:
    """The PNG of cell k (1-based, row by row)."""
    return out_dir / "cells" / f"{k:02}.png"


def render_study(pool: ModelPool, study: StudySpec, out_dir: Path, *,
                 callback: StudyCallback | None = None,
                 should_cancel: Callable[[], bool] | None = None,
                 pipeline: DiscoPipeline | None = None) -> StudyResult:
    out_dir = Path(out_dir)
    cells = study.cells()
    for cell in cells:  # an axis of image files: a bad one fails before the first cell renders
        read_input_images(cell.spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    _claim_folder(out_dir, study)
    pipeline = pipeline or DiscoPipeline(pool)
    n = len(cells)
    header = study.header_lines()
    size = (study.base.width, study.base.height)
    result = StudyResult([cell_path(out_dir, c.index + 1) for c in cells], out_dir / "grid.png")
    if callback is not None and not all(p.exists() for p in result.cells):
        _write_grid(out_dir / "partial_grid.png", result.cells, study, header, size)

    for cell in cells:
        k = cell.index + 1
        target = result.cells[cell.index]
        if target.exists():  # written atomically, so an existing file is a whole cell
            continue
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"the study was cancelled before cell {k} of {n}")
        # Each cell renders in its own scratch folder (the pipeline writes a settings file and
        # numbers its runs there); only the finished PNG is moved into cells/.
        work = out_dir / "work" / f"{k:02}"
        shutil.rmtree(work, ignore_errors=True)
        step_cb = None
        if callback is not None:
            step_cb = lambda context, info, k=k: callback(k, n, info)
        rendered = pipeline(cell.spec, out_dir=work, callback=step_cb,
                            should_cancel=should_cancel, run=0)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(rendered[0].path, target)  # same filesystem: atomic
        shutil.rmtree(work, ignore_errors=True)
        result.rendered.append(k)
        result.seconds[k] = rendered[0].seconds
        _write_grid(out_dir / "partial_grid.png", result.cells, study, header, size)
        if callback is not None:
            callback(k, n, None)

    _write_grid(result.grid, result.cells, study, header, size,
                text={"disco_study": study.to_json()})
    shutil.rmtree(out_dir / "work", ignore_errors=True)
    return result


def _claim_folder(out_dir: Path, study: StudySpec) -> None:
    """Record the study, or check that the folder holds this very study (resume)."""
    path = out_dir / STUDY_FILE
    text = study.to_json()
    if path.exists():
        found = path.read_text(encoding="utf-8")
        if found != text:
            raise SpecError(f"{out_dir} holds a different study ({STUDY_FILE} differs); choose "
                            f"another output folder to start a new one")
        return
    atomic_write_bytes(path, text.encode("utf-8"))


def _write_grid(path: Path, cell_paths: list[Path], study: StudySpec, header: list[str],
                size: tuple[int, int], text: dict[str, str] | None = None) -> None:
    images = []
    for p in cell_paths:
        if p.exists():
            with Image.open(p) as image:
                images.append(image.convert("RGB"))
        else:
            images.append(None)
    grid = compose_grid(images, study.x, study.y, header_lines=header, cell_size=size)
    if text:
        save_png(grid, path, text)
    else:
        atomic_write_bytes(path, png_bytes(grid))
