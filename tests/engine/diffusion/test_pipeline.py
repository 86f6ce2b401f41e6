"""The whole still-image pipeline on the tiny models: determinism, guidance, resume, outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.diffusion.pipeline import DiscoPipeline, Resume
from engine.errors import Cancelled, SpecError
from engine.media.files import read_png_text
from engine.spec.render import RenderSpec
from tests.support.engine import clip_loss, fast_spec, tiny_pool


def render(spec, out_dir, **kwargs):
    return DiscoPipeline(tiny_pool())(spec, out_dir=out_dir, **kwargs)


def as_tensor(path) -> torch.Tensor:
    array = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 127.5 - 1
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def test_same_seed_same_png_bytes_other_seed_differs(tmp_path):
    a = render(fast_spec(), tmp_path / "a")[0].path.read_bytes()
    b = render(fast_spec(), tmp_path / "b")[0].path.read_bytes()
    c = render(fast_spec(seed=12), tmp_path / "c")[0].path.read_bytes()
    assert a == b
    assert a != c


def test_guidance_lowers_the_clip_loss(tmp_path):
    prompt = "a lighthouse in a storm"
    losses = {}
    for name, scale in (("guided", 20000), ("unguided", 0)):
        spec = fast_spec(text_prompts=prompt, clip_guidance_scale=scale, range_scale=0, steps=20,
                         clamp_max=0.2, seed=5)
        losses[name] = clip_loss(as_tensor(render(spec, tmp_path / name)[0].path), prompt)
    assert losses["guided"] < losses["unguided"] - 0.01, losses


@pytest.mark.parametrize("mode", ["ddim", "plms"])
def test_resume_from_checkpoint_equals_uninterrupted(tmp_path, mode):
    spec = fast_spec(sampling_mode=mode, n_batches=2, steps=10)
    full = render(spec, tmp_path / "full")
    saved = {}

    def stop_after_step_6_of_image_1(context, info):
        if context.index == 1 and info.step == 6:
            saved["payload"] = info.snapshot().to_payload()
            raise Cancelled("simulated crash")

    with pytest.raises(Cancelled):
        render(spec, tmp_path / "resumed", callback=stop_after_step_6_of_image_1, run=0)
    path = tmp_path / "ckpt.pt"
    torch.save(saved["payload"], path)
    from engine.diffusion.sampling import SamplerState
    state = SamplerState.from_payload(torch.load(path, weights_only=True), tiny_pool().device)
    resumed = render(spec, tmp_path / "resumed", resume=Resume(index=1, state=state), run=0)
    assert [r.index for r in resumed] == [1]
    assert resumed[0].path.read_bytes() == full[1].path.read_bytes()


def test_each_batch_image_reproduces_alone(tmp_path):
    batch = render(fast_spec(n_batches=2, seed=40), tmp_path / "batch")
    alone = render(fast_spec(n_batches=1, seed=41), tmp_path / "alone")
    assert batch[1].seed == 41
    assert batch[1].path.read_bytes() != batch[0].path.read_bytes()
    assert as_tensor(batch[1].path).equal(as_tensor(alone[0].path))


def test_png_carries_settings_and_settings_file_is_written(tmp_path):
    result = render(fast_spec(batch_name="pier"), tmp_path)[0]
    assert result.path.name == "pier(0)_0.png"
    text = read_png_text(result.path)
    again = RenderSpec.from_json(text["disco_settings"])
    assert again.seed == 11 and again.n_batches == 1 and again.width == 64
    assert text["disco_model_set"] == "test-tiny" and "disco-discord" in text["disco_engine"]
    settings = json.loads((tmp_path / "pier(0)_settings.txt").read_text())
    assert settings["seed"] == 11 and settings["steps"] == 12
    assert "models_sha256" in settings and settings["engine"].startswith("disco-discord")
    assert render(fast_spec(batch_name="pier"), tmp_path)[0].path.name == "pier(1)_0.png"


def test_cancel_stops_within_one_step(tmp_path):
    steps_run = []

    def cancel_after_three():
        return len(steps_run) >= 3

    with pytest.raises(Cancelled):
        render(fast_spec(), tmp_path, callback=lambda ctx, info: steps_run.append(info.step),
               should_cancel=cancel_after_three)
    assert len(steps_run) == 3


def test_callback_reports_progress_losses_and_timing(tmp_path):
    infos = []
    render(fast_spec(steps=10, skip_steps=4), tmp_path, callback=lambda ctx, info: infos.append(info))
    assert [i.step for i in infos] == list(range(5, 11))
    assert all(i.total == 10 and i.seconds > 0 for i in infos)
    assert {"clip", "tv", "range", "sat"} <= set(infos[0].losses)
    assert infos[-1].pred_xstart.shape == (1, 3, 64, 64)


@pytest.mark.parametrize("changes", [
    dict(use_secondary_model=False),
    dict(perlin_init=True, perlin_mode="mixed", skip_steps=4),
    dict(use_horizontal_symmetry=True, use_vertical_symmetry=True, transformation_percent=[0.5]),
    dict(fuzzy_prompt=True, rand_mag=0.1),
    dict(tv_scale=100, sat_scale=100, skip_augs=True),
    dict(clip_models=["ViT-B-32::openai", "RN50::openai"], cutn_batches=2, width=128),
])
def test_options_render_finite_images(tmp_path, changes):
    result = render(fast_spec(steps=6, **changes), tmp_path)[0]
    image = as_tensor(result.path)
    assert image.shape[-1] == changes.get("width", 64) and torch.isfinite(image).all()


def test_symmetry_mirrors_x_once_at_the_given_fraction():
    from engine.diffusion.pipeline import symmetry_transform
    spec = fast_spec(steps=100, skip_steps=20, use_horizontal_symmetry=True, use_vertical_symmetry=True,
                     transformation_percent=[0.25])
    mirror = symmetry_transform(spec, 100)
    at = int(80 * (1 - 0.25))  # guided-diffusion's rule: an index of the remaining 80 steps
    x = torch.rand(1, 3, 64, 128)
    assert mirror(x, at + 1) is x and mirror(x, at - 1) is x
    y = mirror(x, at)
    assert torch.equal(y, y.flip(-1)) and torch.equal(y, y.flip(-2))
    assert torch.equal(y[..., :32, :64], x[..., :32, :64])
    assert symmetry_transform(spec.replace(sampling_mode="plms"), 100) is None  # DDIM only, as in DD


def test_init_image_with_lpips_and_image_prompt(tmp_path):
    source = Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8))
    source.save(tmp_path / "init.png")
    spec = fast_spec(steps=8, skip_steps=4, init_image=str(tmp_path / "init.png"), init_scale=1000,
                     image_prompts=[f"{tmp_path / 'init.png'}:1"])
    infos = []
    render(spec, tmp_path / "out", callback=lambda ctx, info: infos.append(info))
    assert "init" in infos[0].losses and torch.isfinite(infos[0].losses["init"])


def test_intermediate_saves_write_partials(tmp_path):
    render(fast_spec(steps=10, intermediate_saves=2), tmp_path)
    assert len(list((tmp_path / "partials").glob("*.png"))) == 0  # only the CLI callback saves them
    from engine.diffusion.progress import TqdmProgress
    render(fast_spec(steps=10, intermediate_saves=2), tmp_path, callback=TqdmProgress(disable=True))
    assert len(list((tmp_path / "partials").glob("*.png"))) == 2
    assert (tmp_path / "progress.png").exists()


@pytest.mark.parametrize("bad,param", [("missing.png", "init_image"), ("not_an_image.png", "init_image"),
                                       ("not_an_image.png", "image_prompts")])
def test_bad_input_image_is_a_spec_error_before_any_model_loads_or_file_is_written(tmp_path, bad, param):
    (tmp_path / "not_an_image.png").write_text("hello")
    image = {"init_image": str(tmp_path / bad)} if param == "init_image" else {
        "image_prompts": [f"{tmp_path / bad}:1"]}
    spec = fast_spec(skip_steps=4, **image)

    class NoModels(type(tiny_pool())):
        def unet(self, *args):
            raise AssertionError("a model was loaded before the input image was read")

    with pytest.raises(SpecError) as err:
        DiscoPipeline(NoModels("test-tiny"))(spec, out_dir=tmp_path / "out")
    assert param in str(err.value)
    assert not (tmp_path / "out").exists()  # no settings file of a run that never started


def test_missing_lpips_weights_say_what_init_scale_needs(tmp_path):
    from engine.errors import ModelError
    from engine.models.pool import ModelPool

    class NoVgg(ModelPool):
        def lpips(self):
            raise ModelError("lpips_vgg16 is missing; run: disco models download lpips_vgg16")

    Image.new("RGB", (64, 64), "gray").save(tmp_path / "init.png")
    spec = fast_spec(init_image=str(tmp_path / "init.png"), init_scale=1000, skip_steps=4)
    with pytest.raises(ModelError) as err:
        DiscoPipeline(NoVgg("test-tiny"))(spec, out_dir=tmp_path / "out")
    assert "init_scale" in str(err.value) and "disco models download" in str(err.value)
    result = DiscoPipeline(NoVgg("test-tiny"))(spec.replace(init_scale=0), out_dir=tmp_path / "ok")
    assert result[0].path.exists()
