"""Image sizes for `/disco`: the named size choices, and aspect ratios turned into sizes.

Disco Diffusion works on sides that are multiples of 64 and its cost grows with the pixel
count, so every size here is a pair of multiples of 64 and the choices are sized around DD's
default, 1280×768 (983,040 px). Sizes at that pixel count take about as long as a default
render; the `small-*` ones are about half that or less and the model's native 512×512 is the
fastest.

An aspect ratio (`--ar 16:9`) becomes the largest size within a pixel budget whose shape is
within `ASPECT_TOLERANCE` of the ratio; when nothing that close exists (very narrow ratios at
small budgets) the closest shape wins. A size over a server's pixel limit is shrunk the same
way, keeping its shape, with a note saying why.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from engine.errors import SpecError
from engine.spec.fields import closest_name

STEP = 64  # DD rounds sides down to multiples of 64
MIN_SIDE, MAX_SIDE = 64, 4096  # RenderSpec's bounds for width and height
DEFAULT_BUDGET = 1280 * 768  # DD's default size, in pixels
ASPECT_TOLERANCE = 0.03  # 3% off the asked shape is invisible; more would look like a mistake
MAX_RATIO = 16.0  # 16:1 is already a thin strip; beyond it DD's cuts see almost nothing


@dataclass(frozen=True)
class SizeChoice:
    """One entry of the `size` option: width, height, and what it is for."""

    width: int
    height: int
    description: str

    @property
    def label(self) -> str:
        """The text shown in Discord's choice list (at most 100 characters)."""
        return f"{self.width}×{self.height} — {self.description}"


# Discord allows 25 choices per option; the order is the order users see them in.
SIZE_CHOICES: dict[str, SizeChoice] = {
    "landscape": SizeChoice(1280, 768, "DD's default, 5:3"),
    "portrait": SizeChoice(768, 1280, "5:3 upright"),
    "square": SizeChoice(960, 960, "largest square at the default cost"),
    "widescreen": SizeChoice(1280, 704, "about 16:9, for wallpapers"),
    "photo": SizeChoice(1152, 768, "3:2, like a camera frame"),
    "photo-portrait": SizeChoice(768, 1152, "2:3 upright"),
    "classic": SizeChoice(1024, 768, "4:3, like old screens"),
    "wide": SizeChoice(1536, 640, "12:5, cinematic"),
    "tall": SizeChoice(640, 1536, "5:12, phone wallpaper"),
    "panorama": SizeChoice(1920, 512, "15:4 strip"),
    "small-square": SizeChoice(512, 512, "the model's native size, fastest"),
    "small-landscape": SizeChoice(896, 512, "7:4, about half the default cost"),
    "small-portrait": SizeChoice(512, 896, "4:7, about half the default cost"),
}


@dataclass(frozen=True)
class Size:
    """A settled size and, when it is not what was asked for, why."""

    width: int
    height: int
    note: str | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height


def size_choice(name: str) -> SizeChoice:
    """The size choice called `name` (case and spaces ignored); SpecError naming the choices."""
    key = name.strip().lower().replace(" ", "-").replace("_", "-")
    if key in SIZE_CHOICES:
        return SIZE_CHOICES[key]

    guess = closest_name(key, list(SIZE_CHOICES))
    hint = f" (did you mean '{guess}'?)" if guess else ""
    raise SpecError(f"size: {name.strip()[:40]!r} is not a size choice{hint}; choices: "
                    f"{', '.join(SIZE_CHOICES)}; or give --ar W:H, or width and height", "size")


_RATIO = re.compile(r"\s*(\d{1,5}(?:\.\d{1,4})?)\s*[:x×/]\s*(\d{1,5}(?:\.\d{1,4})?)\s*")


