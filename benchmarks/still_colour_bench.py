"""What reading a still by its colour profile costs: a 16 MP photo (4608×3456, an iPhone's 4:3)
read by `engine.media.stills.read_still` with and without its profile.

    .venv/bin/python benchmarks/still_colour_bench.py [--megapixels 16] [--repeats 3]

Cases: an RGB JPEG as is, with a Display P3 profile, a CMYK JPEG as is (Pillow's formula) and
with a CMYK profile (a lut16 table, as print profiles are), a HEIC as is and with P3. Prints one JSON object:
per case the median seconds of a read and the peak resident memory above the process's
before the read (Linux VmHWM, reset before each case), in MiB, and the file's size.
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.media.stills import read_still
from tests.engine.media import profiles


def photo(width: int, height: int) -> Image.Image:
    """Smooth gradients with a little noise: compresses like a photo, not like flat colour."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([x / width, y / height, 1 - x / width], axis=-1) * 230
    rgb += np.random.default_rng(0).normal(0, 6, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def encoded(image: Image.Image, fmt: str, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, quality=90, **save)
    return buffer.getvalue()


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(data: bytes, repeats: int) -> dict:
    read_still(data, 10**9)  # the transform is built and cached on the first read
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to the current resident size
    before = resident_mib()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        read_still(data, 10**9)
        times.append(time.perf_counter() - start)
    return {"seconds": round(statistics.median(times), 3), "peak_mib_above": round(peak_rss_mib() - before, 1),
            "file_mib": round(len(data) / 2**20, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    width = round((args.megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    picture = photo(width, height)
    cmyk = picture.convert("CMYK")
    print_profile = profiles.cmyk_corners(lambda c, m, y, k: (100 * (1 - k) * (1 - 0.3 * c) * (1 - 0.3 * m),
                                                         55 * m - 35 * c, 50 * y - 45 * c))
    cases = {"rgb_jpeg": encoded(picture, "JPEG"),
             "p3_jpeg": encoded(picture, "JPEG", icc_profile=profiles.display_p3()),
             "cmyk_jpeg": encoded(cmyk, "JPEG"),
             "cmyk_jpeg_profile": encoded(cmyk, "JPEG", icc_profile=print_profile),
             "heic": encoded(picture, "HEIF"),
             "p3_heic": encoded(picture, "HEIF", icc_profile=profiles.display_p3())}
    del picture, cmyk
    result = {"size": f"{width}x{height}", "repeats": args.repeats}
    result.update({name: measure(data, args.repeats) for name, data in cases.items()})
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
