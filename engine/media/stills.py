"""Still images from users (init_image, image prompts, init_frame, /describe, GoBig), read one
way by the bot at upload and by the engine at render time, so what the upload accepts is what
the render can use.

Accepted: the still formats of `engine.media.still_formats` (PNG, JPEG, WebP, AVIF, HEIC, GIF,
BMP, TIFF) — every pixel decoded (a file cut short is refused), within a pixel cap, upright
(a phone stores its photo sideways with a rotate tag: EXIF in a JPEG, `irot` in a HEIC, which
the HEIF opener applies and then clears the EXIF tag, so it is turned once), in 8-bit sRGB:
16-bit values by their high byte, then converted by the ICC colour profile the file carries
(`engine.media.colour`: an iPhone's Display P3, Adobe RGB, a CMYK or grey profile, or a HEIC's
nclx primaries; without a usable one, RGB is taken as sRGB and CMYK by Pillow's formula),
transparency on white. Refused:
any other format Pillow knows (EPS would run Ghostscript, PDF, ...), animations and
multi-page files (the engine would silently take one frame), headers that declare a
decompression bomb, and values with no honest 8-bit reading. A JPEG with an MPO extension
(many phone cameras) is a still: its first image is the photo. Torch-free.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from pillow_heif import register_heif_opener

from engine.errors import SpecError
from engine.media.colour import SPACES, nclx_profile, to_srgb
from engine.media.still_formats import FORMAT_LIST, PILLOW_FORMATS, STILL_FORMATS

# HEIC/HEIF for Pillow, once per process; a user's photo needs neither its thumbnails nor its
# depth and auxiliary images.
register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

STILL_NAMES = f"a still {FORMAT_LIST} image"
# Where an image shows through (alpha, a transparent palette entry), it is painted on white, as
# on paper; the colour hidden under a transparent pixel is whatever its editor left there.
BACKGROUND = (255, 255, 255)


class UnusableImage(SpecError):
    """A file that is not a still image the engine can use; `reason` is "pixels" (over the
    pixel cap) or "format" (another format, animated, damaged, or values with no 8-bit
    reading). The message completes "<file> ...": what is wrong and the fix."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


def read_still(source: bytes | Path, max_pixels: int, *, fix: str = "attach") -> Image.Image:
    """The image in `source` (bytes or a file), decoded, upright, in sRGB; UnusableImage if not.
    `fix`: the verb a refusal asks with ("attach" on Discord, "give" on the command line)."""
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        image = Image.open(stream, formats=PILLOW_FORMATS)
    except Image.DecompressionBombError:
        raise _too_many_pixels(f"declares over {2 * Image.MAX_IMAGE_PIXELS:,} pixels", max_pixels) from None
    except Exception:  # Pillow's parsers raise many types on hostile bytes; all mean "not usable"
        raise _unopened(source, fix) from None
    with image:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(f"is {width}×{height} = {width * height:,} pixels", max_pixels)
        try:
            _check_single_frame(image, fix)  # a GIF's is found by reading past its first frame
            image.load()  # every pixel now: a truncated or corrupt file is refused here
            upright = ImageOps.exif_transpose(image)
        except UnusableImage:
            raise
        except Exception as exc:  # as above: the decoders and the EXIF reader raise many types
            raise UnusableImage(f"is damaged or cut short ({str(exc)[:60]}); {fix} the whole "
                                f"file, as {STILL_NAMES}", "format") from None
    return _rgb(upright, fix)  # `upright` is a copy: the decoded pixels are freed first


def _unopened(source: bytes | Path, fix: str) -> UnusableImage:
    """Why a file did not open: its start is one of ours (an AVIF or WebP cut short fails here,
    as their readers parse the whole file), or it is another kind of file."""
    named = still_format_of(source[:16] if isinstance(source, bytes) else _file_head(source))
    if named is None:
        return UnusableImage(f"is not {STILL_NAMES}; {fix} it saved as one of these", "format")
    return UnusableImage(f"is damaged or cut short (its {named} data does not open); {fix} the "
                         f"whole file, as {STILL_NAMES}", "format")


