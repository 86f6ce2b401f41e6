"""Which model files the engine knows: names, download mirrors, checksums and architecture configs.

Pure data and lookups. Importing this module never imports torch. A CLIP entry's download
address is open_clip's: DD's CLIP models' rows of open_clip's pretrained table are held here
(CLIP_PRETRAINED, checked against open_clip by the tests); only a lookup of another `ARCH::TAG`
imports open_clip, when called.

Checksums are full SHA-256 values copied from published sources (Disco Diffusion 5.6/5.7's
`diff_model_map`, jina-ai/discoart's models.yml, OpenAI's CLIP URLs, PyTorch's and MiDaS'
release files). Where none is published the entry has ``sha256=None`` and the downloader
records the hash of the first download instead (trust on first use).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal, Mapping

from engine.errors import ModelError

ModelKind = Literal["diffusion", "secondary", "clip", "lpips", "depth", "flow"]


@dataclass(frozen=True)
class ModelFile:
    """One downloadable weights file and what it is for."""

    name: str
    filename: str
    urls: tuple[str, ...]            # primary first, then mirrors serving the same bytes
    sha256: str | None               # 64 lowercase hex digits, or None when none is published
    size: int | None                 # bytes, when known
    kind: ModelKind
    config: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    notes: str = ""
    cut_group: str | None = None     # DD's cut-schedule group (diffusion models only)
    default_size: tuple[int, int] | None = None  # DD's default (width, height) for this model
    unused_keys: tuple[str, ...] = ()  # state-dict key prefixes the file has and the model lacks
    local_path: str | None = None    # a custom model's file outside the cache (used where it is)


# DD 5.7 replaces the user's four cut schedules by a group's when one of these models is chosen.
CUT_SCHEDULE_GROUPS: Mapping[str, Mapping[str, str]] = MappingProxyType({
    "default": MappingProxyType({
        "cut_overview": "[12]*400+[4]*600",
        "cut_innercut": "[4]*400+[12]*600",
        "cut_ic_pow": "[1]*1000",
        "cut_icgray_p": "[0.2]*400+[0]*600",
    }),
    "pad_or_pulp": MappingProxyType({
        "cut_overview": "[15]*100+[15]*100+[12]*100+[12]*100+[6]*100+[4]*100+[2]*200+[0]*200",
        "cut_innercut": "[1]*100+[1]*100+[4]*100+[4]*100+[8]*100+[8]*100+[10]*200+[10]*200",
        "cut_ic_pow": "[12]*300+[12]*100+[12]*50+[12]*50+[10]*100+[10]*100+[10]*300",
        "cut_icgray_p": "[0.87]*100+[0.78]*50+[0.73]*50+[0.64]*60+[0.56]*40+[0.50]*50"
                        "+[0.33]*100+[0.19]*150+[0]*400",
    }),
    "watercolor": MappingProxyType({
        "cut_overview": "[14]*200+[12]*200+[4]*400+[0]*200",
        "cut_innercut": "[2]*200+[4]*200+[12]*400+[12]*200",
        "cut_ic_pow": "[12]*300+[12]*100+[12]*50+[12]*50+[10]*100+[10]*100+[10]*300",
        "cut_icgray_p": "[0.7]*100+[0.6]*100+[0.45]*100+[0.3]*100+[0]*600",
    }),
})

# guided_diffusion `model_and_diffusion_defaults()` overrides, as DD 5.7 sets them.
# use_fp16, use_checkpoint and timestep_respacing are decided when the model is loaded.
_OPENAI_UNCOND = {
    "attention_resolutions": "32, 16, 8", "class_cond": False, "diffusion_steps": 1000,
    "rescale_timesteps": True, "learn_sigma": True, "noise_schedule": "linear",
    "num_channels": 256, "num_head_channels": 64, "num_res_blocks": 2,
    "resblock_updown": True, "use_scale_shift_norm": True,
}
_PORTRAIT = {
    "attention_resolutions": "32, 16, 8", "class_cond": False, "diffusion_steps": 1000,
    "rescale_timesteps": True, "image_size": 512, "learn_sigma": True, "noise_schedule": "linear",
    "num_channels": 128, "num_heads": 4, "num_res_blocks": 2, "resblock_updown": True,
    "use_scale_shift_norm": True,
}
_KALIYUGA = {
    "attention_resolutions": "16", "class_cond": False, "diffusion_steps": 1000,
    "rescale_timesteps": True, "image_size": 256, "learn_sigma": True, "noise_schedule": "linear",
    "num_channels": 128, "num_heads": 1, "num_res_blocks": 2, "use_scale_shift_norm": False,
}
_SIZE_512_CLASS = (1280, 768)   # DD's width_height_for_512x512_models
_SIZE_256_CLASS = (512, 448)    # DD's width_height_for_256x256_models
_FP16_NOTE = "DD always loads this model with use_fp16=True."


def _diffusion(name: str, filename: str, urls: tuple[str, ...], sha256: str, config: dict,
               cut_group: str, default_size: tuple[int, int], notes: str,
               size: int | None = None) -> ModelFile:
    return ModelFile(name=name, filename=filename, urls=urls, sha256=sha256, size=size,
                     kind="diffusion", config=MappingProxyType(dict(config)), notes=notes,
                     cut_group=cut_group, default_size=default_size)


def _community(name: str, url: str, sha256: str, config: dict, notes: str,
               unused_keys: tuple[str, ...] = ()) -> ModelFile:
    """A fine-tune DD users ran through discoart and DD forks; URL, SHA-256 and config as
    jina-ai/discoart's models.yml publishes them. DD's default cut schedules apply."""
    size = _SIZE_256_CLASS if config["image_size"] == 256 else _SIZE_512_CLASS
    entry = _diffusion(name, url.rsplit("/", 1)[1], (url,), sha256, config, "default", size,
                       notes)
    return replace(entry, unused_keys=unused_keys)


def _kaliyuga(name: str, repo: str, filename: str, sha256: str, cut_group: str) -> ModelFile:
    return _diffusion(name, filename, (f"https://huggingface.co/KaliYuga/{repo}/resolve/main/{filename}",),
                      sha256, _KALIYUGA, cut_group, _SIZE_256_CLASS,
                      f"KaliYuga's fine-tune of the OpenAI 256 model. {_FP16_NOTE}")


def _raft(variant: str, tag: str, sha256_prefix: str, notes: str) -> ModelFile:
    # torchvision names only the first 8 hex digits of the SHA-256 (in the file name), so the full
    # hash is recorded on first download and engine.animation.flow checks the prefix.
    filename = f"raft_{variant}_{tag}-{sha256_prefix}.pth"
    return ModelFile(name=f"raft_{variant}_{tag}", filename=filename,
                     urls=(f"https://download.pytorch.org/models/{filename}",), sha256=None, size=None,
                     kind="flow", config=MappingProxyType({"architecture": f"torchvision raft_{variant}",
                                                           "variant": variant, "sha256_prefix": sha256_prefix}),
                     notes=notes)


_STATIC_MODELS: tuple[ModelFile, ...] = (
    _diffusion(
        "512x512_diffusion_uncond_finetune_008100", "512x512_diffusion_uncond_finetune_008100.pt",
        ("https://huggingface.co/lowlevelware/512x512_diffusion_unconditional_ImageNet/resolve/main/"
         "512x512_diffusion_uncond_finetune_008100.pt",
         "https://the-eye.eu/public/AI/models/512x512_diffusion_unconditional_ImageNet/"
         "512x512_diffusion_uncond_finetune_008100.pt",
         "https://ipfs.io/ipfs/QmYNhbgnjPRuprob6WiELb3egd8rZa2xTEYGzAfkLuaKJw"),
        "9c111ab89e214862b76e1fa6a1b3f1d329b1a88281885943d2cdbe357ad57648",
        {**_OPENAI_UNCOND, "image_size": 512}, "default", _SIZE_512_CLASS,
        "DD's default: Katherine Crowson's unconditional fine-tune of OpenAI's 512 ImageNet model."),
    _diffusion(
        "256x256_diffusion_uncond", "256x256_diffusion_uncond.pt",
        ("https://openaipublic.blob.core.windows.net/diffusion/jul-2021/256x256_diffusion_uncond.pt",
         "https://www.dropbox.com/s/9tqnqo930mpnpcn/256x256_diffusion_uncond.pt?dl=1",
         "https://ipfs.io/ipfs/QmRkZ4JBLHwpZqeAuULYeGzo3TZqfgnrg6bFvUXFneotP9"),
        "a37c32fffd316cd494cf3f35b339936debdc1576dad13fe57c42399a5dbc78b1",
        {**_OPENAI_UNCOND, "image_size": 256}, "default", _SIZE_256_CLASS,
        "OpenAI's unconditional 256 ImageNet model (guided-diffusion).", size=2_211_383_297),
    _diffusion(
        "portrait_generator_v001", "portrait_generator_v001_ema_0.9999_1MM.pt",
        ("https://huggingface.co/felipe3dartist/portrait_generator_v001/resolve/main/"
         "portrait_generator_v001_ema_0.9999_1MM.pt",),
        "b7e8c747af880d4480b6707006f1ace000b058dd0eac5bb13558ba3752d9b5b9",
        _PORTRAIT, "default", _SIZE_512_CLASS,
        f"Felipe3DArtist's portrait model (512). {_FP16_NOTE}"),
    _kaliyuga("pixelartdiffusion_expanded", "PADexpanded", "PADexpanded.pt",
              "a73b40556634034bf43b5a716b531b46fb1ab890634d854f5bcbbef56838739a", "pad_or_pulp"),
    _kaliyuga("pixel_art_diffusion_hard_256", "pixel_art_diffusion_hard_256",
              "pixel_art_diffusion_hard_256.pt",
              "be4a9de943ec06eef32c65a1008c60ad017723a4d35dc13169c66bb322234161", "pad_or_pulp"),
    _kaliyuga("pixel_art_diffusion_soft_256", "pixel_art_diffusion_soft_256",
              "pixel_art_diffusion_soft_256.pt",
              "d321590e46b679bf6def1f1914b47c89e762c76f19ab3e3392c8ca07c791039c", "pad_or_pulp"),
    _kaliyuga("pixelartdiffusion4k", "pixelartdiffusion4k", "pixelartdiffusion4k.pt",
              "a1ba4f13f6dabb72b1064f15d8ae504d98d6192ad343572cc416deda7cccac30", "pad_or_pulp"),
    _kaliyuga("watercolordiffusion_2", "watercolordiffusion_2", "watercolordiffusion_2.pt",
              "49c281b6092c61c49b0f1f8da93af9b94be7e0c20c71e662e2aa26fee0e4b1a9", "watercolor"),
    _kaliyuga("watercolordiffusion", "watercolordiffusion", "watercolordiffusion.pt",
              "a3e6522f0c8f278f90788298d66383b11ac763dd5e0d62f8252c962c23950bd6", "watercolor"),
    _kaliyuga("PulpSciFiDiffusion", "PulpSciFiDiffusion", "PulpSciFiDiffusion.pt",
              "b79e62613b9f50b8a3173e5f61f0320c7dbb16efad42a92ec94d014f6e17337f", "pad_or_pulp"),
    _community(
        "256x256_openai_comics_faces_v2.by_alex_spirin_114k",
        "https://github.com/Sxela/DiscoDiffusion-Warp/releases/download/v0.1.1/"
        "256x256_openai_comics_faces_v2.by_alex_spirin_114k.pt",
        "f587fd6d2edb093701931e5083a13ab6b76b3f457b60efd1aa873d60ee3d6388", _KALIYUGA,
        "Alex Spirin's comics-faces fine-tune (256). discoart publishes no config for it and "
        "loads it with its default one, the KaliYuga layout used here."),
    _community(
        "portrait_generator_v1.5",
        "https://huggingface.co/felipe3dartist/portrait_generator_v1.5/resolve/main/"
        "ema_0.9999_165000.pt",
        "3bc39e28fd9690dafbbee83cc08d089a3640eca8ed4d14280c4a9d342c56fd7f", _PORTRAIT,
        "Felipe3DArtist's portrait model, version 1.5 (512)."),
    _community(
        "FeiArt_Handpainted_CG_Diffusion",
        "https://huggingface.co/Feiart/FeiArt-Handpainted-CG-Diffusion/resolve/main/"
        "FeiArt-Handpainted-CG-Diffusion.pt",
        "85f95f0618f288476ffcec9f48160542ba626f655b3df963543388dcd059f86a",
        {**_OPENAI_UNCOND, "image_size": 512},
        "FeiArt's hand-painted CG fine-tune (512). Trained class-conditional and used "
        "unconditionally, so the file's class embedding is not loaded.",
        unused_keys=("label_emb.",)),
    _community(
        "Ukiyo-e_Diffusion_All_V1.by_thegenerativegeneration",
        "https://huggingface.co/thegenerativegeneration/ukiyoe-diffusion-256/resolve/main/"
        "models/ukiyoe-all/v1/ema_0.9999_056000.pt",
        "5f9af55461783619f25dcbf8953f028c0768108801860afe8c947428dee7a991",
        {**_PORTRAIT, "image_size": 256},
        "thegenerativegeneration's Ukiyo-e fine-tune (256)."),
    _community(
        "IsometricDiffusionRevrart512px",
        "https://huggingface.co/Revrart/IsometricDiffusionRevrart512px/resolve/main/"
        "IsometricDiffusionRevrart512px.pt",
        "649bb7d10ea5170b71bc24adfb17f0305955fde38d2bb1bc5428c6d5baf9811c",
        {**_OPENAI_UNCOND, "image_size": 512},
        "Revrart's isometric fine-tune (512)."),
    ModelFile(
        name="secondary_model_imagenet_2", filename="secondary_model_imagenet_2.pth",
        urls=("https://huggingface.co/spaces/huggi/secondary_model_imagenet_2.pth/resolve/main/"
              "secondary_model_imagenet_2.pth",
              "https://the-eye.eu/public/AI/models/v-diffusion/secondary_model_imagenet_2.pth",
              "https://ipfs.pollinations.ai/ipfs/bafybeibaawhhk7fhyhvmm7x24zwwkeuocuizbqbcg5nqx64jq42j75rdiy/"
              "secondary_model_imagenet_2.pth"),
        sha256="983e3de6f95c88c81b2ca7ebb2c217933be1973b1ff058776b970f901584613a", size=None,
        kind="secondary", config=MappingProxyType({"architecture": "SecondaryDiffusionImageNet2"}),
        notes="Katherine Crowson's small v-objective model that DD uses to predict x0 cheaply."),
    ModelFile(
        name="lpips_vgg16", filename="vgg16-397923af.pth",
        urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
        sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0", size=553_433_881,
        kind="lpips", config=MappingProxyType({"architecture": "torchvision vgg16"}),
        notes="torchvision's ImageNet VGG16, the backbone LPIPS(net='vgg') uses for the init-image loss."),
    ModelFile(
        name="midas_dpt_large", filename="dpt_large-midas-2f21e586.pt",
        urls=("https://github.com/intel-isl/DPT/releases/download/1_0/dpt_large-midas-2f21e586.pt",
              "https://github.com/isl-org/MiDaS/releases/download/v3/dpt_large_384.pt",
              "https://ipfs.io/ipfs/QmbpkBqVrayBzaxHMSnk917ng2EopZsdFK8pFkku9sbr8H"),
        sha256="2f21e586477d90cb9624c7eef5df7891edca49a1c4795ee2cb631fd4daa6ca69", size=None,
        kind="depth", config=MappingProxyType({"architecture": "DPT-Large (vitl16_384)", "input_size": 384}),
        notes="MiDaS v3 DPT-Large depth model, used by DD's 3D animation mode."),
    _raft("large", "C_T_SKHT_V2", "ff5fadd5",
          "torchvision's default RAFT-large weights (FlyingChairs, FlyingThings, then Sintel, KITTI, "
          "HD1K and Things), for DD's video-init flow warp."),
    _raft("large", "C_T_V2", "1bb1363a",
          "RAFT-large trained on FlyingChairs and FlyingThings only: the counterpart of DD's raft-things.pth."),
    _raft("small", "C_T_V2", "01064c6d", "RAFT-small (FlyingChairs, FlyingThings): faster, less accurate flow."),
)

# Every CLIP model DD 5.7 offers, as open_clip `ARCH::TAG` names.
OPENAI_CLIP_MODELS: tuple[str, ...] = tuple(f"{arch}::openai" for arch in (
    "ViT-B-32", "ViT-B-16", "ViT-L-14", "ViT-L-14-336", "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64"))
OPENCLIP_MODELS: tuple[str, ...] = (
    "ViT-B-32::laion2b_e16", "ViT-B-32::laion400m_e31", "ViT-B-32::laion400m_e32",
    "ViT-B-32-quickgelu::laion400m_e31", "ViT-B-32-quickgelu::laion400m_e32",
    "ViT-B-16::laion400m_e31", "ViT-B-16::laion400m_e32",
    "RN50::yfcc15m", "RN50::cc12m", "RN50-quickgelu::yfcc15m", "RN50-quickgelu::cc12m",
    "RN101::yfcc15m", "RN101-quickgelu::yfcc15m",
)
CLIP_MODEL_NAMES: tuple[str, ...] = OPENAI_CLIP_MODELS + OPENCLIP_MODELS

# open_clip's pretrained table for the names above, as open_clip 3.3.0 (the version pyproject pins)
# has it: (hf_hub, url, quick_gelu); each uses OpenAI's normalisation. Held here so that listing
# and looking up these names never imports open_clip, and torch with it (`disco models list`
# answers in a fraction of a second). tests/engine/models/test_registry.py checks every row
# against the installed open_clip; any other ARCH::TAG is looked up in open_clip itself.
_OPENAI_URL = "https://openaipublic.azureedge.net/clip/models/"
_OPENCLIP_URL = "https://github.com/mlfoundations/open_clip/releases/download/v0.2-weights/"
CLIP_PRETRAINED: Mapping[str, tuple[str, str, bool]] = MappingProxyType({
    "ViT-B-32::openai": ("timm/vit_base_patch32_clip_224.openai/",
        _OPENAI_URL + "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt", True),
    "ViT-B-16::openai": ("timm/vit_base_patch16_clip_224.openai/",
        _OPENAI_URL + "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt", True),
    "ViT-L-14::openai": ("timm/vit_large_patch14_clip_224.openai/",
        _OPENAI_URL + "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt", True),
    "ViT-L-14-336::openai": ("timm/vit_large_patch14_clip_336.openai/",
        _OPENAI_URL + "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt", True),
    "RN50::openai": ("timm/resnet50_clip.openai/",
        _OPENAI_URL + "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt", True),
    "RN101::openai": ("timm/resnet101_clip.openai/",
        _OPENAI_URL + "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599/RN101.pt", True),
    "RN50x4::openai": ("timm/resnet50x4_clip.openai/",
        _OPENAI_URL + "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd/RN50x4.pt", True),
    "RN50x16::openai": ("timm/resnet50x16_clip.openai/",
        _OPENAI_URL + "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt", True),
    "RN50x64::openai": ("timm/resnet50x64_clip.openai/",
        _OPENAI_URL + "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt", True),
    "ViT-B-32::laion2b_e16": ("timm/vit_base_patch32_clip_224.laion2b_e16/",
        _OPENCLIP_URL + "vit_b_32-laion2b_e16-af8dbd0c.pth", False),
    "ViT-B-32::laion400m_e31": ("timm/vit_base_patch32_clip_224.laion400m_e31/",
        _OPENCLIP_URL + "vit_b_32-quickgelu-laion400m_e31-d867053b.pt", True),
    "ViT-B-32::laion400m_e32": ("timm/vit_base_patch32_clip_224.laion400m_e32/",
        _OPENCLIP_URL + "vit_b_32-quickgelu-laion400m_e32-46683a32.pt", True),
    "ViT-B-32-quickgelu::laion400m_e31": ("timm/vit_base_patch32_clip_224.laion400m_e31/",
        _OPENCLIP_URL + "vit_b_32-quickgelu-laion400m_e31-d867053b.pt", True),
    "ViT-B-32-quickgelu::laion400m_e32": ("timm/vit_base_patch32_clip_224.laion400m_e32/",
        _OPENCLIP_URL + "vit_b_32-quickgelu-laion400m_e32-46683a32.pt", True),
    "ViT-B-16::laion400m_e31": ("timm/vit_base_patch16_clip_224.laion400m_e31/",
        _OPENCLIP_URL + "vit_b_16-laion400m_e31-00efa78f.pt", False),
    "ViT-B-16::laion400m_e32": ("timm/vit_base_patch16_clip_224.laion400m_e32/",
        _OPENCLIP_URL + "vit_b_16-laion400m_e32-55e67d44.pt", False),
    "RN50::yfcc15m": ("timm/resnet50_clip.yfcc15m/",
        _OPENCLIP_URL + "rn50-quickgelu-yfcc15m-455df137.pt", True),
    "RN50::cc12m": ("timm/resnet50_clip.cc12m/",
        _OPENCLIP_URL + "rn50-quickgelu-cc12m-f000538c.pt", True),
    "RN50-quickgelu::yfcc15m": ("timm/resnet50_clip.yfcc15m/",
        _OPENCLIP_URL + "rn50-quickgelu-yfcc15m-455df137.pt", True),
    "RN50-quickgelu::cc12m": ("timm/resnet50_clip.cc12m/",
        _OPENCLIP_URL + "rn50-quickgelu-cc12m-f000538c.pt", True),
    "RN101::yfcc15m": ("timm/resnet101_clip.yfcc15m/",
        _OPENCLIP_URL + "rn101-quickgelu-yfcc15m-3e04b30e.pt", True),
    "RN101-quickgelu::yfcc15m": ("timm/resnet101_clip.yfcc15m/",
        _OPENCLIP_URL + "rn101-quickgelu-yfcc15m-3e04b30e.pt", True),
})
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

DIFFUSION_MODEL_NAMES: tuple[str, ...] = tuple(m.name for m in _STATIC_MODELS if m.kind == "diffusion")
DEFAULT_DIFFUSION_MODEL = "512x512_diffusion_uncond_finetune_008100"
SECONDARY_MODEL = "secondary_model_imagenet_2"
LPIPS_MODEL = "lpips_vgg16"
DEPTH_MODEL = "midas_dpt_large"
DEFAULT_CLIP_MODELS: tuple[str, ...] = ("ViT-B-32::openai", "ViT-B-16::openai", "RN50::openai")

MODEL_SETS: dict[str, str] = {
    "dd-default": "Real Disco Diffusion 5.7 weights: the spec's diffusion model (default "
                  f"{DEFAULT_DIFFUSION_MODEL}), the secondary model when the spec uses it, and the "
                  "spec's CLIP models (default ViT-B-32, ViT-B-16 and RN50 from OpenAI). "
                  "The files must be downloaded first: `disco models download --set dd-default`.",
    "random-full": "The same architectures as dd-default with seeded random weights; nothing is "
                   "downloaded. For speed and memory benchmarks only: the output is noise.",
    "test-tiny": "Tiny seeded random models (a small UNet and a small CLIP) for tests and CPU "
                 "runs; nothing is downloaded and the output is noise.",
}

_REGISTRY: dict[str, ModelFile] = {m.name: m for m in _STATIC_MODELS}
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


def _unknown(what: str, name: str, candidates: list[str]) -> ModelError:
    return ModelError(f"Unknown {what} {name!r}.{_close_names(name, candidates)} Run `disco models list` "
                      "to see every name.")


def _close_names(name: str, candidates: list[str]) -> str:
    """The candidates close to `name` as ' Did you mean: …?', or an empty string."""
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=5, cutoff=0.5)
    return f" Did you mean: {', '.join(lowered[c] for c in close)}?" if close else ""


def check_model_set(name: str) -> str:
    """`name` when it is a model set; else a ModelError with the choices (torch-free, so an
    engine refuses a misspelt --models before it loads anything)."""
    if name not in MODEL_SETS:
        raise ModelError(f"unknown model set {name!r}: choose one of {', '.join(MODEL_SETS)}."
                         f"{_close_names(name, list(MODEL_SETS))}")
    return name


def register_model(entry: ModelFile, *, replace: bool = False) -> None:
    """Add a model file to the registry (custom diffusion models, local test servers)."""
    if entry.sha256 is not None and not _SHA256_HEX.match(entry.sha256):
        raise ModelError(f"Model {entry.name!r}: sha256 must be 64 lowercase hex digits, got {entry.sha256!r}.")
    if entry.name in _REGISTRY and not replace:
        raise ModelError(f"A model named {entry.name!r} is already registered; pass replace=True to override it.")
    _REGISTRY[entry.name] = entry


def diffusion_model_names() -> tuple[str, ...]:
    """Every diffusion model a spec may name: the built-in ones, then the custom ones the
    config file registered in this process (engine/models/custom.py)."""
    return tuple(name for name, entry in _REGISTRY.items() if entry.kind == "diffusion")


def custom_model_names() -> tuple[str, ...]:
    """The diffusion models registered from the config file's [models.custom.NAME] tables."""
    return tuple(name for name in diffusion_model_names() if name not in DIFFUSION_MODEL_NAMES)