def parse_ratio(text: str) -> tuple[float, float]:
    """'16:9' (also 16x9, 16/9, 1.85:1) -> (16.0, 9.0); SpecError with an example otherwise."""
    match = _RATIO.fullmatch(text) if isinstance(text, str) and len(text) <= 40 else None
    if not match:
        raise SpecError(f"--ar: {str(text)[:40]!r} is not an aspect ratio; write width:height, "
                        f"e.g. --ar 16:9 or --ar 2:3", "aspect_ratio")
    across, down = float(match.group(1)), float(match.group(2))
    if across <= 0 or down <= 0:
        raise SpecError(f"--ar: both sides of {text.strip()} must be above 0, e.g. --ar 16:9",
                        "aspect_ratio")
    ratio = across / down
    if not 1 / MAX_RATIO <= ratio <= MAX_RATIO:
        raise SpecError(f"--ar: {text.strip()} is narrower than 1:{MAX_RATIO:g} or wider than "
                        f"{MAX_RATIO:g}:1; DD's cuts see too little of such a strip — use e.g. "
                        f"--ar 4:1 or --ar 1:4", "aspect_ratio")
    return across, down


def _shape_error(width: int, height: int, ratio: float) -> float:
    """How far width:height is from `ratio`, as a fraction (0.03 = 3% wider or narrower)."""
    return abs(math.log((width / height) / ratio))


def aspect_size(across: float, down: float, budget: int = DEFAULT_BUDGET, *, asked: str = "") -> Size:
    """The largest multiple-of-64 size with at most `budget` pixels and the shape across:down.
    `asked`: how the note names the shape (`--ar across:down` unless given).

    Among sizes within `ASPECT_TOLERANCE` of the shape, the one with most pixels wins (ties:
    the closer shape); when none is that close, the closest shape wins, then the larger.
    """
    ratio = across / down
    budget = max(MIN_SIDE * MIN_SIDE, min(int(budget), MAX_SIDE * MAX_SIDE))
    best: tuple | None = None
    for width in range(MIN_SIDE, MAX_SIDE + 1, STEP):
        tallest = min(MAX_SIDE, budget // width // STEP * STEP)
        if tallest < MIN_SIDE:
            break
        # For this width, only the heights next to the ideal one can be the closest shape.
        ideal = width / ratio
        for height in {max(MIN_SIDE, min(tallest, h)) for h in
                       (int(ideal // STEP) * STEP, int(ideal // STEP) * STEP + STEP)}:
            error = _shape_error(width, height, ratio)
            close = error <= ASPECT_TOLERANCE
            # Close shapes compare by area; far ones by shape first. Tuples sort that way.
            key = (close, width * height if close else -error,
                   -error if close else width * height)
            if best is None or key > best[0]:
                best = (key, width, height)
    assert best is not None  # the budget always fits 64×64
    _, width, height = best
    note = None
    if _shape_error(width, height, ratio) > ASPECT_TOLERANCE:
        note = (f"{asked or f'--ar {across:g}:{down:g}'}: the closest shape in multiples of 64 within "
                f"{budget:,} pixels is {width}×{height}")
    return Size(width, height, note)


def fit_pixels(width: int, height: int, max_pixels: int) -> Size:
    """width×height when it fits `max_pixels`; otherwise the largest size of the same shape
    that does, with a note naming the limit (the server's `max_pixels`) and the fix."""
    if width * height <= max_pixels:
        return Size(width, height)
    fitted = aspect_size(width, height, max_pixels)
    note = (f"size {width}×{height} → {fitted.width}×{fitted.height}: this server allows at "
            f"most {max_pixels:,} pixels per image (max_pixels); the shape is kept — ask an "
            f"admin to raise the limit, or pick a smaller size")
    return Size(fitted.width, fitted.height, note)


def side_for_ratio(side: int, across: float, down: float, *, given: str) -> int:
    """The other side for an aspect ratio when one side is given, as a multiple of 64."""
    ratio = across / down
    other = side / ratio if given == "width" else side * ratio
    return max(MIN_SIDE, min(MAX_SIDE, round(other / STEP) * STEP))
