"""Real ICC profiles for the colour tests (none can be downloaded here), written from published
definitions with `engine.media.icc`: Display P3 and Adobe RGB matrix/TRC display profiles, a
grey TRC profile, and a CMYK input profile whose A2B0 table maps each ink corner to a chosen Lab
colour. littleCMS is the judge that they are valid (test_colour). Also the colour maths the
tests compute their expected values with: written here again from the definitions, not taken
from the code under test.
"""
from __future__ import annotations

import itertools
import struct

import numpy as np

from engine.media.icc import (
    D50,
    SRGB_CURVE,
    icc_profile,
    parametric_curve,
    rgb_profile,
    s15,
    text_tag,
    xyz_tag,
)

D65 = (0.3127, 0.3290)  # xy
SRGB_PRIMARIES = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))  # Display P3 (SMPTE EG 432-1)
ADOBE_PRIMARIES = ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060))  # Adobe RGB (1998)
BT2020_PRIMARIES = ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046))  # ITU-R BT.2020
ADOBE_GAMMA = 563 / 256  # "2.2" as Adobe RGB (1998) specifies it: 2 + 51/256


def display_p3() -> bytes:
    return rgb_profile("Display P3 (test)", P3_PRIMARIES, D65, parametric_curve(*SRGB_CURVE))


def adobe_rgb() -> bytes:
    return rgb_profile("Adobe RGB (1998) (test)", ADOBE_PRIMARIES, D65, gamma_curve(ADOBE_GAMMA))


def gamma_curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def grey_gamma(gamma: float) -> bytes:
    return icc_profile(b"mntr", b"GRAY", b"XYZ ", {
        b"desc": text_tag(f"Grey gamma {gamma} (test)"), b"cprt": text_tag("No copyright, test data"),
        b"wtpt": xyz_tag(D50), b"kTRC": gamma_curve(gamma)})


def cmyk_corners(lab_of) -> bytes:
    """A CMYK input profile whose A2B0 (lut16, a 2-point grid per ink, Lab PCS) maps each of the
    16 ink corners (0 or 100 % of C, M, Y, K) to `lab_of(c, m, y, k)`; between them littleCMS
    interpolates. Identity input and output curves."""
    def lab16(L, a, b):  # lut16's Lab encoding (ICC.1 Table 42, the legacy 16-bit one)
        return struct.pack(">3H", *(round(v) for v in (L * 65280 / 100, (a + 128) * 256, (b + 128) * 256)))
    identity = struct.pack(">2H", 0, 65535)
    table = b"".join(lab16(*lab_of(*corner)) for corner in itertools.product((0, 1), repeat=4))
    a2b0 = (b"mft2\0\0\0\0" + struct.pack(">BBBB", 4, 3, 2, 0) + s15(1) + s15(0) * 3 + s15(1)
            + s15(0) * 3 + s15(1) + struct.pack(">HH", 2, 2) + identity * 4 + table + identity * 3)
    return icc_profile(b"scnr", b"CMYK", b"Lab ", {
        b"desc": text_tag("CMYK corners (test)"), b"cprt": text_tag("No copyright, test data"),
        b"wtpt": xyz_tag(D50), b"A2B0": a2b0})


# -- the expected values -----------------------------------------------------------------------

def rgb_to_xyz(primaries, white=D65) -> np.ndarray:
    """The RGB→XYZ matrix of three primaries and a white, in that white (no adaptation)."""
    def xyz(x, y):
        return np.array([x / y, 1.0, (1 - x - y) / y])
    columns = np.stack([xyz(*p) for p in primaries], axis=1)
    return columns * np.linalg.solve(columns, xyz(*white))


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def p3_to_srgb8(colour, primaries=P3_PRIMARIES) -> tuple[int, ...]:
    """An 8-bit Display P3 colour (or of other `primaries` with sRGB's curve) as 8-bit sRGB,
    relative colorimetric: both have the D65 white, so XYZ links them with no adaptation;
    beyond sRGB, clipped."""
    return _to_srgb8(rgb_to_xyz(primaries) @ srgb_decode(np.array(colour) / 255))


def adobe_to_srgb8(colour) -> tuple[int, ...]:
    return _to_srgb8(rgb_to_xyz(ADOBE_PRIMARIES) @ (np.array(colour) / 255) ** ADOBE_GAMMA)


def _to_srgb8(d65_xyz: np.ndarray) -> tuple[int, ...]:
    linear = np.linalg.solve(rgb_to_xyz(SRGB_PRIMARIES), d65_xyz)
    return tuple(int(v) for v in np.round(srgb_encode(linear) * 255))


def lab_to_srgb8(lab) -> tuple[int, ...]:
    """A D50 Lab colour as 8-bit sRGB, relative colorimetric: to D65 by Bradford (as littleCMS's
    sRGB profile stores its colorants), then clipped to the sRGB cube."""
    L, a, b = lab
    fy = (L + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    d50_xyz = np.array(D50) * np.where(f > 6 / 29, f ** 3, 3 * (6 / 29) ** 2 * (f - 4 / 29))
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    d65 = np.array([D65[0] / D65[1], 1.0, (1 - sum(D65)) / D65[1]])
    to_d65 = np.linalg.inv(bradford) @ np.diag((bradford @ d65) / (bradford @ np.array(D50))) @ bradford
    return _to_srgb8(to_d65 @ d50_xyz)
