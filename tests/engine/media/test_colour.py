"""Stills read in sRGB by the colour profile they carry: the expected colours are computed from
each profile's published primaries, white and curve (tests/engine/media/profiles.py), not by
littleCMS; a profile that cannot be used leaves the picture read as before."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from bot.attachments import save_image
from engine.diffusion.embeddings import load_image
from engine.media import colour
from engine.media.icc import icc_profile, text_tag
from engine.media.stills import read_still
from storage import name_of
from tests.engine.media import profiles
from tests.support.media import encoded
from tests.support.storage import in_db

CAP = 4096 * 4096
BLOCK = 16
# Colours a phone or camera would hold; each moves by several levels when read by its profile.
P3_COLOURS = [(200, 100, 50), (50, 150, 200), (80, 180, 80), (120, 60, 160), (255, 0, 0), (128, 128, 128)]
ADOBE_COLOURS = [(200, 100, 50), (50, 150, 200), (80, 180, 80), (128, 128, 128), (0, 255, 0)]


def swatches(colours, mode: str = "RGB") -> Image.Image:
    """One BLOCK×BLOCK square per colour, in a row (big enough that JPEG/HEVC keep each centre)."""
    image = Image.new(mode, (BLOCK * len(colours), BLOCK))
    for i, value in enumerate(colours):
        image.paste(value, (i * BLOCK, 0, (i + 1) * BLOCK, BLOCK))
    return image


def centres(image: Image.Image, count: int) -> list[tuple[int, ...]]:
    return [image.getpixel((i * BLOCK + BLOCK // 2, BLOCK // 2)) for i in range(count)]


def within(got, expected, levels: int) -> bool:
    return all(abs(a - b) <= levels for g, e in zip(got, expected) for a, b in zip(g, e))


def test_the_test_profiles_are_icc_profiles_littlecms_accepts():
    for data, space, name in [(profiles.display_p3(), "RGB ", "Display P3"), (profiles.adobe_rgb(), "RGB ", "Adobe RGB"),
                              (profiles.grey_gamma(1.0), "GRAY", "Grey"), (profiles.cmyk_corners(lambda *_: (50, 0, 0)), "CMYK", "CMYK")]:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(data))
        assert profile.profile.xcolor_space == space and name in ImageCms.getProfileDescription(profile)
        assert profile.profile.version == 4.3 and len(data) == int.from_bytes(data[:4], "big")


@pytest.mark.parametrize("fmt,levels", [("PNG", 2), ("TIFF", 2), ("WEBP", 2), ("JPEG", 6), ("HEIF", 8), ("AVIF", 8)])
def test_a_display_p3_photo_reads_in_srgb(fmt, levels):
    """An iPhone's photo: P3 values read as sRGB would be duller (200,100,50 is 215,93,31 in sRGB)."""
    save = {"lossless": True} if fmt == "WEBP" else {"quality": 100} if fmt in ("JPEG", "HEIF", "AVIF") else {}
    data = encoded(swatches(P3_COLOURS), fmt, icc_profile=profiles.display_p3(), **save)
    image = read_still(data, CAP)
    got = centres(image, len(P3_COLOURS))
    assert within(got, [profiles.p3_to_srgb8(c) for c in P3_COLOURS], levels)
    assert "icc_profile" not in image.info  # saved again, its sRGB values would not be read as P3
    if fmt in ("PNG", "TIFF", "WEBP"):
        assert got[4] == (255, 0, 0)  # P3's red is beyond sRGB: clipped to sRGB's own
    assert not within(got[:4], P3_COLOURS[:4], levels)  # the profile changed the reading


def test_an_adobe_rgb_photo_reads_in_srgb_mid_grey_included():
    data = encoded(swatches(ADOBE_COLOURS), "PNG", icc_profile=profiles.adobe_rgb())
    got = centres(read_still(data, CAP), len(ADOBE_COLOURS))
    expected = [profiles.adobe_to_srgb8(c) for c in ADOBE_COLOURS]
    assert within(got, expected, 2) and expected[3] == (129, 129, 129)  # gamma 2.2 grey is sRGB's 129
    assert expected[0] == (227, 100, 42)  # computed here from Adobe's primaries, for the reader


