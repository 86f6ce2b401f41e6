"""The one preview writer: a tensor or a picture, shrunk to at most `max_side`, written whole."""
from __future__ import annotations

import io

import torch
from PIL import Image

from engine.diffusion.images import preview, to_pil, write_preview


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_tensor_preview_is_the_shrunk_image_as_png(tmp_path):
    x = torch.rand(1, 3, 48, 96, generator=torch.Generator().manual_seed(1)) * 2 - 1
    path = write_preview(x, tmp_path / "preview.png", max_side=32)
    assert path == tmp_path / "preview.png" and Image.open(path).size == (32, 16)
    assert path.read_bytes() == png_bytes(preview(x, max_side=32))
    assert [p.name for p in tmp_path.iterdir()] == ["preview.png"]  # no temp file left behind


def test_a_picture_preview_leaves_the_picture_alone(tmp_path):
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2)) * 2 - 1
    picture = to_pil(x).convert("RGBA")
    write_preview(picture, tmp_path / "p.png", max_side=20)
    assert picture.size == (40, 40) and picture.mode == "RGBA"
    shrunk = Image.open(tmp_path / "p.png")
    assert shrunk.size == (20, 20) and shrunk.mode == "RGB"
    # A picture smaller than max_side is kept pixel for pixel (the animation's 64 px frames).
    write_preview(picture, tmp_path / "same.png", max_side=64)
    assert (tmp_path / "same.png").read_bytes() == png_bytes(to_pil(x))
