"""Still images from users: what the upload accepts is what the engine can use."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from engine.media.still_formats import FORMAT_LIST, STILL_FORMATS
from engine.media.stills import UnusableImage, read_still
from tests.support.media import (
    EPS,
    animated,
    encoded,
    gif_header_only,
    picture,
    png_header_only,
    with_orientation,
)

CAP = 4096 * 4096
RED, BLUE, WHITE = (220, 20, 20), (20, 20, 220), (255, 255, 255)
LOSSLESS = {"PNG", "GIF", "BMP", "TIFF"}


def near(pixel, colour, within=12) -> bool:
    return all(abs(a - b) <= within for a, b in zip(pixel, colour))


@pytest.mark.parametrize("fmt", [f.pillow for f in STILL_FORMATS])
def test_every_accepted_format_is_read_in_rgb(fmt):
    source = picture().convert("RGBA") if fmt in ("PNG", "WEBP", "AVIF", "HEIF", "TIFF") else picture()
    image = read_still(encoded(source, fmt, **({"lossless": True} if fmt == "WEBP" else {})), CAP)
    assert image.mode == "RGB" and image.size == (40, 20)
    assert near(image.getpixel((5, 10)), RED, 0 if fmt in LOSSLESS else 12)
    assert near(image.getpixel((35, 10)), BLUE, 0 if fmt in LOSSLESS else 12)


@pytest.mark.parametrize("fmt", [f.pillow for f in STILL_FORMATS])
def test_every_format_is_held_to_the_pixel_cap(fmt):
    with pytest.raises(UnusableImage) as caught:
        read_still(encoded(picture(), fmt), 799)
    assert caught.value.reason == "pixels" and "40×20 = 800 pixels; at most 799" in str(caught.value)


def test_a_16_bit_grey_png_or_tiff_keeps_its_greys():
    """Pillow clips a 16-bit value to 255 when it converts to RGB: such an init image (a depth
    map, a scan) was read as white but for its darkest pixels."""
    ramp = np.linspace(0, 65535, 64 * 16).reshape(16, 64).astype(np.uint16)
    for fmt in ("PNG", "TIFF"):
        image = read_still(encoded(Image.fromarray(ramp), fmt), CAP)
        assert image.mode == "RGB" and np.array_equal(np.asarray(image)[..., 1], (ramp >> 8).astype(np.uint8))


def test_a_16_bit_rgb_tiff_is_read_by_its_high_bytes():
    bgr = np.zeros((16, 32, 3), np.uint16)
    bgr[..., 2], bgr[:, 16:, 0] = 60000, 30000  # red everywhere, blue on the right
    image = read_still(cv2.imencode(".tiff", bgr)[1].tobytes(), CAP)
    assert image.getpixel((0, 0)) == (60000 >> 8, 0, 0) and image.getpixel((20, 0)) == (60000 >> 8, 0, 30000 >> 8)


@pytest.mark.parametrize("fmt", ["TIFF", "JPEG"])
def test_a_cmyk_print_file_becomes_rgb(fmt):
    image = read_still(encoded(picture().convert("CMYK"), fmt), CAP)
    assert image.mode == "RGB" and near(image.getpixel((5, 10)), RED) and near(image.getpixel((35, 10)), BLUE)


def test_what_shows_through_is_white():
    """A transparent palette entry (a GIF), grey with alpha (LA), RGBA: the colour an editor
    left under a transparent pixel is not what the user saw."""
    palette = Image.new("P", (8, 8), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])
    palette.putpixel((0, 0), 2)
    grey = Image.merge("LA", (Image.new("L", (8, 8), 0), Image.new("L", (8, 8), 0)))
    grey.putpixel((0, 0), (0, 255))
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    clear.putpixel((0, 0), (0, 0, 255, 255))
    for data, opaque in [(encoded(palette, "GIF", transparency=1), (0, 0, 255)), (encoded(grey, "TIFF"), (0, 0, 0)),
                         (encoded(grey, "PNG"), (0, 0, 0)), (encoded(clear, "PNG"), (0, 0, 255))]:
        image = read_still(data, CAP)
        assert image.getpixel((0, 0)) == opaque and image.getpixel((5, 5)) == WHITE


def test_a_float_tiff_in_0_to_1_is_read_and_any_other_range_refused():
    ramp = np.linspace(0, 1, 32 * 8, dtype=np.float32).reshape(8, 32)
    image = read_still(encoded(Image.fromarray(ramp), "TIFF"), CAP)
    assert np.array_equal(np.asarray(image)[..., 0], np.round(ramp * 255).astype(np.uint8))
    for values, needle in [(ramp * 1000, "floating-point image with values outside 0–1"),
                           (ramp.astype(np.int32) * 10_000_000 + 70_000, "grey values beyond 0–65535")]:
        with pytest.raises(UnusableImage) as caught:
            read_still(encoded(Image.fromarray(values), "TIFF"), CAP)
        assert caught.value.reason == "format" and needle in str(caught.value)
        assert "saved with 8 or 16 bits per channel" in str(caught.value)


def test_a_phone_s_mpo_jpeg_is_a_still():
    photo = encoded(picture(), "MPO", save_all=True, append_images=[picture(20, 10)])
    assert read_still(photo, CAP).size == (40, 20)


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF", "AVIF"])
@pytest.mark.parametrize("orientation,size,left", [(1, (40, 20), RED), (3, (40, 20), BLUE),
                                                   (6, (20, 40), None), (8, (20, 40), None)])
def test_a_phone_photo_comes_out_upright_once(fmt, orientation, size, left):
    """A JPEG's EXIF tag; an iPhone's HEIC carries the turn twice, as `irot` and as EXIF, and
    must be turned once; an AVIF's `irot`."""
    image = read_still(with_orientation(picture(), orientation, fmt), CAP)
    assert image.size == size
    if left:
        assert near(image.getpixel((2, 10)), left, 30)
    elif orientation == 6:  # turned a quarter clockwise: the left (red) half is now on top
        assert near(image.getpixel((10, 2)), RED, 30) and near(image.getpixel((10, 37)), BLUE, 30)
    if fmt == "HEIF" and orientation != 1:
        assert b"irot" in with_orientation(picture(), orientation, fmt)


