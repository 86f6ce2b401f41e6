"""How long one study grid takes to lay out with the longest texts a study allows.

    .venv/bin/python benchmarks/study_grid.py [--cells 6]

The header holds 16 prompts of 1,000 characters and both axes 1,000-character labels (what a
64 KiB settings file can ask for); the grid is composed once cold, then again as the partial grid
after the next cell (same texts, so `engine.media.grid.text_width` remembers them). Prints one
JSON object: seconds per layout and how many times text was measured.
"""
from __future__ import annotations

import argparse
import json
import time

from PIL import Image

from engine.media import grid
from engine.spec.study import Axis


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=6, help="columns and rows")
    n = parser.parse_args().cells
    prompt = " | ".join("x" * 997 + f":{i + 1}" for i in range(16))
    labels = tuple("y" * 1000 + str(i) for i in range(n))
    x, y = Axis("text_prompts", labels, labels), Axis("steps", tuple(range(n)), labels)
    cells = [Image.new("RGB", (128, 128), (i * 7 % 256, 0, 0)) for i in range(n * n)]
    measured = 0
    real = grid.text_width

    def counted(text: str) -> int:
        nonlocal measured
        measured += 1
        return real(text)
    grid.text_width = counted
    timings = {}
    for name in ("cold", "next_cell"):
        started = time.perf_counter()
        grid.compose_grid(cells, x, y, header_lines=[prompt, "seed 7"])
        timings[name] = round(time.perf_counter() - started, 4)
    print(json.dumps({"grid": f"{n}x{n}", "layout_seconds": timings, "text_width_calls": measured}))


if __name__ == "__main__":
    main()
