"""The still-image formats a user's image may come in: one table that the reader
(`engine.media.stills`), Discord's attachment check (`commands.job_options`) and every text
that lists the formats share. Import-free, so a command line's help can name them cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StillFormat:
    name: str  # as users know it
    pillow: str  # Pillow's format id: what `Image.open(..., formats=...)` may try
    content_types: tuple[str, ...]  # as Discord (the uploader's client) names them
    extensions: tuple[str, ...]


# Tried in this order: AVIF before HEIF, as both are HEIF containers and an AVIF may carry the
# HEIF brand `mif1` first; Pillow reads AV1 itself, the HEIF opener (pillow-heif) reads HEVC.
STILL_FORMATS = (
    StillFormat("PNG", "PNG", ("image/png",), (".png",)),
    StillFormat("JPEG", "JPEG", ("image/jpeg",), (".jpg", ".jpeg")),
    StillFormat("WebP", "WEBP", ("image/webp",), (".webp",)),
    StillFormat("AVIF", "AVIF", ("image/avif",), (".avif",)),
    StillFormat("HEIC", "HEIF", ("image/heic", "image/heif"), (".heic", ".heif")),
    StillFormat("GIF", "GIF", ("image/gif",), (".gif",)),
    StillFormat("BMP", "BMP", ("image/bmp", "image/x-ms-bmp"), (".bmp",)),
    StillFormat("TIFF", "TIFF", ("image/tiff",), (".tif", ".tiff")),
)
PILLOW_FORMATS = tuple(f.pillow for f in STILL_FORMATS)
CONTENT_TYPES = frozenset(t for f in STILL_FORMATS for t in f.content_types)
EXTENSIONS = frozenset(e for f in STILL_FORMATS for e in f.extensions)
# "PNG, JPEG, WebP, AVIF, HEIC, GIF, BMP or TIFF": every refusal and help text says this.
FORMAT_LIST = ", ".join(f.name for f in STILL_FORMATS[:-1]) + f" or {STILL_FORMATS[-1].name}"

