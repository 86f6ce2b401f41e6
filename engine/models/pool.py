"""Builds and keeps the models a render needs: the diffusion UNet, the secondary model, CLIP
models and LPIPS, for one of three model sets.

- `dd-default`: the published weights, from the model cache (see engine/models/download.py).
- `random-full`: the real architectures with seeded random weights (benchmarks; nothing is read).
- `test-tiny`: tiny seeded random models built from the same classes (tests and smoke runs;
  their output is noise).

A `ModelPool` loads each model once and keeps it resident across renders.
"""
from __future__ import annotations

import contextlib
import logging
import math
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from engine.errors import ModelError
from engine.models.devices import check_device_name, check_precision
from engine.models.download import clip_weights_path, ensure, load_weights, reference_sha256
from engine.models.registry import (
    LPIPS_MODEL,
    SECONDARY_MODEL,
    check_model_set,
    clip_entry,
    diffusion_config,
    get_model,
)
from engine.models.secondary import SecondaryDiffusionImageNet2

log = logging.getLogger("disco.engine.models")
TINY_CLIP_ARCH = "TinyCLIP-test"
_CONFIG_DIR = Path(__file__).parent / "configs"

# guided-diffusion's UNet at toy size: 4.5 M parameters, 8× downsampling, GroupNorm-friendly widths.
TINY_UNET_CONFIG = dict(image_size=64, num_channels=32, num_res_blocks=1, num_head_channels=16,
                        attention_resolutions="16, 8", learn_sigma=True, class_cond=False,
                        resblock_updown=True, use_scale_shift_norm=True)
_UNET_ARGS = ("image_size", "num_channels", "num_res_blocks", "channel_mult", "learn_sigma",
              "class_cond", "use_checkpoint", "attention_resolutions", "num_heads",
              "num_head_channels", "num_heads_upsample", "use_scale_shift_norm", "dropout",
              "resblock_updown", "use_fp16", "use_new_attention_order")


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipModel:
    name: str
    model: nn.Module
    tokenizer: object
    cut_size: int

    autocast: torch.dtype | None = None
    encode_image: Callable[[torch.Tensor], torch.Tensor] | None = None  # compiled, when asked for

    def encode(self, cuts: torch.Tensor) -> torch.Tensor:
        """Image embeddings of cuts in [0, 1], normalised with CLIP's statistics."""
        # Copied without blocking: a blocking host-to-device copy would wait for the GPU.
        mean = torch.tensor(CLIP_MEAN, dtype=cuts.dtype)[:, None, None].to(cuts.device, non_blocking=True)
        std = torch.tensor(CLIP_STD, dtype=cuts.dtype)[:, None, None].to(cuts.device, non_blocking=True)
        with torch.autocast(cuts.device.type, dtype=self.autocast or torch.bfloat16,
                            enabled=self.autocast is not None):
            return (self.encode_image or self.model.encode_image)((cuts - mean) / std).float()


def _seed_for(name: str) -> int:
    return zlib.crc32(name.encode())


def fill_zero_weights(model: nn.Module, gen: torch.Generator) -> nn.Module:
    """guided-diffusion zero-initialises its output layers, so a fresh UNet predicts exactly 0;
    give every all-zero weight matrix a fan-in-scaled normal init so random models do work."""
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1 and not param.any():
                fan_in = param[0].numel()
                param.normal_(0.0, 1.0 / math.sqrt(fan_in), generator=gen)
    return model


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """guided-diffusion's sinusoidal timestep embedding, with its frequencies made on the
    timesteps' device: the original builds them on the CPU and copies them over, a blocking copy
    (a host-device sync) in every UNet call."""
    half = dim // 2
    steps = torch.arange(half, dtype=torch.float32, device=timesteps.device)
    freqs = torch.exp(-math.log(max_period) * steps / half)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding


def build_unet(config: dict, *, use_fp16: bool, use_checkpoint: bool, seed: int,
               weights: dict[str, torch.Tensor] | None = None) -> nn.Module:
    """A guided-diffusion UNet from a registry config: with `weights` (a checkpoint's state
    dict, every key of the model), those; else seeded random (non-zero) weights."""
    with warnings.catch_warnings():  # guided-diffusion uses a deprecated torch.cuda.amp decorator
        warnings.simplefilter("ignore", FutureWarning)
        from guided_diffusion import unet as guided_unet
        from guided_diffusion.script_util import create_model, model_and_diffusion_defaults

    guided_unet.timestep_embedding = timestep_embedding  # the UNet module's own reference

    args = model_and_diffusion_defaults()
    args.update(config)
    args.update(use_fp16=use_fp16, use_checkpoint=use_checkpoint)
    if weights is not None:
        # Built without storage and given the file's tensors: the random init of a 550 M
        # parameter UNet (seconds of CPU) would be overwritten anyway.
        with torch.device("meta"):
            model = create_model(**{k: args[k] for k in _UNET_ARGS})
        model.load_state_dict(weights, strict=True, assign=True)
        return model.float()  # as a freshly built model is: fp16 is a later, deliberate step
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create_model(**{k: args[k] for k in _UNET_ARGS})
    return fill_zero_weights(model, torch.Generator().manual_seed(seed + 1))


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' is DD's choice: fp16 on CUDA (DD converts the UNet and loads CLIP in half
    precision there), fp32 on the CPU. bf16 is opt-in and applies to the UNet: about twice as
    fast on CPUs with AMX, at about 1–2 % relative difference in its output."""
    check_precision(precision)
    if precision == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ModelError("precision fp16 needs a CUDA device; on the CPU use fp32 or bf16")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        log.warning("precision bf16 on this CPU is emulated (oneDNN reports no bf16 support: no AVX-512 "
                    "or AMX), about 20-100x slower than fp32 per convolution or matmul; use precision fp32")
    return precision


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX-512 or AMX); without it every bf16
    convolution and matmul takes a slow reference path (docs/performance.md)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def _prepare_unet(model: nn.Module, device: torch.device, use_fp16: bool, use_checkpoint: bool) -> nn.Module:
    model.eval().requires_grad_(False)
    if use_checkpoint:
        # guided-diffusion's checkpoint backward differentiates w.r.t. these parameters, so DD
        # re-enables their grad; without it a backward through a checkpointed block fails.
        for name, param in model.named_parameters():
            if any(key in name for key in ("qkv", "norm", "proj")):
                param.requires_grad_()
    if use_fp16:  # DD's GPU path: fp16 blocks, fp32 norms and output
        model.convert_to_fp16()
        model.dtype = torch.float16
    return model.to(device)


def resolve_device(name: str) -> torch.device:
    """`auto`, `cpu`, `cuda` or `cuda:N` as a device; refuses any other name, CUDA where there is
    none and a CUDA index past the last GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        check_device_name(name)
    except ModelError as exc:
        raise ModelError(f"--device {exc}") from None
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ModelError(f"--device {name}: this host has {torch.cuda.device_count()} CUDA "
                         f"device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    return device


class _QuietRootLogger:
    """open_clip warns on the root logger that random weights are random; silence that only."""

    def __enter__(self):
        self.level = logging.root.level
        logging.root.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        logging.root.setLevel(self.level)


def build_clip(name: str, *, weights: Path | None, device: torch.device, arch: str | None = None,
               quick_gelu: bool | None = None) -> ClipModel:
    """An open_clip model for 'ARCH::TAG'; seeded random weights when `weights` is None.
    `arch` overrides the architecture (the test set builds every CLIP as the tiny one);
    `quick_gelu` defaults to OpenAI's activation for the 'openai' tag."""
    import open_clip

    name_arch, _, tag = name.partition("::")
    arch = arch or name_arch
    if arch == TINY_CLIP_ARCH and arch not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR / f"{TINY_CLIP_ARCH}.json")
    quiet = _QuietRootLogger() if weights is None else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), quiet:  # random weights are the point here
        torch.manual_seed(_seed_for(name))
        model = open_clip.create_model(arch, pretrained=str(weights) if weights else None,
                                       force_quick_gelu=(tag == "openai") if quick_gelu is None else quick_gelu,
                                       device=device)
    model.eval().requires_grad_(False)
    size = model.visual.image_size
    cut_size = int(size[0] if isinstance(size, (tuple, list)) else size)
    return ClipModel(name=name, model=model, tokenizer=open_clip.get_tokenizer(arch), cut_size=cut_size)


