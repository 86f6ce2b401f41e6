"""Result images over the upload limit are re-encoded to fit, never dropped."""
import io

import numpy as np
import pytest
from PIL import Image

from bot.filefit import fit_image


def noisy_png(side: int) -> bytes:
    pixels = (np.random.default_rng(0).random((side, side, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_small_files_pass_unchanged():
    data = noisy_png(32)
    assert fit_image(data, "a.png", len(data)) == (data, "a.png", None)


@pytest.mark.parametrize("fraction", [0.5, 0.1])
def test_large_files_become_a_jpeg_under_the_limit(fraction):
    data = noisy_png(512)
    limit = int(len(data) * fraction)
    out, name, note = fit_image(data, "render.png", limit)
    assert len(out) <= limit and name == "render.jpg"
    assert "upload limit" in note and "PNG is kept" in note
    with Image.open(io.BytesIO(out)) as image:
        assert image.format == "JPEG"


def test_impossible_limits_raise():
    with pytest.raises(ValueError):
        fit_image(noisy_png(512), "x.png", 100)


def test_poster_posts_an_oversized_result_as_a_fitting_jpeg(tmp_path):
    from types import SimpleNamespace

    from bot.poster import Poster

    big = tmp_path / "TimeToDisco(0)_0.png"
    big.write_bytes(noisy_png(512))
    limit = big.stat().st_size // 3
    job = SimpleNamespace(artifacts=(str(big),), guild_id="1", id="J1", spec_json='{"steps": 10}')
    files, notes = Poster._result_files(job, limit)
    assert [f.filename for f in files] == ["TimeToDisco(0)_0.jpg", "J1_settings.json"]
    assert "upload limit" in notes[0]


def test_poster_posts_an_evolution_video_beside_the_image_when_it_fits(tmp_path):
    from types import SimpleNamespace

    from bot.poster import Poster

    image = tmp_path / "TimeToDisco(0)_0.png"
    image.write_bytes(noisy_png(64))
    video = tmp_path / "TimeToDisco(0)_0_evolution.mp4"
    video.write_bytes(b"\0" * 20_000)  # the poster sends it as it is: the bytes are not read as video
    job = SimpleNamespace(artifacts=(str(image), str(video)), guild_id="1", id="J1",
                          spec_json='{"intermediate_saves": 3}')
    for limit, posted in ((1_000_000, True), (15_000, False)):
        files, notes = Poster._result_files(job, limit)
        assert (video.name in [f.filename for f in files]) is posted
        assert posted or notes[-1] == f"{video.name} is over this server's upload limit; it stays on the server"