@pytest.mark.parametrize("data", [png_header_only(100_000, 100_000), png_header_only(5000, 5000),
                                  gif_header_only(65535, 65535)], ids=["bomb", "5000x5000", "gif-bomb"])
def test_too_many_pixels_is_refused_by_the_header_before_any_decoding(data):
    with pytest.raises(UnusableImage) as caught:
        read_still(data, CAP)
    assert caught.value.reason == "pixels" and f"at most {CAP:,}" in str(caught.value)


def multipage_tiff() -> bytes:
    return encoded(picture(), "TIFF", save_all=True, append_images=[picture(), picture()])


def noise(fmt: str) -> bytes:
    """An image whose compressed data fills most of the file, to be cut short."""
    pixels = np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    return encoded(Image.fromarray(pixels), fmt)


CUT = [(fmt, noise(fmt)) for fmt in ("AVIF", "HEIF", "GIF", "BMP", "TIFF", "WEBP")]


@pytest.mark.parametrize("data,needle", [
    (EPS, "is not a still"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", "is not a still"),
    (animated("WEBP"), "animated WEBP (3 frames)"),
    (animated("PNG"), "animated PNG (3 frames)"),
    (animated("GIF"), "animated GIF (3 frames)"),
    (animated("AVIF"), "animated AVIF (3 frames)"),
    (animated("HEIF"), "is a HEIF of 3 images"),
    (multipage_tiff(), "is a TIFF of 3 pages"),
    (encoded(picture(400, 300), "JPEG")[:1500], "cut short"),
    *[(data[:len(data) * 2 // 3], "cut short") for _, data in CUT],
    *[(data[:-20], "cut short") for _, data in CUT],
    (b"", "is not a still"),
], ids=["eps", "pdf", "animated-webp", "animated-png", "animated-gif", "animated-avif", "heif-collection",
        "multipage-tiff", "truncated-jpeg", *[f"two-thirds-{f.lower()}" for f, _ in CUT],
        *[f"end-cut-{f.lower()}" for f, _ in CUT], "empty"])
def test_anything_else_is_refused_with_the_formats_accepted(data, needle):
    with pytest.raises(UnusableImage) as caught:
        read_still(data, CAP)
    assert caught.value.reason == "format" and needle in str(caught.value)
    assert f"still {FORMAT_LIST} image" in str(caught.value)


def test_reads_a_file_too(tmp_path):
    for name, data in [("photo.jpg", with_orientation(picture(), 6)), ("IMG_0001.HEIC", with_orientation(picture(), 6, "HEIF"))]:
        path = tmp_path / name
        path.write_bytes(data)
        assert read_still(path, CAP).size == (20, 40)
    (tmp_path / "cut.avif").write_bytes(noise("AVIF")[:200])
    with pytest.raises(UnusableImage, match="cut short"):
        read_still(tmp_path / "cut.avif", CAP)
    with pytest.raises(UnusableImage, match="is not a still"):
        read_still(tmp_path / "gone.heic", CAP)