def get_model(name: str) -> ModelFile:
    """The registry entry for `name`; CLIP models are named `ARCH::TAG` (e.g. `ViT-B-32::openai`)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if "::" in name:
        return clip_entry(name)
    raise _unknown("model", name, list(_REGISTRY) + list(CLIP_MODEL_NAMES))


def diffusion_config(name: str) -> dict[str, Any]:
    """DD's guided_diffusion overrides for a diffusion model, as a fresh dict to merge into
    `model_and_diffusion_defaults()` (use_fp16, use_checkpoint and timestep_respacing are not included)."""
    entry = get_model(name)
    if entry.kind != "diffusion":
        raise ModelError(f"{name!r} is a {entry.kind} model, not a diffusion model. "
                         f"Diffusion models: {', '.join(diffusion_model_names())}.")
    return dict(entry.config)


def cut_schedules(name: str) -> dict[str, str]:
    """The four cut-schedule strings DD 5.7 applies when `name` is the diffusion model."""
    entry = get_model(name)
    return dict(CUT_SCHEDULE_GROUPS[entry.cut_group or "default"])


def model_set_members(set_name: str, *, diffusion_model: str | None = None,
                      clip_models: tuple[str, ...] | None = None, use_secondary: bool = True) -> tuple[str, ...]:
    """The registry names a model set needs on disk (empty for the random-weight sets): the
    diffusion model, the secondary model, the CLIP models and, as DD loads it at every start,
    LPIPS (the init-image loss of init images, vary, GoBig and animation frames)."""
    if check_model_set(set_name) != "dd-default":
        return ()
    members = [diffusion_model or DEFAULT_DIFFUSION_MODEL]
    if use_secondary:
        members.append(SECONDARY_MODEL)
    members.extend(clip_models if clip_models is not None else DEFAULT_CLIP_MODELS)
    return (*members, LPIPS_MODEL)


def _pretrained_cfg(arch: str, tag: str) -> dict[str, Any]:
    """open_clip's pretrained entry for (arch, tag): from CLIP_PRETRAINED when it is one of
    DD's, else from open_clip."""
    known = CLIP_PRETRAINED.get(f"{arch}::{tag}")
    if known is None:
        return _open_clip_pretrained_cfg(arch, tag)
    hf_hub, url, quick_gelu = known
    return {"hf_hub": hf_hub, "url": url, "quick_gelu": quick_gelu, "mean": OPENAI_MEAN, "std": OPENAI_STD}


