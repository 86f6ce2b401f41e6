"""Small image files made in memory for the attachment and image-loading tests."""
from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def encoded(image: Image.Image, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def picture(width: int = 40, height: int = 20) -> Image.Image:
    """Left half red, right half blue: its orientation can be told after loading."""
    image = Image.new("RGB", (width, height), (220, 20, 20))
    image.paste((20, 20, 220), (width // 2, 0, width, height))
    return image


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width×height, with no pixel data: a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def gif_header_only(width: int, height: int) -> bytes:
    """A GIF whose logical screen and one frame declare width×height (at most 65535 each)."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b";"


def animated(fmt: str, frames: int = 3) -> bytes:
    images = [Image.new("RGB", (16, 16), (i * 80, 0, 0)) for i in range(frames)]
    return encoded(images[0], fmt, save_all=True, append_images=images[1:], duration=100)


def with_orientation(image: Image.Image, orientation: int, fmt: str = "JPEG") -> bytes:
    """A photo as a phone writes it: the pixels as the sensor saw them, plus an EXIF rotate tag.
    As HEIF (an iPhone's HEIC), pillow-heif also writes the tag as the container's `irot`
    (and keeps the EXIF tag), as an iPhone does."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encoded(image, fmt, exif=exif.tobytes(), quality=95)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"