def still_format_of(head: bytes) -> str | None:
    """Which of the still formats a file's first 16 bytes begin (its name), by Pillow's own
    signature tests; None for any other file."""
    Image.init()  # every format's signature test (Image.OPEN), loaded on first need
    return next((still.name for still in STILL_FORMATS
                 if (accept := Image.OPEN.get(still.pillow, (None, None))[1]) and accept(head)), None)


def _file_head(path: Path) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(16)
    except OSError:  # gone, a folder, unreadable: nothing that is one of ours
        return b""


def _check_single_frame(image: Image.Image, fix: str) -> None:
    if not getattr(image, "is_animated", False) or image.format == "MPO":
        return
    if image.format in ("TIFF", "HEIF"):  # pages of a scan, images of a HEIF collection
        parts = "pages" if image.format == "TIFF" else "images"
        raise UnusableImage(f"is a {image.format} of {image.n_frames} {parts}; {fix} one of them as "
                            f"{STILL_NAMES} (export the one you want)", "format")
    raise UnusableImage(f"is an animated {image.format} ({image.n_frames} frames); {fix} "
                        f"{STILL_NAMES} (export the frame you want)", "format")


def _rgb(image: Image.Image, fix: str) -> Image.Image:
    """The decoded picture in 8-bit sRGB, or UnusableImage where there is no honest reading:
    brought to 8 bits, converted by its colour profile, then flattened on white."""
    # a JPEG's, PNG's, WebP's, TIFF's, AVIF's or HEIC's profile, or a HEIC's colours by numbers
    profile = image.info.get("icc_profile") or nclx_profile(image.info.get("nclx_profile"))
    picture = to_srgb(_eight_bit(image, fix), profile)
    if picture.mode in ("RGBA", "LA"):
        with_alpha = picture.convert("RGBA")
        flat = Image.new("RGB", picture.size, BACKGROUND)
        flat.paste(with_alpha, mask=with_alpha.getchannel("A"))
        return flat
    # CMYK without a profile by Pillow's formula; an RGB picture as it is (a copy is 64 MB at 16 MP)
    rgb = picture if picture.mode == "RGB" else picture.convert("RGB")
    for key in ("icc_profile", "nclx_profile"):  # its values are sRGB: none says otherwise if saved
        rgb.info.pop(key, None)
    return rgb


def _eight_bit(image: Image.Image, fix: str) -> Image.Image:
    """The picture in one of the modes a colour profile applies to: L, LA, RGB, RGBA, CMYK."""
    if image.mode == "F":
        return _from_floats(image, fix)
    if image.mode.startswith("I"):
        return _from_integers(image, fix)
    keyed = image.mode in ("L", "RGB") and "transparency" in image.info  # one colour is clear
    if image.mode in SPACES and not keyed:
        return image
    try:
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    except ValueError:  # a mode Pillow cannot turn into RGB
        raise UnusableImage(f"is in the {image.mode} colour mode, which is not read here; "
                            f"{fix} it saved in RGB, as {STILL_NAMES}", "format") from None


def _from_integers(image: Image.Image, fix: str) -> Image.Image:
    """A 16-bit grey image (a depth map, a scan) in 8 bits: its high byte. Pillow's own
    conversion clips each value to 255, which turned all but the darkest pixels white. Values
    beyond 16 bits (a 32-bit or signed TIFF) have no scale to read them by: refused."""
    values = np.asarray(image, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise UnusableImage(f"holds grey values beyond 0–65535 (a 32-bit or signed image); "
                            f"{fix} it saved with 8 or 16 bits per channel", "format")
    return Image.fromarray((values >> 8).astype(np.uint8))


def _from_floats(image: Image.Image, fix: str) -> Image.Image:
    """A floating-point grey TIFF: values 0–1 are black to white; any other range (HDR, depth
    in metres) has no one right mapping, so it is refused rather than guessed."""
    values = np.asarray(image, dtype=np.float64)
    if not np.isfinite(values).all() or (values.size and (values.min() < 0 or values.max() > 1)):
        raise UnusableImage(f"is a floating-point image with values outside 0–1; {fix} it "
                            f"saved with 8 or 16 bits per channel", "format")
    return Image.fromarray(np.round(values * 255).astype(np.uint8))


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