def _open_clip_pretrained_cfg(arch: str, tag: str) -> dict[str, Any]:
    """open_clip's pretrained entry for (arch, tag); imports open_clip (and torch) on first use."""
    from engine.models.offline import keep_hf_hub_offline  # before huggingface_hub reads its settings
    keep_hf_hub_offline()
    import open_clip
    return dict(open_clip.get_pretrained_cfg(arch, tag) or {})


@lru_cache(maxsize=None)
def clip_entry(name: str) -> ModelFile:
    """A CLIP model's weights file, with its address derived from open_clip's pretrained table.

    Prefers the Hugging Face copy (safetensors, loads without pickle); falls back to the plain URL.
    OpenAI's own URLs carry the file's SHA-256 in their path, which then becomes the checksum.
    """
    arch, sep, tag = name.partition("::")
    if not sep or not arch or not tag:
        raise ModelError(f"CLIP model names look like ARCH::TAG (e.g. 'ViT-B-32::openai'); got {name!r}.")
    cfg = _pretrained_cfg(arch, tag)
    hf_hub, url = cfg.get("hf_hub", ""), cfg.get("url", "")
    if not hf_hub and not url:
        raise _unknown("CLIP model", name, list(CLIP_MODEL_NAMES))
    sha256 = None
    if hf_hub:
        repo_id, hub_file = _split_hub(hf_hub)
        chosen = f"https://huggingface.co/{repo_id}/resolve/main/{hub_file}"
        filename = f"clip--{repo_id.replace('/', '--')}--{hub_file.replace('/', '--')}"
    else:
        chosen = url
        filename = f"clip--{url.rstrip('/').rsplit('/', 1)[-1]}"
        sha256 = _sha256_in_openai_url(url)
    config = {"arch": arch, "tag": tag, "quick_gelu": bool(cfg.get("quick_gelu", False)),
              "mean": tuple(cfg.get("mean", ())), "std": tuple(cfg.get("std", ())),
              "hf_hub": hf_hub, "url": url}
    source = "OpenAI CLIP" if tag == "openai" else "OpenCLIP"
    return ModelFile(name=name, filename=filename, urls=(chosen,), sha256=sha256, size=None, kind="clip",
                     config=MappingProxyType(config),
                     notes=f"{source} {arch} ({tag}); address from open_clip's pretrained table.")


def _split_hub(hf_hub: str) -> tuple[str, str]:
    """'org/repo/' → ('org/repo', 'open_clip_model.safetensors'); 'org/repo/file.bin' keeps file.bin.

    open_clip's convention: a trailing slash means "the repo's default weights", whose safetensors
    copy it tries first; an explicit file name is used as given."""
    org, repo, *rest = hf_hub.split("/")
    explicit = "/".join(part for part in rest if part)
    return f"{org}/{repo}", explicit or "open_clip_model.safetensors"


def _sha256_in_openai_url(url: str) -> str | None:
    if "openaipublic" not in url:
        return None
    for part in url.split("/"):
        if _SHA256_HEX.match(part):
            return part
    return None


def all_models(*, include_clip: bool = True) -> tuple[ModelFile, ...]:
    """Every registered file; CLIP entries need open_clip, so they can be left out."""
    models = list(_REGISTRY.values())
    if include_clip:
        models.extend(clip_entry(name) for name in CLIP_MODEL_NAMES)
    return tuple(models)
