"""A still's result files: the images, fitted to the upload limit, with a labelled grid of them.

With several images (`n_batches` > 1) the result message shows the grid first (each image
numbered as its row of buttons in bot/views.py), then every image at full size, a JPEG when the
PNG is over the server's upload limit (bot/filefit.py), each image's evolution video, and the
settings JSON. The poster sends them (≤ 10 files a message); "show here" (bot/history.py) reposts
them. Torch-free: the grid is `engine.media.grid`.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import discord
from PIL import Image

from bot.filefit import fit_image
from bot.jobtext import prompt_text
from engine.media.grid import compose_grid, fit_grid
from engine.spec.study import Axis
from storage import Job

GRID_COLUMNS = 4      # a still's images side by side, 4 to a row
GRID_MAX_SIDE = 2048  # the grid is an overview; each image is attached at full size


def result_files(job: Job, limit: int) -> tuple[list[discord.File], list[str]]:
    """A still's result files and notes: with several images a labelled grid of them first, then
    every image (a JPEG when the PNG is over `limit`), evolution videos, the settings JSON."""
    files, notes, images = [], [], []
    for path in map(Path, job.artifacts):
        try:
            if path.suffix == ".mp4":  # an image's evolution (intermediate_saves), as it is
                if path.stat().st_size > limit - len(job.spec_json) - 4096:
                    notes.append(f"{path.name} is over this server's upload limit; it stays "
                                 f"on the server")
                    continue
                files.append(discord.File(io.BytesIO(path.read_bytes()), path.name))
                continue
            raw = path.read_bytes()
            data, name, note = fit_image(raw, path.name, limit)
        except OSError as exc:
            notes.append(f"{path.name} could not be read ({exc.strerror})")
            continue
        except ValueError as exc:  # a limit no real server has: say so rather than fail
            notes.append(f"{exc}: not attached")
            continue
        if note:
            notes.append(note)
        if path.suffix == ".png":
            images.append(raw)
        files.append(discord.File(io.BytesIO(data), name))
    if len(images) > 1:
        grid = image_grid(job, images, limit)
        if grid is not None:
            files.insert(0, grid)
    settings = json.dumps(json.loads(job.spec_json), indent=2, sort_keys=True).encode()
    files.append(discord.File(io.BytesIO(settings), f"{job.id}_settings.json"))
    return files, notes


def image_grid(job: Job, images: list[bytes], limit: int) -> discord.File | None:
    """The images numbered as their buttons are (1, 2, …), GRID_COLUMNS to a row; None when the
    images cannot be read back (each is still attached on its own)."""
    try:
        cells = [Image.open(io.BytesIO(data)) for data in images]
    except OSError:
        return None
    columns = min(GRID_COLUMNS, len(cells))
    rows = -(-len(cells) // columns)
    x = Axis("image", tuple(range(columns)), tuple(str(c + 1) for c in range(columns)))
    y = None
    if rows > 1:  # row r holds images r·columns+1 …: the column label counts within the row
        x = Axis("image in the row", x.values, x.labels)
        y = Axis("images", tuple(range(rows)),
                 tuple(f"{r * columns + 1}–{min(len(cells), (r + 1) * columns)}" for r in range(rows)))
    header = [f"job {job.id} · seed {job.seed}", prompt_text(job)]
    grid = compose_grid(cells + [None] * (columns * rows - len(cells)), x, y, header_lines=header,
                        max_side=GRID_MAX_SIDE)
    data, kind = fit_grid(grid, limit)
    # The message menus pass over a grid by this name (commands.message_image.RESULT_GRID).
    return discord.File(io.BytesIO(data), f"{job.id}_grid.{'png' if kind == 'png' else 'jpg'}")
