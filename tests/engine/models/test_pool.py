"""Model classes and loading: the secondary model's checkpoint layout, seeded random models,
weights loaded through the cache, precision choices, and clear errors for missing files."""
from __future__ import annotations

import json
import logging
import time

import pytest
import torch

from engine.errors import ModelError
from engine.models import pool
from engine.models.download import load_weights
from engine.models.pool import ModelPool, build_clip, cpu_has_fast_bf16, resolve_precision
from engine.models.secondary import SecondaryDiffusionImageNet2, ddpm_to_v_time
from tests.support import REPO_ROOT

KEYS = REPO_ROOT.parent / "shared" / "data" / "secondary_model_keys.json"


@pytest.mark.skipif(not KEYS.exists(), reason="shared/data is not beside this checkout")
def test_secondary_model_matches_the_published_checkpoint_layout():
    reference = json.loads(KEYS.read_text())
    state = SecondaryDiffusionImageNet2().state_dict()
    assert list(state) == list(reference["tensors"])  # same names, same order
    assert {k: list(v.shape) for k, v in state.items()} == reference["tensors"]
    assert sum(v.numel() for v in state.values()) == reference["num_params"]


def test_secondary_weights_round_trip_through_the_safe_loader(tmp_path):
    model = SecondaryDiffusionImageNet2()
    torch.save(model.state_dict(), tmp_path / "secondary.pth")
    fresh = SecondaryDiffusionImageNet2()
    fresh.load_state_dict(load_weights(tmp_path / "secondary.pth"), strict=True)
    x, t = torch.randn(1, 3, 64, 64), torch.tensor([0.3])
    assert torch.equal(model(x, t).pred, fresh(x, t).pred)


def test_secondary_outputs_follow_v_parameterisation():
    model = SecondaryDiffusionImageNet2()
    x, t = torch.randn(2, 3, 32, 32), torch.tensor([0.0, 1.0])
    out = model(x, t)
    assert torch.allclose(out.pred[0], x[0], atol=1e-6)  # t=0: nothing to denoise
    assert torch.allclose(out.eps[1], x[1], atol=1e-5)   # t=1: all noise
    assert ddpm_to_v_time(torch.tensor([1.0])).item() == pytest.approx(0.0)
    assert ddpm_to_v_time(torch.tensor([0.0])).item() == pytest.approx(1.0)


def test_tiny_pool_is_seeded_and_resident():
    a, b = ModelPool("test-tiny"), ModelPool("test-tiny")
    assert a.clip("ViT-B-32::openai") is a.clip("ViT-B-32::openai")
    wa = next(a.clip("RN50::openai").model.parameters())
    wb = next(b.clip("RN50::openai").model.parameters())
    assert torch.equal(wa, wb)
    other = next(a.clip("ViT-B-32::openai").model.parameters())
    assert not torch.equal(wa, other)  # each named CLIP is its own tiny model


def test_dd_default_missing_file_fails_fast_with_the_fix():
    pool = ModelPool("dd-default")
    started = time.perf_counter()
    with pytest.raises(ModelError) as err:
        pool.secondary()
    assert time.perf_counter() - started < 2
    assert "disco models download" in str(err.value)


def test_dd_default_clip_loads_from_a_local_file(tmp_path):
    clip = build_clip("TinyCLIP-test::none", weights=None, device=torch.device("cpu"))
    torch.save(clip.model.state_dict(), tmp_path / "tiny.pt")
    again = build_clip("TinyCLIP-test::none", weights=tmp_path / "tiny.pt", device=torch.device("cpu"))
    for p, q in zip(clip.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("name", ["tpu", "mps", "meta", "cuda:x", "cpu:0", ""])
def test_an_unknown_device_name_is_refused_with_the_choices(name):
    with pytest.raises(ModelError, match="use auto, cpu, cuda or cuda:N"):
        pool.resolve_device(name)


def test_a_cuda_index_past_the_last_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert pool.resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ModelError, match="2 CUDA device.*cuda:0 to cuda:1"):
        pool.resolve_device("cuda:2")


def test_precision_choices():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == "fp32" and resolve_precision("auto", cuda) == "fp16"
    assert resolve_precision("bf16", cpu) == "bf16"
    with pytest.raises(ModelError, match="CUDA"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ModelError, match="choose one of"):
        resolve_precision("fp8", cpu)