def test_a_grey_scan_with_a_linear_profile_reads_lighter():
    """Grey gamma 1.0 (a scanner's linear grey): 128 is half the light, sRGB's 188."""
    greys = [0, 64, 128, 255]
    expected = [int(np.round(profiles.srgb_encode(np.array(g / 255)) * 255)) for g in greys]
    for image in (swatches(greys, "L"), swatches([(g, 255) for g in greys], "LA")):
        got = centres(read_still(encoded(image, "PNG", icc_profile=profiles.grey_gamma(1.0)), CAP), len(greys))
        assert within(got, [(e, e, e) for e in expected], 2) and expected[2] == 188


def test_a_16_bit_grey_and_a_palette_picture_are_read_by_their_profiles_too():
    ramp = (np.array([[0, 128, 255]]).repeat(BLOCK, 1).repeat(BLOCK, 0) * 257).astype(np.uint16)
    grey = read_still(encoded(Image.fromarray(ramp), "PNG", icc_profile=profiles.grey_gamma(1.0)), CAP)
    assert within(centres(grey, 3), [(0, 0, 0), (188, 188, 188), (255, 255, 255)], 2)
    palette = swatches(P3_COLOURS).quantize(len(P3_COLOURS))
    assert palette.mode == "P"
    got = centres(read_still(encoded(palette, "PNG", icc_profile=profiles.display_p3()), CAP), len(P3_COLOURS))
    assert within(got, [profiles.p3_to_srgb8(c) for c in P3_COLOURS], 2)


def test_alpha_is_kept_through_the_profile_then_flattened_on_white():
    colours = [(200, 100, 50, 255), (200, 100, 50, 0), (200, 100, 50, 128)]
    got = centres(read_still(encoded(swatches(colours, "RGBA"), "PNG", icc_profile=profiles.display_p3()), CAP), 3)
    srgb = np.array(profiles.p3_to_srgb8(colours[0][:3]))
    assert within(got, [tuple(srgb), (255, 255, 255), tuple(np.round(srgb * 128 / 255 + 255 * 127 / 255))], 2)


def print_lab(c, m, y, k):
    """A print profile's ink corners in D50 Lab, media-relative as ICC v4 tables are (the paper
    is L 100): its red (M+Y), black (K) and the mixes between."""
    return (100 * (1 - k) * (1 - 0.25 * c) * (1 - 0.3 * m) * (1 - 0.1 * y), 55 * m - 35 * c, 50 * y + 30 * m - 45 * c)


@pytest.mark.parametrize("fmt,levels", [("TIFF", 2), ("JPEG", 4)])
def test_a_cmyk_print_file_reads_by_its_profile(fmt, levels):
    """Not Pillow's formula (which makes M+Y pure red): the colour the profile says the inks print."""
    inks = [(0, 255, 255, 0), (0, 0, 0, 0), (0, 0, 0, 255), (255, 0, 0, 0), (0, 255, 0, 0)]
    data = encoded(swatches(inks, "CMYK"), fmt, icc_profile=profiles.cmyk_corners(print_lab), quality=100)
    got = centres(read_still(data, CAP), len(inks))
    expected = [profiles.lab_to_srgb8(print_lab(*(v / 255 for v in ink))) for ink in inks]
    assert within(got, expected, levels) and not within(got[:1], [(255, 0, 0)], 20)
    assert expected[1:3] == [(255, 255, 255), (0, 0, 0)]


def test_an_adobe_cmyk_jpeg_without_profile_reads_the_right_way_round():
    """Photoshop stores a CMYK JPEG's inks inverted and says so (its APP14 "Adobe" marker);
    read the other way round, white would be black."""
    inks = [(0, 255, 255, 0), (0, 0, 0, 0), (0, 0, 0, 255), (255, 255, 0, 0)]
    data = encoded(swatches(inks, "CMYK"), "JPEG", quality=100)
    assert b"\xff\xee\x00\x0eAdobe" in data[:200]
    got = centres(read_still(data, CAP), len(inks))
    assert within(got, [(255, 0, 0), (255, 255, 255), (0, 0, 0), (0, 0, 255)], 4)


def tags_beyond_the_end(profile: bytes) -> bytes:
    """Each tag's offset moved past the end of the profile."""
    table = bytearray(profile)
    for entry in range(132, 132 + 12 * int.from_bytes(profile[128:132], "big"), 12):
        table[entry + 4:entry + 8] = (len(profile) + 4096).to_bytes(4, "big")
    return bytes(table)


