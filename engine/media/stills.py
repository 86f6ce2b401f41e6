"""Still images from users (init_image, image prompts, init_frame), read one way by the bot at
upload and by the engine at render time, so what the upload accepts is what the render can use.

Accepted: still PNG, JPEG and WebP — every pixel decoded (a file cut short is refused), within a
pixel cap, EXIF orientation applied (phone photos are stored sideways with a rotate tag). Refused:
any other format Pillow knows (GIF, BMP, TIFF, EPS, ...), animated PNG and WebP (the engine would
silently take one frame), and headers that declare a decompression bomb. A JPEG with an MPO
extension (many phone cameras) is a still: its first image is the photo. Torch-free.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from engine.errors import SpecError

STILL_FORMATS = ("PNG", "JPEG", "WEBP")
STILL_NAMES = "a still PNG, JPEG or WebP image"


class UnusableImage(SpecError):
    """A file that is not a still image the engine can use; `reason` is "pixels" (over the
    pixel cap) or "format" (another format, animated, or damaged). The message completes
    "<file> ...": what is wrong and the fix."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def read_still(source: bytes | Path, max_pixels: int, *, fix: str = "attach") -> Image.Image:
    """The image in `source` (bytes or a file), decoded, upright, in RGB; UnusableImage if not.
    `fix`: the verb a refusal asks with ("attach" on Discord, "give" on the command line)."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        image = Image.open(stream, formats=STILL_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(f"declares over {2 * Image.MAX_IMAGE_PIXELS:,} pixels", max_pixels) from None
    except Exception:  # Pillow's parsers raise many types on hostile bytes; all mean "not usable"
        raise UnusableImage(f"is not {STILL_NAMES}; {fix} a PNG, JPEG or WebP file", "format") from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(f"is {width}×{height} = {width * height:,} pixels", max_pixels)
        if getattr(image, "is_animated", False) and image.format != "MPO":
            raise UnusableImage(f"is an animated {image.format} ({image.n_frames} frames); {fix} "
                                f"{STILL_NAMES} (export the frame you want)", "format")
        try:
            image.load()  # every pixel now: a truncated or corrupt file is refused here
            return _eight_bit(ImageOps.exif_transpose(image)).convert("RGB")
        except Exception as exc:  # as above: the decoders and the EXIF reader raise many types
            raise UnusableImage(f"is damaged or cut short ({str(exc)[:60]}); {fix} the whole "
                                f"file, as {STILL_NAMES}", "format") from None


def _eight_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grey PNG (a depth map, a scan) in 8 bits: Pillow's conversion to RGB clips each
    value to 255, which turned all but the darkest pixels white."""
    if not image.mode.startswith("I"):
        return image
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.int64) >> 8, 0, 255).astype(np.uint8))


def read_still_file(path: Path, max_pixels: int) -> Image.Image:
    """`read_still` for a file named on the command line: a missing file says so, and every
    refusal starts with the path."""
    if not path.is_file():
        raise UnusableImage(f"{path}: there is no image file there; give the path of "
                            f"{STILL_NAMES}", "format")
    try:
        return read_still(path, max_pixels, fix="give")
    except UnusableImage as err:
        raise UnusableImage(f"{path} {err}", err.reason) from None


def _too_many_pixels(what: str, max_pixels: int) -> UnusableImage:
    return UnusableImage(f"{what}; at most {max_pixels:,} — scale it down (DD resizes it to the "
                         f"render size anyway)", "pixels")
