"""The one preview writer (a tensor or a picture, shrunk to at most `max_side`, written whole) and
the one image reader for init images and image prompts."""
from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

from engine.diffusion.embeddings import load_image
from engine.diffusion.images import pil_to_unit, preview, to_pil, unit_to_pil, write_preview
from engine.errors import SpecError
from engine.media.still_formats import FORMAT_LIST
from tests.support.media import EPS, animated, picture, with_orientation


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


def test_load_image_reads_a_phone_photo_upright(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(with_orientation(picture(40, 20), 6))  # stored sideways, tagged "rotate 90°"
    image = load_image(str(path), "init_image")
    assert image.size == (20, 40) and image.mode == "RGB"


def test_load_image_refuses_what_the_upload_refuses(tmp_path):
    for name, data in (("loop.webp", animated("WEBP")), ("drawing.eps", EPS)):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SpecError, match=f"init_image: '.*{name}' .*{FORMAT_LIST}"):
            load_image(str(tmp_path / name), "init_image")


def test_a_picture_reads_back_as_the_same_contiguous_tensor():
    """What an animation hands on in memory and what a resumed run reads from the PNG are equal
    in values and in layout (convolutions sum channels-last tensors in another order)."""
    x = torch.rand(1, 3, 16, 24).mul(255).round().div(255)
    back = pil_to_unit(unit_to_pil(x), torch.device("cpu"))
    assert torch.equal(back, x) and back.is_contiguous() and back.stride() == x.stride()
