"""ICC profiles written from a colour space's definition (its primaries, white and curve), for a
picture whose colours are described by numbers instead of a profile: a HEIC's nclx box
(ITU-T H.273 primaries and transfer). ICC.1:2010 (v4.3) layouts: header, tag table, tags.
"""
from __future__ import annotations

import struct

import numpy as np

D50 = (0.9642, 1.0, 0.8249)  # the profile connection space's white (ICC.1 7.2.16)
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# The sRGB transfer function as ICC parametric curve 3: Y = (aX+b)^g for X >= d, else cX.
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


def xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def adaptation_to_d50(white: tuple[float, float]) -> np.ndarray:
    """Bradford's chromatic adaptation from `white` (xy) to D50, as display profiles store it."""
    source, target = BRADFORD @ xyz(*white), BRADFORD @ np.array(D50)
    return np.linalg.inv(BRADFORD) @ np.diag(target / source) @ BRADFORD


def rgb_to_d50_xyz(primaries, white: tuple[float, float]) -> np.ndarray:
    """The matrix from linear RGB to D50 XYZ (columns: each primary's colorant tag)."""
    columns = np.stack([xyz(*p) for p in primaries], axis=1)
    return adaptation_to_d50(white) @ (columns * np.linalg.solve(columns, xyz(*white)))


def s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def xyz_tag(values) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(s15(v) for v in values)


def text_tag(text: str) -> bytes:
    """multiLocalizedUnicodeType with one English record."""
    encoded = text.encode("utf-16-be")
    return b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(encoded), 28) + encoded


def parametric_curve(g: float, a: float, b: float, c: float, d: float) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(s15(v) for v in (g, a, b, c, d))


def icc_profile(device_class: bytes, colour_space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    """A v4.3 profile of `tags` (signature → data, each padded to 4 bytes)."""
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, data in tags.items():
        data += b"\0" * (-len(data) % 4)
        table += struct.pack(">4sII", signature, offset + len(body), len(data))
        body += data
    header = struct.pack(">I4sI4s4s4s6H4sI", offset + len(body), b"", 0x04300000, device_class,
                         colour_space, pcs, 2026, 1, 1, 0, 0, 0, b"acsp", 0)
    # flags, manufacturer, model, attributes, intent 0; the PCS white; creator, id, reserved
    header += b"\0" * 24 + b"".join(s15(v) for v in D50) + b"\0" * 48
    return header + struct.pack(">I", len(tags)) + table + body


def rgb_profile(name: str, primaries, white: tuple[float, float], curve: bytes) -> bytes:
    """A matrix/TRC display profile: colorants adapted to D50 (with their `chad`), one curve
    for the three channels."""
    matrix = rgb_to_d50_xyz(primaries, white)
    return icc_profile(b"mntr", b"RGB ", b"XYZ ", {
        b"desc": text_tag(name), b"cprt": text_tag("No copyright, use freely"), b"wtpt": xyz_tag(D50),
        b"chad": b"sf32\0\0\0\0" + b"".join(s15(v) for v in adaptation_to_d50(white).flatten()),
        b"rXYZ": xyz_tag(matrix[:, 0]), b"gXYZ": xyz_tag(matrix[:, 1]), b"bXYZ": xyz_tag(matrix[:, 2]),
        b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})
