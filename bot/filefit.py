"""Making a result image fit a guild's upload limit instead of dropping it.

Discord refuses a message whose files exceed the guild's limit (10 MiB without boosts), and a
large DD render saved as PNG can pass it. The PNG on disk stays the original; what is posted is
re-encoded: first as high-quality JPEG at falling quality, then also scaled down, until it fits.
The note returned says what was changed, for the result message.
"""
from __future__ import annotations

import io

from PIL import Image

QUALITIES = (95, 90, 85, 75, 65)
MIN_SIDE = 256


def fit_image(data: bytes, filename: str, limit: int) -> tuple[bytes, str, str | None]:
    """(bytes, filename, note): the image unchanged when it fits, else a JPEG that does.

    Raises ValueError when even a small JPEG does not fit (a limit far below any real one).
    """
    if len(data) <= limit:
        return data, filename, None
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGB")
    stem = filename.rsplit(".", 1)[0]
    scale = 1.0
    while True:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image if scale == 1.0 else image.resize(size, Image.LANCZOS)
        for quality in QUALITIES:
            buffer = io.BytesIO()
            resized.save(buffer, format="JPEG", quality=quality, optimize=True)
            if buffer.tell() <= limit:
                how = f"JPEG quality {quality}" + ("" if scale == 1.0 else f" at {size[0]}×{size[1]}")
                note = (f"{filename} is {len(data) / 2**20:.1f} MiB, over this server's "
                        f"{limit / 2**20:g} MiB upload limit: posted as {how} (the PNG is kept)")
                return buffer.getvalue(), f"{stem}.jpg", note
        if min(size) <= MIN_SIDE:
            raise ValueError(f"{filename} does not fit in {limit} bytes even as a small JPEG")
        scale *= 0.75
