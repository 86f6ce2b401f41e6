"""The study grid, checked by pixels: its size is the header, the labels and the cells; each
cell sits at its offset; label areas hold dark text; missing cells are grey placeholders;
fit_grid keeps within a byte limit."""
from __future__ import annotations

import io

from PIL import Image

from engine.media import grid
from engine.spec.study import Axis

X = Axis("clip_guidance_scale", (1500.0, 5000.0, 15000.0), ("1500", "5000", "15000"))
Y = Axis("steps", (50, 100), ("50", "100"))
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]
HEADER = ["a lighthouse", "seed 7", "fixed: tv_scale=100"]


def solid(colour, size=(64, 48)):
    return Image.new("RGB", size, colour)


def dark_pixels(image, box) -> int:
    region = image.crop(box).convert("L")
    return sum(region.histogram()[:100])


def test_size_and_cell_offsets():
    image = grid.compose_grid([solid(c) for c in COLOURS], X, Y, header_lines=HEADER)
    layout = grid.grid_layout(3, 2, (64, 48), 3, Y.labels)
    # The size is exactly header + x title + column labels + cells (and the left labels).
    assert layout.header_height == grid.PAD + 3 * grid.LINE
    assert layout.top == layout.header_height + grid.PAD + 2 * grid.LINE
    assert image.size == (layout.left + 3 * 64 + 2 * grid.GAP + grid.PAD,
                          layout.top + 2 * 48 + grid.GAP + grid.PAD)
    for index, colour in enumerate(COLOURS):
        column, row = index % 3, index // 3
        left, top = layout.cell_origin(column, row)
        assert (left, top) == (layout.left + column * (64 + grid.GAP),
                               layout.top + row * (48 + grid.GAP))
        for dx, dy in ((0, 0), (63, 47), (32, 24)):  # corners and centre of the cell
            assert image.getpixel((left + dx, top + dy)) == colour
        # The gap after a cell is background.
        if column < 2:
            assert image.getpixel((left + 64, top + 10)) == grid.BACKGROUND


def test_labels_are_drawn():
    image = grid.compose_grid([solid(c) for c in COLOURS], X, Y, header_lines=HEADER)
    layout = grid.grid_layout(3, 2, (64, 48), 3, Y.labels)
    assert dark_pixels(image, (0, 0, image.width, layout.header_height)) > 50  # header
    title_top = layout.header_height + grid.PAD
    assert dark_pixels(image, (layout.left, title_top, image.width, title_top + grid.LINE)) > 30
    for column in range(3):  # each value above its own column
        left, _ = layout.cell_origin(column, 0)
        assert dark_pixels(image, (left, title_top + grid.LINE, left + 64, layout.top)) > 10
    for row in range(2):  # each value beside its row
        _, top = layout.cell_origin(0, row)
        assert dark_pixels(image, (grid.PAD + grid.LINE, top, layout.left, top + 48)) > 10
    # The y title, turned, in the leftmost strip.
    assert dark_pixels(image, (0, layout.top, grid.PAD + grid.LINE + 2, image.height)) > 30


def test_missing_cells_are_placeholders_and_one_axis_works():
    cells = [solid((255, 0, 0)), None, solid((0, 0, 255))]
    image = grid.compose_grid(cells, X, None, header_lines=[])
    layout = grid.grid_layout(3, 1, (64, 48), 0, None)
    assert image.size == (layout.width, layout.height)
    left, top = layout.cell_origin(1, 0)
    assert image.getpixel((left + 32, top + 24)) == grid.PLACEHOLDER
    assert image.getpixel(layout.cell_origin(2, 0)) == (0, 0, 255)
    # Before any cell exists, the preview uses the given cell size.
    empty = grid.compose_grid([None] * 6, X, Y, header_lines=HEADER, cell_size=(64, 48))
    full = grid.grid_layout(3, 2, (64, 48), 3, Y.labels)
    assert empty.size == (full.width, full.height)
    assert empty.getpixel(full.cell_origin(2, 1)) == grid.PLACEHOLDER_EDGE


