"""Still images from users: what the upload accepts is what the engine can use."""
from __future__ import annotations

import pytest

from engine.media.stills import UnusableImage, read_still
from tests.support.media import (EPS, animated, encoded, gif_header_only, picture, png_header_only,
                                 with_orientation)

CAP = 4096 * 4096


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_still_png_jpeg_and_webp_are_read_in_rgb(fmt):
    image = read_still(encoded(picture().convert("RGBA") if fmt != "JPEG" else picture(), fmt), CAP)
    assert image.mode == "RGB" and image.size == (40, 20)


def test_a_16_bit_grey_png_keeps_its_greys():
    """Pillow clips a 16-bit value to 255 when it converts to RGB: such an init image (a depth
    map, a scan) was read as white but for its darkest pixels."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    image = read_still(encoded(Image.fromarray(ramp), "PNG"), CAP)
    assert image.mode == "RGB" and np.array_equal(np.asarray(image)[..., 1], (ramp >> 8).astype(np.uint8))


def test_a_phone_s_mpo_jpeg_is_a_still():
    photo = encoded(picture(), "MPO", save_all=True, append_images=[picture(20, 10)])
    assert read_still(photo, CAP).size == (40, 20)


@pytest.mark.parametrize("orientation,size,left", [(1, (40, 20), "red"), (3, (40, 20), "blue"),
                                                   (6, (20, 40), None), (8, (20, 40), None)])
def test_exif_orientation_is_applied(orientation, size, left):
    image = read_still(with_orientation(picture(), orientation), CAP)
    assert image.size == size
    if left:
        red, _, blue = image.getpixel((2, 10))
        assert (red > blue) == (left == "red")


@pytest.mark.parametrize("data", [png_header_only(100_000, 100_000), png_header_only(5000, 5000)],
                         ids=["bomb", "5000x5000"])
def test_too_many_pixels_is_refused_by_the_header_before_any_decoding(data):
    with pytest.raises(UnusableImage) as caught:
        read_still(data, CAP)
    assert caught.value.reason == "pixels" and f"at most {CAP:,}" in str(caught.value)


@pytest.mark.parametrize("data,needle", [
    (gif_header_only(65535, 65535), "PNG, JPEG or WebP"),
    (encoded(picture(), "GIF"), "PNG, JPEG or WebP"),
    (encoded(picture(), "BMP"), "PNG, JPEG or WebP"),
    (encoded(picture(), "TIFF"), "PNG, JPEG or WebP"),
    (EPS, "PNG, JPEG or WebP"),
    (animated("WEBP"), "animated WEBP (3 frames)"),
    (animated("PNG"), "animated PNG (3 frames)"),
    (encoded(picture(400, 300), "JPEG")[:1500], "cut short"),
    (b"", "PNG, JPEG or WebP"),
], ids=["gif-bomb", "gif", "bmp", "tiff", "eps", "animated-webp", "animated-png", "truncated-jpeg",
        "empty"])
def test_anything_else_is_refused_with_the_formats_accepted(data, needle):
    with pytest.raises(UnusableImage) as caught:
        read_still(data, CAP)
    assert caught.value.reason == "format" and needle in str(caught.value)
    assert "PNG, JPEG or WebP" in str(caught.value)


def test_reads_a_file_too(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(with_orientation(picture(), 6))
    assert read_still(path, CAP).size == (20, 40)