def test_bf16_on_a_cpu_without_native_bf16_warns_and_names_fp32(monkeypatch, caplog):
    cpu = torch.device("cpu")
    monkeypatch.setattr(pool, "cpu_has_fast_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="disco.engine.models"):
        assert resolve_precision("bf16", cpu) == "bf16"  # the admin's choice stands, with the reason
    assert "emulated" in caplog.text and "use precision fp32" in caplog.text
    caplog.clear()
    monkeypatch.setattr(pool, "cpu_has_fast_bf16", lambda: True)
    with caplog.at_level(logging.WARNING, logger="disco.engine.models"):
        resolve_precision("bf16", cpu)
        resolve_precision("fp32", cpu)
    assert not caplog.text
    assert isinstance(cpu_has_fast_bf16(), bool)


def test_bf16_render_stays_close_to_fp32(tmp_path):
    from engine.diffusion.pipeline import DiscoPipeline
    from engine.errors import Cancelled
    from tests.support.engine import fast_spec

    spec = fast_spec(steps=2, clip_guidance_scale=0, range_scale=0)  # only step 1 is compared
    images = {}
    for precision in ("fp32", "bf16"):
        pool = ModelPool("test-tiny", precision=precision)
        steps = []
        with pytest.raises(Cancelled):  # once step 1 is in: step 2 (bf16 is slow on most CPUs) is not needed
            DiscoPipeline(pool)(spec, out_dir=tmp_path / precision, should_cancel=lambda: bool(steps),
                                callback=lambda ctx, info: steps.append(info.pred_xstart))
        images[precision] = steps[0]
    diff = (images["bf16"] - images["fp32"]).norm() / images["fp32"].norm()
    assert 0 < diff < 0.1


@pytest.mark.slow
def test_random_full_architectures_render_a_step(tmp_path):
    """The real DD 512 UNet, secondary model and ViT-B-32 (random weights) at 64×64, 2 steps."""
    from engine.diffusion.pipeline import DiscoPipeline
    from engine.spec.render import RenderSpec

    spec = RenderSpec.from_dict(dict(text_prompts="a lighthouse", width=64, height=64, steps=2,
                                     skip_steps=0, n_batches=1, cutn_batches=1, seed=0,
                                     clip_models=["ViT-B-32::openai"]))
    pool = ModelPool("random-full")
    result = DiscoPipeline(pool)(spec, out_dir=tmp_path)[0]
    assert result.path.exists()
    unet, _ = pool.unet(spec.diffusion_model, spec.use_checkpoint)
    assert sum(p.numel() for p in unet.parameters()) == 557_973_638


def test_a_unet_built_from_weights_equals_one_loaded_the_usual_way():
    """With weights, the UNet is built on the meta device and given the file's tensors (no
    random init to throw away): the same parameters, buffers and output as build-then-load."""
    from engine.models.pool import TINY_UNET_CONFIG, build_unet

    state = build_unet(TINY_UNET_CONFIG, use_fp16=False, use_checkpoint=False, seed=5).state_dict()
    usual = build_unet(TINY_UNET_CONFIG, use_fp16=False, use_checkpoint=False, seed=6)
    usual.load_state_dict(state)
    direct = build_unet(TINY_UNET_CONFIG, use_fp16=False, use_checkpoint=False, seed=6, weights=state)
    tensors = list(direct.parameters()) + list(direct.buffers())
    assert all(t.device.type == "cpu" and t.dtype == torch.float32 for t in tensors)
    assert all(p.requires_grad for p in direct.parameters())  # as built: _prepare_unet decides
    x, t = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.tensor([10])
    with torch.no_grad():
        assert torch.equal(direct.eval()(x, t), usual.eval()(x, t))
    with pytest.raises(RuntimeError, match="Missing key"):
        build_unet(TINY_UNET_CONFIG, use_fp16=False, use_checkpoint=False, seed=6,
                   weights={k: v for k, v in state.items() if not k.startswith("out.")})


def test_building_lpips_shows_no_torchvision_deprecation_warning():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ModelPool("test-tiny").lpips()
    assert not [w for w in caught if "torchvision" in w.filename], [str(w.message) for w in caught]
