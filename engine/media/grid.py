"""The labelled grid of a parameter study, composed with PIL (torch-free).

Layout, top to bottom: a header (prompt, seed, fixed settings; word-wrapped), the x axis title,
one value label above each column, then the cells. Left of the cells: the y axis title (turned
90°) and one value label beside each row. Cells are separated by `GAP` pixels; a cell not yet
rendered is a grey placeholder box, so the same function draws the partial-grid preview.

`grid_layout` computes every offset before anything is drawn: the tests check the composed
pixels against it, and the bot can map a click on a cell back to its index.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

FONT_SIZE = 14
LINE = 18          # line height for FONT_SIZE
PAD = 8            # outer margin and space between blocks
GAP = 4            # between cells
MAX_LABEL_WIDTH = 220
MAX_HEADER_LINES = 8
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
PLACEHOLDER = (205, 205, 205)
PLACEHOLDER_EDGE = (150, 150, 150)


@lru_cache(maxsize=1)
def font() -> ImageFont.ImageFont:
    """Pillow's bundled DejaVu-derived font at FONT_SIZE: offline, no system fonts needed."""
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


@lru_cache(maxsize=4096)
def text_width(text: str) -> int:
    """Pixels `text` takes in the grid's font. Remembered: a study redraws the same header and
    labels after every cell (its partial grid), so its text is measured once per study."""
    return int(round(font().getlength(text)))


def fit_text(text: str, width: int) -> str:
    """`text`, cut with '…' so it is at most `width` pixels wide: the longest prefix that fits,
    found by bisection (a longer prefix is never narrower), so a 1,000-character label costs
    about 10 measurements rather than one per character removed."""
    if text_width(text) <= width:
        return text
    fits, too_wide = 0, len(text)  # text[:fits] + "…" fits (or fits == 0); text[:too_wide] + "…" does not
    while too_wide - fits > 1:
        middle = (fits + too_wide) // 2
        if text_width(text[:middle] + "…") <= width:
            fits = middle
        else:
            too_wide = middle
    return text[:fits] + "…" if fits else ""


@dataclass(frozen=True)
class GridLayout:
    columns: int
    rows: int
    cell_width: int
    cell_height: int
    left: int        # x of the first column (after the y title and row labels)
    top: int         # y of the first row (after the header, x title and column labels)
    header_height: int
    width: int
    height: int

    def cell_origin(self, column: int, row: int) -> tuple[int, int]:
        return (self.left + column * (self.cell_width + GAP),
                self.top + row * (self.cell_height + GAP))


def grid_layout(columns: int, rows: int, cell_size: tuple[int, int], header_count: int,
                row_labels: tuple[str, ...] | None) -> GridLayout:
    """Sizes: header + x title + column labels + rows of cells; y title + row labels + columns."""
    cell_w, cell_h = cell_size
    header_h = PAD + header_count * LINE if header_count else 0
    top = header_h + PAD + LINE + LINE  # x title, then the column labels
    if row_labels:
        label_w = min(MAX_LABEL_WIDTH, max(text_width(label) for label in row_labels))
        left = PAD + LINE + PAD + label_w + PAD  # y title (turned), row labels
    else:
        left = PAD
    width = left + columns * cell_w + (columns - 1) * GAP + PAD
    height = top + rows * cell_h + (rows - 1) * GAP + PAD
    return GridLayout(columns, rows, cell_w, cell_h, left, top, header_h, width, height)