def garbage_profiles() -> list[tuple[str, bytes]]:
    valid = profiles.display_p3()
    return [("random bytes", np.random.default_rng(3).bytes(600)), ("cut short", valid[:300]),
            ("not acsp", valid.replace(b"acsp", b"acsq", 1)), ("tags beyond the end", tags_beyond_the_end(valid)),
            ("rgb without colorants or curves", icc_profile(b"mntr", b"RGB ", b"XYZ ", {b"desc": text_tag("bare")})),
            ("grey profile on colour", profiles.grey_gamma(2.2)), ("cmyk profile on rgb", profiles.cmyk_corners(print_lab))]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "TIFF"])
@pytest.mark.parametrize("name,profile", garbage_profiles(), ids=[n for n, _ in garbage_profiles()])
def test_a_profile_that_cannot_be_used_leaves_the_picture_read_as_before(fmt, name, profile):
    plain = read_still(encoded(swatches(P3_COLOURS), fmt, quality=95), CAP)
    tagged = read_still(encoded(swatches(P3_COLOURS), fmt, icc_profile=profile, quality=95), CAP)
    assert tagged.tobytes() == plain.tobytes()


def test_an_rgb_profile_on_a_cmyk_picture_is_ignored_and_pillow_s_formula_used():
    inks = [(0, 255, 255, 0), (0, 0, 0, 0), (0, 0, 0, 255)]
    data = encoded(swatches(inks, "CMYK"), "TIFF", icc_profile=profiles.display_p3())
    assert centres(read_still(data, CAP), 3) == [(255, 0, 0), (255, 255, 255), (0, 0, 0)]


def test_a_profile_over_the_size_bound_is_not_parsed(monkeypatch):
    data = encoded(swatches(P3_COLOURS), "PNG", icc_profile=profiles.display_p3())
    monkeypatch.setattr(colour, "MAX_PROFILE_BYTES", len(profiles.display_p3()) - 1)
    assert centres(read_still(data, CAP), len(P3_COLOURS)) == P3_COLOURS