@dataclass
class ModelPool:
    """Loads models on first use and keeps them resident (keyed by name and options)."""

    model_set: str = "test-tiny"
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    allow_download: bool = False
    precision: str = "auto"
    # Opt-in speed paths, equal to eager within tests/engine/models/test_fast_paths.py's tolerances:
    compile: bool = False         # torch.compile the UNet, the secondary model and CLIP image towers
    channels_last: bool = False   # NHWC weights for the convolutional models (faster convs on GPUs)
    _cache: dict = field(default_factory=dict, repr=False)
    sha256: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        check_model_set(self.model_set)
        self.device = torch.device(self.device)
        self.precision = resolve_precision(self.precision, self.device)

    @property
    def unet_autocast(self) -> torch.dtype | None:
        """The UNet runs under autocast for bf16; for fp16 its weights are converted, as DD does."""
        return torch.bfloat16 if self.precision == "bf16" else None

    @property
    def produces_noise(self) -> bool:
        return self.model_set != "dd-default"

    def cached(self, key, build):
        """What `build()` returns, made once per `key` while the pool lives: the models, and what
        is derived from them and worth keeping (text embeddings, /describe's word lists)."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def unet(self, diffusion_model: str, use_checkpoint: bool) -> tuple[nn.Module, dict]:
        """The diffusion UNet and its registry config (the noise schedule comes from it)."""

        config = TINY_UNET_CONFIG if self.model_set == "test-tiny" else diffusion_config(diffusion_model)
        use_fp16 = self.precision == "fp16"
        key = ("unet", diffusion_model if self.model_set != "test-tiny" else "tiny", use_checkpoint)

        def build() -> nn.Module:
            weights = None
            if self.model_set == "dd-default":  # read first: a missing file fails before any work
                unused = get_model(diffusion_model).unused_keys  # e.g. FeiArt's class embedding
                weights = {k: v for k, v in self._weights(diffusion_model).items()
                           if not (unused and k.startswith(unused))}
            model = build_unet(config, use_fp16=False, use_checkpoint=use_checkpoint,
                               seed=_seed_for(diffusion_model), weights=weights)
            return self._fast(_prepare_unet(model, self.device, use_fp16, use_checkpoint))

        return self.cached(key, build), config

    def secondary(self) -> nn.Module:
        def build() -> nn.Module:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(_seed_for("secondary"))
                model = SecondaryDiffusionImageNet2()
            if self.model_set == "dd-default":
                model.load_state_dict(self._weights(SECONDARY_MODEL), strict=True)
            return self._fast(model.eval().requires_grad_(False).to(self.device))

        return self.cached(("secondary",), build)

    def clip(self, name: str) -> ClipModel:
        def build() -> ClipModel:
            clip = self._build_clip(name)
            # bf16 CLIP is slower than fp32 on CPUs (many small matmuls): only the UNet uses it.
            clip.autocast = torch.float16 if self.precision == "fp16" else None
            if self.channels_last:
                clip.model.visual.to(memory_format=torch.channels_last)
            if self.compile:
                clip.encode_image = torch.compile(clip.model.encode_image)
            return clip

        return self.cached(("clip", name), build)

    def _build_clip(self, name: str) -> ClipModel:
        if self.model_set == "test-tiny":
            # Each requested CLIP becomes its own tiny model, seeded by its name.
            return build_clip(name, weights=None, device=self.device, arch=TINY_CLIP_ARCH)
        weights = None
        if self.model_set == "dd-default":

            weights = clip_weights_path(name, allow_download=self.allow_download)
            self.sha256[name] = reference_sha256(clip_entry(name), weights)[0] or ""
            quick_gelu = bool(clip_entry(name).config.get("quick_gelu"))
            return build_clip(name, weights=weights, device=self.device, quick_gelu=quick_gelu)
        return build_clip(name, weights=None, device=self.device)

    def _fast(self, model: nn.Module) -> nn.Module:
        """The opt-in channels-last layout and compilation of a convolutional model."""
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return torch.compile(model) if self.compile else model

    def lpips(self) -> nn.Module:
        """LPIPS (VGG) for the init-image loss. Its learned heads ship with the lpips package;
        the VGG16 backbone comes from the model cache for dd-default and is random otherwise."""
        def build() -> nn.Module:
            import lpips

            # lpips builds its VGG with torchvision's deprecated `pretrained=` argument, which
            # warns on every first use; the weights are ours to load, so the warning says nothing.
            with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
                warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
                torch.manual_seed(_seed_for("lpips"))
                model = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False)
            if self.model_set == "dd-default":
                load_vgg_backbone(model, self._weights(LPIPS_MODEL))
            return model.eval().requires_grad_(False).to(self.device)

        return self.cached(("lpips",), build)

    def _weights(self, name: str) -> dict[str, torch.Tensor]:

        entry = get_model(name)
        path = ensure(entry, allow_download=self.allow_download)  # checks the sha256 once per file
        self.sha256[name] = reference_sha256(entry, path)[0] or ""
        return load_weights(path)


def load_vgg_backbone(lpips_model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copies torchvision VGG16 `features.N.*` weights into LPIPS's sliced copy of the network."""
    slices = {}
    for slice_name, block in lpips_model.net.named_children():
        for index, _ in block.named_children():
            slices[int(index)] = f"{slice_name}.{index}"
    target = {}
    for key, value in state.items():
        if key.startswith("features."):
            _, index, leaf = key.split(".")
            target[f"{slices[int(index)]}.{leaf}"] = value
    missing, _ = lpips_model.net.load_state_dict(target, strict=False)
    if missing:
        raise ModelError(f"the VGG16 file does not fit LPIPS: missing {', '.join(missing[:4])}")