def wrap(text: str, width: int, max_lines: int | None = None) -> list[str]:
    """Word-wrap to `width` pixels; a word wider than a line is cut. With `max_lines`, stops
    once it has one line more than that (enough to show that the text goes on)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if max_lines is not None and len(lines) > max_lines:
            break
        candidate = f"{current} {word}" if current else word
        if not current or text_width(candidate) <= width:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current and (max_lines is None or len(lines) <= max_lines):
        lines.append(current)
    return [fit_text(line, width) for line in lines]


def _header(lines: list[str], width: int) -> list[str]:
    wrapped: list[str] = []
    for line in lines:  # lines past MAX_HEADER_LINES are never shown, so never wrapped
        wrapped += wrap(line, width, MAX_HEADER_LINES - len(wrapped)) or [""]
        if len(wrapped) > MAX_HEADER_LINES:
            break
    if len(wrapped) > MAX_HEADER_LINES:
        wrapped = wrapped[: MAX_HEADER_LINES - 1] + [fit_text(wrapped[MAX_HEADER_LINES - 1] + " …",
                                                              width)]
    return wrapped


def compose_grid(cells: list[Image.Image | None], x, y=None, *, header_lines: list[str] = (),
                 cell_size: tuple[int, int] | None = None, max_side: int | None = None,
                 max_bytes: int | None = None) -> Image.Image:
    """The labelled grid of `cells` (row by row; None = not rendered yet).

    `x`/`y` are `engine.spec.study.Axis` values (param, values, labels). `cell_size` defaults to the
    first rendered cell's size. `max_side` shrinks the cells (not the text) so the grid's
    longer side fits; `max_bytes` keeps shrinking the cells until the PNG fits.
    """
    columns, rows = len(x.labels), len(y.labels) if y is not None else 1
    if len(cells) != columns * rows:
        raise ValueError(f"{len(cells)} cells for a {columns}×{rows} grid")
    if cell_size is None:
        first = next((cell for cell in cells if cell is not None), None)
        cell_size = first.size if first is not None else (256, 256)
    scale = 1.0
    while True:
        size = (max(16, int(cell_size[0] * scale)), max(16, int(cell_size[1] * scale)))
        image = _compose(cells, x, y, header_lines, size)
        if max_side and max(image.size) > max_side and min(size) > 16:
            scale *= max(0.5, min(0.95, max_side / max(image.size)))
            continue
        if max_bytes and min(size) > 16 and len(png_bytes(image)) > max_bytes:
            scale *= 0.8
            continue
        return image


def _compose(cells, x, y, header_lines, cell_size) -> Image.Image:
    columns, rows = len(x.labels), len(y.labels) if y is not None else 1
    # The header wraps to the grid's width, which the header's own height does not change.
    probe = grid_layout(columns, rows, cell_size, 0, y.labels if y is not None else None)
    header_width = probe.width - 2 * PAD
    header = _header(list(header_lines), header_width)
    layout = grid_layout(columns, rows, cell_size, len(header), y.labels if y is not None else None)
    image = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(header):
        draw.text((PAD, PAD + n * LINE), line, fill=TEXT, font=font())

    # The x axis: its title centred over the cells, each value centred over its column.
    cells_width = columns * cell_size[0] + (columns - 1) * GAP
    title_y = layout.header_height + PAD
    _centred(draw, fit_text(x.param, layout.width - layout.left - PAD), layout.left,
             cells_width, title_y)
    for column, label in enumerate(x.labels):
        left, _ = layout.cell_origin(column, 0)
        _centred(draw, fit_text(label, cell_size[0]), left, cell_size[0], title_y + LINE)

    # The y axis: its title turned 90° left of the row labels, each value beside its row.
    if y is not None:
        cells_height = rows * cell_size[1] + (rows - 1) * GAP
        title = fit_text(y.param, cells_height)
        strip = Image.new("RGB", (max(1, text_width(title)), LINE), BACKGROUND)
        ImageDraw.Draw(strip).text((0, 0), title, fill=TEXT, font=font())
        turned = strip.rotate(90, expand=True)
        image.paste(turned, (PAD, layout.top + max(0, (cells_height - turned.height) // 2)))
        label_right = layout.left - PAD
        for row, label in enumerate(y.labels):
            _, top = layout.cell_origin(0, row)
            text = fit_text(label, MAX_LABEL_WIDTH)
            draw.text((label_right - text_width(text), top + (cell_size[1] - LINE) // 2), text,
                      fill=TEXT, font=font())

    for index, cell in enumerate(cells):
        origin = layout.cell_origin(index % columns, index // columns)
        if cell is None:
            box = [origin[0], origin[1], origin[0] + cell_size[0] - 1, origin[1] + cell_size[1] - 1]
            draw.rectangle(box, fill=PLACEHOLDER, outline=PLACEHOLDER_EDGE)
            continue
        cell = cell.convert("RGB")
        if cell.size != cell_size:
            cell = cell.resize(cell_size, Image.LANCZOS)
        image.paste(cell, origin)
    return image


def _centred(draw: ImageDraw.ImageDraw, text: str, left: int, width: int, top: int) -> None:
    draw.text((left + max(0, (width - text_width(text)) // 2), top), text, fill=TEXT, font=font())


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def fit_grid(image: Image.Image, max_bytes: int) -> tuple[bytes, str]:
    """The grid as ("png" bytes) when it fits `max_bytes`, else as a JPEG that fits: lower
    quality first, then a smaller image. Returns (data, "png" | "jpeg")."""
    data = png_bytes(image)
    if len(data) <= max_bytes:
        return data, "png"
    current = image.convert("RGB")
    while True:
        for quality in (92, 85, 75, 65):
            buffer = io.BytesIO()
            current.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= max_bytes:
                return buffer.getvalue(), "jpeg"
        if min(current.size) <= 32:
            raise ValueError(f"the grid cannot be made smaller than {max_bytes} bytes")
        current = current.resize((max(1, int(current.width * 0.8)),
                                  max(1, int(current.height * 0.8))), Image.LANCZOS)