def quadrants() -> Image.Image:
    """Four colours in four quadrants: any turn or mirror can be told from the result."""
    image = Image.new("RGB", (4 * BLOCK, 2 * BLOCK))
    for i, value in enumerate(P3_COLOURS[:4]):
        image.paste(value, ((i % 2) * 2 * BLOCK, (i // 2) * BLOCK, (i % 2 + 1) * 2 * BLOCK, (i // 2 + 1) * BLOCK))
    return image


def quadrant_colours(image: Image.Image) -> list[tuple[int, ...]]:
    width, height = image.size
    return [image.getpixel((x * width // 4, y * height // 4)) for y in (1, 3) for x in (1, 3)]


@pytest.mark.parametrize("fmt", ["JPEG", "HEIF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_phone_photo_is_upright_once_and_in_srgb(fmt, orientation):
    """A JPEG's EXIF tag; an iPhone's HEIC with its `irot`/`imir` (which the HEIF opener applies,
    clearing the EXIF tag) and a P3 profile: turned and mirrored once, as Pillow turns a PNG
    with the same tag, and converted to sRGB."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = encoded(quadrants(), fmt, icc_profile=profiles.display_p3(), exif=exif.tobytes(), quality=100)
    reference = read_still(encoded(quadrants(), "PNG", exif=exif.tobytes()), CAP)
    image = read_still(photo, CAP)
    assert image.size == reference.size == ((2 * BLOCK, 4 * BLOCK) if orientation > 4 else (4 * BLOCK, 2 * BLOCK))
    assert within(quadrant_colours(image), [profiles.p3_to_srgb8(c) for c in quadrant_colours(reference)], 8)


def test_an_srgb_profile_keeps_the_colours():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encoded(swatches(P3_COLOURS), "PNG", icc_profile=srgb)
    assert within(centres(read_still(data, CAP), len(P3_COLOURS)), P3_COLOURS, 1)


def test_one_transform_per_profile_is_kept():
    colour._transforms.clear()
    for _ in range(3):
        read_still(encoded(swatches(P3_COLOURS), "PNG", icc_profile=profiles.display_p3()), CAP)
    assert len(colour._transforms) == 1
    for gamma in np.linspace(1.0, 2.6, colour.CACHED_TRANSFORMS + 3):
        read_still(encoded(swatches([10, 200], "L"), "PNG", icc_profile=profiles.grey_gamma(gamma)), CAP)
    assert len(colour._transforms) == colour.CACHED_TRANSFORMS


class Upload:
    """What the bot reads of a discord.Attachment (Discord gives no size for a HEIC)."""

    def __init__(self, filename: str, data: bytes, content_type: str):
        self.filename, self.data, self.content_type = filename, data, content_type
        self.size, self.width, self.height = len(data), None, None

    async def read(self) -> bytes:
        return self.data


@pytest.mark.parametrize("name,profile,content_type", [
    ("IMG_0001.HEIC", profiles.display_p3(), "image/heic"), ("export.jpg", profiles.adobe_rgb(), "image/jpeg"),
    ("odd.png", b"not a profile at all" * 20, "image/png")], ids=["p3-heic", "adobe-jpeg", "garbage-png"])
def test_the_upload_check_and_the_engine_s_init_image_agree(name, profile, content_type, tmp_path):
    """The bot stores the upload as sent (a bad profile is no reason to refuse it); the engine's
    init-image reader converts it by its profile, as the bot's check read it."""
    fmt = {"image/heic": "HEIF", "image/jpeg": "JPEG", "image/png": "PNG"}[content_type]
    data = encoded(swatches(P3_COLOURS), fmt, icc_profile=profile, quality=100)

    async def saved(db):
        ref = await save_image(db, Upload(name, data, content_type), "init_image")
        return await db.blobs.save_to(ref, tmp_path / name_of(ref))
    local = in_db(tmp_path, saved)
    assert local.read_bytes() == data
    engine = load_image(str(local), "init_image")
    assert engine.tobytes() == read_still(data, CAP).tobytes()
    to_srgb = {"HEIF": profiles.p3_to_srgb8, "JPEG": profiles.adobe_to_srgb8, "PNG": tuple}[fmt]
    assert within(centres(engine, len(P3_COLOURS)), [to_srgb(c) for c in P3_COLOURS], 8)


def heic_described_by(primaries: int, transfer: int, colours) -> bytes:
    """A HEIC with no profile, its colours described by nclx code points (H.273) instead."""
    return encoded(swatches(colours), "HEIF", color_primaries=primaries, transfer_characteristics=transfer,
                   matrix_coefficients=6, quality=100)


@pytest.mark.parametrize("code,primaries", [(12, profiles.P3_PRIMARIES), (9, profiles.BT2020_PRIMARIES)],
                         ids=["display-p3", "bt2020-sdr"])
def test_a_heic_described_by_nclx_as_a_wider_gamut_reads_in_srgb(code, primaries):
    data = heic_described_by(code, 13, P3_COLOURS)
    assert "icc_profile" not in Image.open(io.BytesIO(data)).info
    got = centres(read_still(data, CAP), len(P3_COLOURS))
    assert within(got, [profiles.p3_to_srgb8(c, primaries) for c in P3_COLOURS], 8)


@pytest.mark.parametrize("primaries,transfer", [(1, 13), (2, 2), (9, 16), (9, 18), (12, 8)],
                         ids=["srgb", "unspecified", "bt2020-pq", "bt2020-hlg", "p3-linear"])
def test_a_heic_described_as_srgb_or_hdr_reads_as_before(primaries, transfer):
    """sRGB needs nothing; an HDR (or any other) curve has no sRGB reading without tone mapping."""
    default = read_still(encoded(swatches(P3_COLOURS), "HEIF", quality=100), CAP)  # nclx sRGB
    assert read_still(heic_described_by(primaries, transfer, P3_COLOURS), CAP).tobytes() == default.tobytes()


def test_nclx_without_a_usable_gamut_gives_no_profile():
    p3 = {"color_primaries": 12, "transfer_characteristics": 13, "color_primary_white_x": 0.3127,
          "color_primary_white_y": 0.329, **{f"color_primary_{c}_{a}": v for c, xy in
                                             zip(("red", "green", "blue"), profiles.P3_PRIMARIES) for a, v in zip("xy", xy)}}
    assert ImageCms.ImageCmsProfile(io.BytesIO(colour.nclx_profile(p3))).profile.xcolor_space == "RGB "
    for broken in ({"color_primaries": 12, "transfer_characteristics": 13}, {**p3, "color_primary_red_y": 0.0},
                   {**p3, "color_primary_green_x": 0.68, "color_primary_green_y": 0.32}, None):
        assert colour.nclx_profile(broken) is None
