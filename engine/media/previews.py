"""Small animated previews (GIF or WebP) and VR180 side-by-side frames, from frames given as PIL
images or uint8 arrays [H, W, 3] (engine.media.video encodes the MP4s)."""
from __future__ import annotations

import itertools
import os
from io import BytesIO
from pathlib import Path
from typing import Iterable, Iterator, Literal

import numpy as np
from PIL import Image

from engine.errors import EngineError
from engine.media.files import atomic_write_bytes
from engine.media.video import as_array


def animated_preview(frames: Iterable[Image.Image | np.ndarray], path: str | os.PathLike, *,
                     max_side: int = 256, fps: float = 12, fmt: Literal["gif", "webp"] | None = None) -> Path:
    """A small looping GIF or WebP (from `fmt`, else the file suffix) with every frame shrunk to fit
    max_side x max_side. Written atomically. Note: the GIF writer merges identical consecutive
    frames into one longer frame, so a still clip has fewer GIF frames than inputs."""
    path = Path(path)
    fmt = fmt or ("webp" if path.suffix.lower() == ".webp" else "gif")
    if fmt not in ("gif", "webp"):
        raise EngineError(f"Preview format must be 'gif' or 'webp', got {fmt!r}.")
    images = []
    for frame in frames:
        image = Image.fromarray(as_array(frame), "RGB")
        image.thumbnail((max_side, max_side), Image.LANCZOS)
        images.append(image)
    if not images:
        raise EngineError(f"No frames for the preview {path.name}.")
    buffer = BytesIO()
    options = {"quality": 80} if fmt == "webp" else {}
    images[0].save(buffer, format=fmt.upper(), save_all=True, append_images=images[1:],
                   duration=max(20, round(1000 / fps)), loop=0, **options)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def side_by_side(left_frames: Iterable, right_frames: Iterable) -> Iterator[Image.Image]:
    """Left-eye and right-eye frames joined horizontally (the VR180 side-by-side layout)."""
    for i, (left, right) in enumerate(itertools.zip_longest(left_frames, right_frames)):
        if left is None or right is None:
            raise EngineError(f"VR frames: one eye has {i} frames and the other more; both need the same count.")
        left, right = as_array(left), as_array(right)
        if left.shape != right.shape:
            raise EngineError(f"VR frame {i}: the two eye views are {left.shape[1]}x{left.shape[0]} and "
                              f"{right.shape[1]}x{right.shape[0]}; they must have the same size.")
        yield Image.fromarray(np.concatenate([left, right], axis=1), "RGB")
