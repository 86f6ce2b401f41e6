"""A user's still in sRGB, the space DD works in, by the ICC colour profile it carries: an
iPhone photo's Display P3, a camera's Adobe RGB, a print file's CMYK, a scan's grey. Read as if
sRGB, such a picture comes out washed out (P3, Adobe RGB) or off (CMYK by Pillow's formula).

A HEIC that describes its colours by numbers (nclx primaries and curve) gets the profile they
define (`engine.media.icc`). littleCMS (Pillow's `ImageCms`) converts. A picture without a
profile, or with one that is damaged, too large, of another colour space than its pixels, or
refused by littleCMS, is left as it is: it is read as sRGB, as before (a user's photo is not
refused for its profile). Torch-free.
"""
from __future__ import annotations

import functools
import hashlib
import io
import struct
import threading
from collections import OrderedDict

import numpy as np
from PIL import Image, ImageCms

from engine.media.icc import SRGB_CURVE, parametric_curve, rgb_profile

# Relative colorimetric with black point compensation, Photoshop's default conversion: a colour
# inside sRGB keeps its exact value and only those beyond are clipped (a matrix profile such as
# P3 or Adobe RGB has no perceptual table, so its perceptual intent is this anyway), and a print
# profile's ink black becomes sRGB black instead of a dark grey.
INTENT = ImageCms.Intent.RELATIVE_COLORIMETRIC
FLAGS = ImageCms.Flags.BLACKPOINTCOMPENSATION
# The largest print (CMYK) profiles are a few MiB; anything beyond is not parsed.
MAX_PROFILE_BYTES = 4 * 2**20
# The profile colour space each pixel mode needs (ICC signatures); alpha bands go around it.
SPACES = {"RGB": "RGB", "RGBA": "RGB", "CMYK": "CMYK", "L": "GRAY", "LA": "GRAY"}
CACHED_TRANSFORMS = 8  # a few profiles are most photos' (P3, Adobe RGB, sRGB, one print profile)
# A HEIC may describe its colours by H.273 code points (its nclx box) instead of a profile. Its
# primaries are converted where they are not sRGB's (1) or unspecified (2) and its curve is
# sRGB's (13) or unspecified: Display P3 (12) from a phone, BT.2020 (9) in SDR. An HDR curve (PQ
# 16, HLG 18) has no sRGB reading without tone mapping, so such a picture is read as before.
SRGB_PRIMARY_CODES = (1, 2)
SRGB_TRANSFER_CODES = (2, 13)


@functools.cache
def srgb() -> ImageCms.ImageCmsProfile:
    """littleCMS's built-in sRGB, built once per process."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def to_srgb(image: Image.Image, profile: bytes | None) -> Image.Image:
    """`image` (mode L, LA, RGB, RGBA or CMYK) converted from `profile` to sRGB: RGB, or RGBA
    with the same alpha where it had one. Unchanged where there is no usable profile. An RGB
    `image` is converted in place (a 16 MP copy is 64 MB): pass one that is yours to change."""
    if not (isinstance(profile, bytes) and 0 < len(profile) <= MAX_PROFILE_BYTES) or image.mode not in SPACES:
        return image
    colour_mode = image.mode.removesuffix("A")
    transform = _transform(profile, colour_mode)
    if transform is None:
        return image
    try:
        if image.mode == "RGB":
            return transform.apply_in_place(image)
        converted = transform.apply(image.convert(colour_mode) if colour_mode != image.mode else image)
    except (ImageCms.PyCMSError, ValueError, OSError):  # littleCMS refused the pixels after all
        return image
    if colour_mode != image.mode:
        converted.putalpha(image.getchannel("A"))
    return converted


def nclx_profile(nclx: dict | None) -> bytes | None:
    """An ICC profile for a HEIC's nclx colours (pillow-heif's `info["nclx_profile"]`, the
    primaries as xy), None where they are sRGB's or have another curve than sRGB's."""
    if (not nclx or nclx.get("color_primaries") in SRGB_PRIMARY_CODES
            or nclx.get("transfer_characteristics") not in SRGB_TRANSFER_CODES):
        return None
    try:  # float32 values from libheif's table of the code point: rounded, they are the standard's
        xy = tuple((round(nclx[f"color_primary_{c}_x"], 4), round(nclx[f"color_primary_{c}_y"], 4))
                   for c in ("red", "green", "blue", "white"))
        return _srgb_curve_profile(xy)
    except (KeyError, TypeError, ValueError, ArithmeticError, np.linalg.LinAlgError, struct.error):
        return None  # missing, or primaries that span no gamut (values beyond the ICC's numbers)


@functools.lru_cache(maxsize=CACHED_TRANSFORMS)
def _srgb_curve_profile(xy: tuple[tuple[float, float], ...]) -> bytes:
    *primaries, white = xy
    return rgb_profile(f"nclx primaries {xy}", primaries, white, parametric_curve(*SRGB_CURVE))


_transforms: OrderedDict[tuple[bytes, str], ImageCms.ImageCmsTransform | None] = OrderedDict()
_transforms_lock = threading.Lock()  # the bot checks uploads in worker threads


def _transform(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from `profile` to sRGB for pixels in `mode`, None if there is none; the
    last few are kept, keyed by a digest (not the profile: a print profile is megabytes). A
    littleCMS transform may be used by several threads at once (its cache is per call)."""
    key = (hashlib.sha256(profile).digest(), mode)
    with _transforms_lock:
        if key in _transforms:
            _transforms.move_to_end(key)
            return _transforms[key]
    transform = _build(profile, mode)
    with _transforms_lock:
        _transforms[key] = transform
        while len(_transforms) > CACHED_TRANSFORMS:
            _transforms.popitem(last=False)
    return transform


def _build(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        if source.profile.xcolor_space.strip() != SPACES[mode]:
            return None  # e.g. an RGB profile left on a picture converted to CMYK
        return ImageCms.buildTransform(source, srgb(), mode, "RGB", INTENT, FLAGS)
    except (ImageCms.PyCMSError, ValueError, OSError, TypeError):  # damaged, or not for this use
        return None
