"""The model registry: lookups, suggestions, DD's configs and cut groups, CLIP addresses, model sets."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from engine.errors import ModelError
from engine.models import registry
from engine.models.registry import (
    CLIP_MODEL_NAMES,
    CUT_SCHEDULE_GROUPS,
    DIFFUSION_MODEL_NAMES,
    MODEL_SETS,
    ModelFile,
    all_models,
    clip_entry,
    cut_schedules,
    diffusion_config,
    get_model,
    model_set_members,
    register_model,
)
from tests.support import REPO_ROOT

SHA256 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCO_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_importing_the_registry_stays_torch_free() -> None:
    probe = "import sys, engine.models.registry; print('torch' in sys.modules, 'open_clip' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_dd_models_are_all_registered_with_full_checksums() -> None:
    assert DIFFUSION_MODEL_NAMES == (
        "512x512_diffusion_uncond_finetune_008100", "256x256_diffusion_uncond", "portrait_generator_v001",
        "pixelartdiffusion_expanded", "pixel_art_diffusion_hard_256", "pixel_art_diffusion_soft_256",
        "pixelartdiffusion4k", "watercolordiffusion_2", "watercolordiffusion", "PulpSciFiDiffusion",
        # community fine-tunes, as discoart's models.yml publishes them
        "256x256_openai_comics_faces_v2.by_alex_spirin_114k", "portrait_generator_v1.5",
        "FeiArt_Handpainted_CG_Diffusion", "Ukiyo-e_Diffusion_All_V1.by_thegenerativegeneration",
        "IsometricDiffusionRevrart512px")
    static = all_models(include_clip=False)
    assert {m.kind for m in static} == {"diffusion", "secondary", "lpips", "depth", "flow"}
    for model in static:
        # torchvision publishes only an 8-digit prefix for RAFT: recorded on first download
        if model.kind != "flow":
            assert model.sha256 is not None and SHA256.match(model.sha256), model.name
        assert model.urls and all(url.startswith("https://") for url in model.urls), model.name
        assert model.filename and "/" not in model.filename
    assert get_model("512x512_diffusion_uncond_finetune_008100").sha256.startswith("9c111ab8")
    assert get_model("256x256_diffusion_uncond").sha256.startswith("a37c32ff")
    secondary = get_model("secondary_model_imagenet_2")
    assert secondary.sha256.startswith("983e3de6") and secondary.sha256.endswith("4613a")
    # File names that embed a hash prefix agree with the recorded hash.
    assert get_model("lpips_vgg16").sha256.startswith("397923af")
    assert get_model("midas_dpt_large").sha256.startswith("2f21e586")


def test_unknown_names_suggest_close_ones() -> None:
    with pytest.raises(ModelError) as caught:
        get_model("512x512_diffusion_uncond")
    assert "512x512_diffusion_uncond_finetune_008100" in str(caught.value)
    assert "disco models list" in str(caught.value)
    with pytest.raises(ModelError, match="Did you mean: watercolordiffusion"):
        get_model("watercolourdiffusion")
    with pytest.raises(ModelError, match="Did you mean: ViT-B-32::openai"):
        get_model("ViT-B-32::opneai")
    with pytest.raises(ModelError, match="ARCH::TAG"):
        clip_entry("ViT-B-32")
    with pytest.raises(ModelError, match="Did you mean: dd-default"):
        model_set_members("dd_default")


def test_every_diffusion_config_builds_the_expected_unet() -> None:
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # guided_diffusion's torch.cuda.amp decorators
        from guided_diffusion.script_util import create_model_and_diffusion, model_and_diffusion_defaults
    expected_params = {  # 512 and 256 counts match the published checkpoints' sizes
        "512x512_diffusion_uncond_finetune_008100": 557_973_638,
        "256x256_diffusion_uncond": 552_814_086,
    }
    for name in DIFFUSION_MODEL_NAMES:
        overrides = diffusion_config(name)
        defaults = model_and_diffusion_defaults()
        assert set(overrides) <= set(defaults), name
        assert not {"use_fp16", "use_checkpoint", "timestep_respacing"} & set(overrides)
        with torch.device("meta"):  # shapes only: no memory, no time
            unet, _ = create_model_and_diffusion(**{**defaults, **overrides, "timestep_respacing": "ddim50"})
        params = sum(p.numel() for p in unet.parameters())
        assert params == expected_params.get(name, params), name
        assert unet.image_size == get_model(name).config["image_size"]
    overrides = diffusion_config("PulpSciFiDiffusion")
    overrides["image_size"] = 1
    assert diffusion_config("PulpSciFiDiffusion")["image_size"] == 256  # callers get a copy
    with pytest.raises(ModelError, match="not a diffusion model"):
        diffusion_config("secondary_model_imagenet_2")


def test_cut_schedule_groups_follow_dd() -> None:
    assert set(CUT_SCHEDULE_GROUPS) == {"default", "pad_or_pulp", "watercolor"}
    groups = {name: get_model(name).cut_group for name in DIFFUSION_MODEL_NAMES}
    assert [n for n, g in groups.items() if g == "pad_or_pulp"] == [
        "pixelartdiffusion_expanded", "pixel_art_diffusion_hard_256", "pixel_art_diffusion_soft_256",
        "pixelartdiffusion4k", "PulpSciFiDiffusion"]
    assert [n for n, g in groups.items() if g == "watercolor"] == ["watercolordiffusion_2", "watercolordiffusion"]
    assert cut_schedules("512x512_diffusion_uncond_finetune_008100")["cut_overview"] == "[12]*400+[4]*600"
    for group in CUT_SCHEDULE_GROUPS.values():
        assert set(group) == {"cut_overview", "cut_innercut", "cut_ic_pow", "cut_icgray_p"}
        for schedule in group.values():  # each is 1000 entries long: sum of the "*N" counts
            assert sum(int(n) for n in re.findall(r"\*(\d+)", schedule)) == 1000, schedule
    assert get_model("256x256_diffusion_uncond").default_size == (512, 448)
    assert get_model("512x512_diffusion_uncond_finetune_008100").default_size == (1280, 768)


def test_model_sets() -> None:
    assert set(MODEL_SETS) == {"dd-default", "random-full", "test-tiny"}
    assert "noise" in MODEL_SETS["test-tiny"] and "noise" in MODEL_SETS["random-full"]
    assert model_set_members("dd-default") == (
        "512x512_diffusion_uncond_finetune_008100", "secondary_model_imagenet_2",
        "ViT-B-32::openai", "ViT-B-16::openai", "RN50::openai", "lpips_vgg16")
    assert model_set_members("dd-default", diffusion_model="watercolordiffusion", use_secondary=False,
                             clip_models=("RN101::yfcc15m",)) == ("watercolordiffusion", "RN101::yfcc15m",
                                                                  "lpips_vgg16")
    assert model_set_members("random-full") == model_set_members("test-tiny") == ()


def test_clip_entries_come_from_open_clip_hub_config() -> None:
    assert len(CLIP_MODEL_NAMES) == 22 and len(set(CLIP_MODEL_NAMES)) == 22
    entries = [clip_entry(name) for name in CLIP_MODEL_NAMES]
    for entry in entries:
        assert entry.kind == "clip" and len(entry.urls) == 1
        assert entry.urls[0].startswith("https://huggingface.co/") and entry.urls[0].endswith(".safetensors")
        assert entry.sha256 is None  # nothing published for the Hugging Face copies: trust on first use
    vit = get_model("ViT-B-32::openai")
    assert vit.urls == ("https://huggingface.co/timm/vit_base_patch32_clip_224.openai/resolve/main/"
                        "open_clip_model.safetensors",)
    assert vit.config["arch"] == "ViT-B-32" and vit.config["quick_gelu"] is True
    # Aliases of one checkpoint share one cached file.
    assert clip_entry("RN50::yfcc15m").filename == clip_entry("RN50-quickgelu::yfcc15m").filename
    assert len(all_models()) == len(all_models(include_clip=False)) + 22


def test_the_registry_holds_open_clips_rows_for_dd_clip_models() -> None:
    """The registry's copy of open_clip's pretrained table (so that listing needs no open_clip)
    says what the installed open_clip says: an upgrade that moves a file fails here."""
    import open_clip

    assert set(registry.CLIP_PRETRAINED) == set(CLIP_MODEL_NAMES)
    for name, held in registry.CLIP_PRETRAINED.items():
        cfg = open_clip.get_pretrained_cfg(*name.split("::"))
        assert held == (cfg["hf_hub"], cfg["url"], bool(cfg.get("quick_gelu", False))), name
        assert (tuple(cfg["mean"]), tuple(cfg["std"])) == (registry.OPENAI_MEAN, registry.OPENAI_STD), name


def test_url_only_clip_entries_take_openai_sha_from_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    digest = "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"
    url = f"https://openaipublic.azureedge.net/clip/models/{digest}/RN50.pt"
    monkeypatch.setattr(registry, "_open_clip_pretrained_cfg", lambda arch, tag: {"url": url})
    clip_entry.cache_clear()
    try:
        entry = clip_entry("RN50::some-url-only-tag")
        assert entry.urls == (url,) and entry.sha256 == digest and entry.filename == "clip--RN50.pt"
        monkeypatch.setattr(registry, "_open_clip_pretrained_cfg", lambda arch, tag: {})
        with pytest.raises(ModelError, match="Unknown CLIP model"):
            clip_entry("RN50::nope")
    finally:
        clip_entry.cache_clear()


def test_register_model_validates() -> None:
    custom = ModelFile(name="my-model", filename="my-model.pt", urls=(), sha256=None, size=None, kind="diffusion",
                       config={"image_size": 256})
    register_model(custom)
    assert get_model("my-model") is custom
    with pytest.raises(ModelError, match="already registered"):
        register_model(custom)
    with pytest.raises(ModelError, match="64 lowercase hex"):
        register_model(dataclasses.replace(custom, name="other", sha256="ABC"), replace=True)
    hash(get_model("512x512_diffusion_uncond_finetune_008100"))  # entries stay hashable


def test_community_fine_tunes_carry_published_hashes_and_configs():
    from engine.models.registry import diffusion_config, get_model

    feiart = get_model("FeiArt_Handpainted_CG_Diffusion")
    assert feiart.sha256 == "85f95f0618f288476ffcec9f48160542ba626f655b3df963543388dcd059f86a"
    assert feiart.unused_keys == ("label_emb.",) and diffusion_config(feiart.name)["num_channels"] == 256
    ukiyo = get_model("Ukiyo-e_Diffusion_All_V1.by_thegenerativegeneration")
    assert ukiyo.default_size == (512, 448) and diffusion_config(ukiyo.name)["num_heads"] == 4
    assert get_model("portrait_generator_v1.5").filename == "ema_0.9999_165000.pt"
