"""Real ICC profiles for the colour tests, written from published definitions (no profile can
be downloaded here): RGB matrix/TRC display profiles (Display P3, Adobe RGB), a grey TRC
profile, and a CMYK input profile whose A2B0 table maps each ink corner to a chosen Lab colour.
ICC.1:2010 (v4.3) layouts; littleCMS is the judge that they are valid (`tests/.../test_colour`).
Also the colour maths the tests compute their expected values with, independent of littleCMS.
"""
from __future__ import annotations

import itertools
import struct

import numpy as np

D50 = (0.9642, 1.0, 0.8249)  # the ICC's profile connection space white (ICC.1 7.2.16)
D65 = (0.3127, 0.3290)  # xy
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SRGB_PRIMARIES = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))  # Display P3 (SMPTE EG 432-1)
ADOBE_PRIMARIES = ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060))  # Adobe RGB (1998)
ADOBE_GAMMA = 563 / 256  # "2.2" as Adobe RGB (1998) specifies it: 2 + 51/256
# The sRGB transfer function as ICC parametric curve 3: Y = (aX+b)^g for X >= d, else cX.
SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


def xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz(primaries, white=D65) -> np.ndarray:
    """The RGB→XYZ matrix of three primaries and a white (columns: each primary's XYZ)."""
    columns = np.stack([xyz(*p) for p in primaries], axis=1)
    return columns * np.linalg.solve(columns, xyz(*white))


def to_d50(matrix: np.ndarray, white=D65) -> np.ndarray:
    """`matrix` adapted from its white to D50 by Bradford, as ICC display profiles store it."""
    source, target = BRADFORD @ xyz(*white), BRADFORD @ np.array(D50)
    return np.linalg.inv(BRADFORD) @ np.diag(target / source) @ BRADFORD @ matrix


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def lab_to_srgb8(lab) -> tuple[int, ...]:
    """A D50 Lab colour as 8-bit sRGB, relative colorimetric: clipped to the sRGB cube."""
    L, a, b = lab
    fy = (L + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    d50_xyz = np.array(D50) * np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    linear = np.linalg.solve(to_d50(rgb_to_xyz(SRGB_PRIMARIES)), d50_xyz)
    return tuple(int(v) for v in np.round(srgb_encode(linear) * 255))


# -- the file format -------------------------------------------------------------------------

def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(values) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _mluc(text: str) -> bytes:
    encoded = text.encode("utf-16-be")
    return b"mluc\0\0\0\0" + struct.pack(">II2s2sII", 1, 12, b"en", b"US", len(encoded), 28) + encoded


def gamma_curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def parametric_curve(g, a, b, c, d) -> bytes:
    return b"para\0\0\0\0" + struct.pack(">HH", 3, 0) + b"".join(_s15(v) for v in (g, a, b, c, d))


def profile(device_class: bytes, colour_space: bytes, pcs: bytes, tags: dict[bytes, bytes]) -> bytes:
    """An ICC v4.3 profile: header, tag table, tags (each 4-byte aligned)."""
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, data in tags.items():
        data += b"\0" * (-len(data) % 4)
        table += struct.pack(">4sII", signature, offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = struct.pack(">I4sI4s4s4s6H4sI", size, b"", 0x04300000, device_class, colour_space, pcs,
                         2026, 1, 1, 0, 0, 0, b"acsp", 0)
    header += b"\0" * 20 + struct.pack(">I", 0) + b"".join(_s15(v) for v in D50) + b"\0" * 48  # intent 0, D50
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def rgb_profile(name: str, primaries, curve: bytes, white=D65) -> bytes:
    """A matrix/TRC display profile: colorants adapted to D50 (with their `chad`), one curve."""
    matrix = to_d50(rgb_to_xyz(primaries, white), white)
    source, target = BRADFORD @ xyz(*white), BRADFORD @ np.array(D50)
    chad = np.linalg.inv(BRADFORD) @ np.diag(target / source) @ BRADFORD
    return profile(b"mntr", b"RGB ", b"XYZ ", {
        b"desc": _mluc(name), b"cprt": _mluc("No copyright, test data"), b"wtpt": _xyz_tag(D50),
        b"chad": b"sf32\0\0\0\0" + b"".join(_s15(v) for v in chad.flatten()),
        b"rXYZ": _xyz_tag(matrix[:, 0]), b"gXYZ": _xyz_tag(matrix[:, 1]), b"bXYZ": _xyz_tag(matrix[:, 2]),
        b"rTRC": curve, b"gTRC": curve, b"bTRC": curve})


def display_p3() -> bytes:
    return rgb_profile("Display P3 (test)", P3_PRIMARIES, parametric_curve(*SRGB_CURVE))


def adobe_rgb() -> bytes:
    return rgb_profile("Adobe RGB (1998) (test)", ADOBE_PRIMARIES, gamma_curve(ADOBE_GAMMA))


def grey_gamma(gamma: float) -> bytes:
    return profile(b"mntr", b"GRAY", b"XYZ ", {
        b"desc": _mluc(f"Grey gamma {gamma} (test)"), b"cprt": _mluc("No copyright, test data"),
        b"wtpt": _xyz_tag(D50), b"kTRC": gamma_curve(gamma)})


def cmyk_corners(lab_of) -> bytes:
    """A CMYK input profile whose A2B0 (lut16, a 2-point grid per ink, Lab PCS) maps each of the
    16 ink corners (0 or 100 % of C, M, Y, K) to `lab_of(c, m, y, k)`; between them littleCMS
    interpolates. Identity input and output curves."""
    def lab16(L, a, b):  # lut16's Lab encoding (ICC.1 Table 42, the legacy 16-bit one)
        return struct.pack(">3H", *(round(v) for v in (L * 65280 / 100, (a + 128) * 256, (b + 128) * 256)))
    identity = struct.pack(">2H", 0, 65535)
    table = b"".join(lab16(*lab_of(*corner)) for corner in itertools.product((0, 1), repeat=4))
    a2b0 = (b"mft2\0\0\0\0" + struct.pack(">BBBB", 4, 3, 2, 0) + _s15(1) + _s15(0) * 3 + _s15(1)
            + _s15(0) * 3 + _s15(1) + struct.pack(">HH", 2, 2) + identity * 4 + table + identity * 3)
    return profile(b"scnr", b"CMYK", b"Lab ", {
        b"desc": _mluc("CMYK corners (test)"), b"cprt": _mluc("No copyright, test data"),
        b"wtpt": _xyz_tag(D50), b"A2B0": a2b0})


def p3_to_srgb8(colour) -> tuple[int, ...]:
    """An 8-bit Display P3 colour as 8-bit sRGB, relative colorimetric: both have the D65 white,
    so XYZ links them with no adaptation; beyond sRGB, clipped."""
    linear = srgb_decode(np.array(colour) / 255)
    return _to_srgb8(rgb_to_xyz(P3_PRIMARIES) @ linear)


def adobe_to_srgb8(colour) -> tuple[int, ...]:
    return _to_srgb8(rgb_to_xyz(ADOBE_PRIMARIES) @ (np.array(colour) / 255) ** ADOBE_GAMMA)


def _to_srgb8(d65_xyz: np.ndarray) -> tuple[int, ...]:
    linear = np.linalg.solve(rgb_to_xyz(SRGB_PRIMARIES), d65_xyz)
    return tuple(int(v) for v in np.round(srgb_encode(linear) * 255))