def test_long_labels_are_cut_and_header_wraps():
    x = Axis("cut_ic_pow", ("a", "b"), ("[1]*100+[2]*100+[3]*100+[4]*700", "[1]*1000"))
    image = grid.compose_grid([solid((0, 0, 0))] * 2, x, None,
                              header_lines=["word " * 60])
    layout = grid.grid_layout(2, 1, (64, 48), 1, None)
    assert image.width == layout.width  # labels never widen the grid
    assert image.height > layout.height  # the header wrapped onto several lines


def test_max_side_and_fit_grid():
    big = [Image.effect_noise((256, 256), 80).convert("RGB") for _ in range(6)]
    image = grid.compose_grid(big, X, Y, header_lines=HEADER, max_side=500)
    assert max(image.size) <= 500
    data, kind = grid.fit_grid(image, 10_000_000)
    assert kind == "png" and Image.open(io.BytesIO(data)).size == image.size
    data, kind = grid.fit_grid(image, 40_000)
    assert kind == "jpeg" and len(data) <= 40_000
    small = grid.compose_grid(big, X, Y, header_lines=HEADER, max_bytes=150_000)
    assert len(grid.png_bytes(small)) <= 150_000


def counting_widths(monkeypatch) -> list[str]:
    measured: list[str] = []
    real = grid.text_width
    monkeypatch.setattr(grid, "text_width", lambda text: measured.append(text) or real(text))
    return measured


def test_fit_text_cuts_to_the_longest_prefix_that_fits_in_a_few_measurements(monkeypatch):
    text = "lighthouse " * 100
    measured = counting_widths(monkeypatch)
    cut = grid.fit_text(text, 200)
    kept = cut[:-1]
    assert cut.endswith("…") and text.startswith(kept)
    assert grid.text_width(cut) <= 200 < grid.text_width(text[:len(kept) + 1] + "…")
    assert len(measured) <= 2 + len(text).bit_length()  # bisection, not one measurement a character
    assert grid.fit_text("short", 200) == "short" and grid.fit_text(text, 2) == ""


def test_a_study_s_longest_texts_cost_a_bounded_number_of_measurements(monkeypatch):
    """16 prompts of 1,000 characters in the header and 1,000-character labels on both axes (a
    64 KiB settings file can ask for this): the layout measures text a bounded number of times."""
    prompt = " | ".join("x" * 997 + f":{i + 1}" for i in range(16))
    labels = tuple("y" * 1000 + str(i) for i in range(6))
    x, y = Axis("text_prompts", labels, labels), Axis("steps", tuple(range(6)), labels)
    measured = counting_widths(monkeypatch)
    image = grid.compose_grid([solid((0, 0, 0))] * 36, x, y, header_lines=[prompt, "seed 7"])
    layout = grid.grid_layout(6, 6, (64, 48), grid.MAX_HEADER_LINES, y.labels)
    assert image.size == (layout.width, layout.height)  # the header is cut at MAX_HEADER_LINES
    assert len(measured) < 600 and sum(map(len, measured)) < 600_000


def test_a_study_s_text_is_measured_once_not_after_every_cell(monkeypatch):
    labels = tuple("z" * 300 + str(i) for i in range(3))
    x = Axis("text_prompts", labels, labels)
    header = ["a lighthouse once " * 50, "seed 7"]
    real_font = grid.font()
    measured: list[str] = []

    class CountingFont:
        def getlength(self, text):
            measured.append(text)
            return real_font.getlength(text)

        def __getattr__(self, name):
            return getattr(real_font, name)
    monkeypatch.setattr(grid, "font", lambda: CountingFont())
    cells: list = [None] * 6
    for k in range(6):  # the partial grid after each cell, as render_study draws it
        cells[k] = solid(COLOURS[k])
        grid.compose_grid(cells, x, Y, header_lines=header)
        if k == 0:
            first = len(measured)
    assert first > 0 and len(measured) == first
