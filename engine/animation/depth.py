"""MiDaS v3 DPT-Large monocular depth, rebuilt on timm's ViT, for DD's 3D animation mode.

The network is a Dense Prediction Transformer: a ViT-L/16 (timm ``vit_large_patch16_384``)
whose tokens after blocks 5, 11, 17 and 23 are "reassembled" into image-like feature maps at
1/4, 1/8, 1/16 and 1/32 of the input, projected to 256 channels, fused coarse-to-fine by
residual refinement blocks, and turned into one inverse-depth channel by a small conv head.

Parameter names follow MiDaS v3 so its ``dpt_large-midas-2f21e586.pt`` state dict loads as is:
``pretrained.model.*`` (the timm ViT), ``pretrained.act_postprocess{1..4}.{0,3,4}.*`` (readout
projection, 1×1 conv, resampling conv), ``scratch.layer{1..4}_rn.weight``,
``scratch.refinenet{1..4}.{resConfUnit1,resConfUnit2}.conv{1,2}.*`` / ``.out_conv.*`` and
``scratch.output_conv.{0,2,4}.*``. Positions 1 and 2 of each act_postprocess and 1, 3, 5, 6 of
output_conv hold parameter-free steps in MiDaS (token transpose/unflatten, upsampling, ReLUs),
so the same positions hold parameter-free modules here to keep the indices. The classifier
``pretrained.model.head.*`` is never used for depth; it is dropped when loading.

Preprocessing and output follow DD (research §1.12): the RGB frame in [0, 1] is resized
(bicubic) keeping its aspect ratio so that the side closest to its 384 target becomes ~384
("minimal"), both sides rounded to multiples of 32, normalised with mean = std = 0.5; the
prediction (MiDaS inverse depth, larger = nearer) is resized bicubic back to the frame and turned
into DD's depth units by (50 − d) / 19 (larger = farther).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from engine.errors import ModelError
from engine.models.download import ensure, load_weights
from engine.models.registry import DEPTH_MODEL, get_model

DD_DEPTH_OFFSET = 50.0   # DD: depth = (50 − midas) / 19
DD_DEPTH_SCALE = 19.0


@dataclass(frozen=True)
class DPTConfig:
    """Sizes of one DPT variant."""

    vit: str                       # timm model name
    hooks: tuple[int, int, int, int]   # ViT blocks whose outputs feed the four reassemble stages
    vit_features: int              # ViT embedding width
    stage_features: tuple[int, int, int, int]   # channels after each reassemble stage
    features: int                  # fusion width
    head_features: int = 32        # hidden width of the output head
    net_size: int = 384            # preprocessing target side
    vit_kwargs: dict = field(default_factory=dict, hash=False, compare=False)


DPT_LARGE = DPTConfig("vit_large_patch16_384", (5, 11, 17, 23), 1024, (256, 512, 1024, 1024), 256)
# Toy size for tests and CPU runs: the same classes, a 4-block ViT-Tiny, 64-pixel input.
DPT_TINY = DPTConfig("vit_tiny_patch16_224", (0, 1, 2, 3), 192, (16, 32, 64, 64), 32, head_features=8,
                     net_size=64, vit_kwargs={"depth": 4, "img_size": 64})

PATCH = 16


class _ProjectReadout(nn.Module):
    """Folds the class token into every patch token: concat(patch, cls) → Linear → GELU
    (DPT's "project" readout, the one DPT-Large was trained with)."""

    def __init__(self, width: int):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(2 * width, width), nn.GELU())

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, 1:]
        cls = tokens[:, :1].expand_as(patches)
        return self.project(torch.cat([patches, cls], dim=-1))


class _Reassemble(nn.Sequential):
    """Tokens [B, 1+N, C] → feature map [B, C', gh·s, gw·s] (s = 4, 2, 1 or 1/2).

    Slots: 0 readout, 1–2 parameter-free (MiDaS' transpose and unflatten, done inline here),
    3 the 1×1 channel projection, 4 the optional resampling conv."""

    def __init__(self, width: int, out: int, stage: int):
        layers: list[nn.Module] = [_ProjectReadout(width), nn.Identity(), nn.Identity(),
                                   nn.Conv2d(width, out, kernel_size=1)]
        if stage == 0:
            layers.append(nn.ConvTranspose2d(out, out, kernel_size=4, stride=4))
        elif stage == 1:
            layers.append(nn.ConvTranspose2d(out, out, kernel_size=2, stride=2))
        elif stage == 3:
            layers.append(nn.Conv2d(out, out, kernel_size=3, stride=2, padding=1))
        super().__init__(*layers)

    def forward(self, tokens: torch.Tensor, gh: int, gw: int) -> torch.Tensor:  # type: ignore[override]
        x = self[0](tokens)
        x = x.transpose(1, 2).reshape(x.shape[0], x.shape[2], gh, gw)
        for layer in list(self)[3:]:
            x = layer(x)
        return x


class _Backbone(nn.Module):
    """timm ViT plus the four reassemble stages (MiDaS' ``pretrained`` module)."""

    def __init__(self, config: DPTConfig):
        super().__init__()
        import timm  # heavy import, only when a depth model is actually built

        self.hooks = tuple(config.hooks)
        # num_classes=0: the ImageNet classifier is unused; its checkpoint keys are dropped on load.
        self.model = timm.create_model(config.vit, pretrained=False, num_classes=0, **config.vit_kwargs)
        for i, out in enumerate(config.stage_features):
            setattr(self, f"act_postprocess{i + 1}", _Reassemble(config.vit_features, out, i))

    def _pos_embed(self, gh: int, gw: int) -> torch.Tensor:
        # The ViT was trained on one grid size; other inputs get its position grid resized
        # bilinearly (as MiDaS does), the class token's embedding unchanged.
        pos = self.model.pos_embed
        cls_pos, grid = pos[:, :1], pos[:, 1:]
        side = int(round(grid.shape[1] ** 0.5))
        if (side, side) == (gh, gw):
            return pos
        grid = grid.reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(gh, gw), mode="bilinear", align_corners=False)
        return torch.cat([cls_pos, grid.permute(0, 2, 3, 1).reshape(1, gh * gw, -1)], dim=1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        gh, gw = x.shape[-2] // PATCH, x.shape[-1] // PATCH
        vit = self.model
        tokens = vit.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([vit.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = vit.pos_drop(tokens + self._pos_embed(gh, gw))
        taps = []
        for i, block in enumerate(vit.blocks[: self.hooks[-1] + 1]):
            tokens = block(tokens)   # DPT taps raw block outputs (before the ViT's final norm)
            if i in self.hooks:
                taps.append(tokens)
        stages = [getattr(self, f"act_postprocess{i + 1}") for i in range(4)]
        return [stage(t, gh, gw) for stage, t in zip(stages, taps)]


class _ResidualConv(nn.Module):
    """x + conv2(relu(conv1(relu(x)))) (MiDaS ``ResidualConvUnit_custom`` without batch norm)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class _Fusion(nn.Module):
    """One refinement step: add the refined skip, refine, upsample (bilinear, corners aligned), 1×1 conv."""

    def __init__(self, width: int):
        super().__init__()
        self.out_conv = nn.Conv2d(width, width, kernel_size=1)
        self.resConfUnit1 = _ResidualConv(width)
        self.resConfUnit2 = _ResidualConv(width)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        # MiDaS v3 doubles the size; passing the next skip's size is the same for inputs that are
        # multiples of 32 and still lines up for any other size.
        size = size or (x.shape[-2] * 2, x.shape[-1] * 2)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class _Upsample2x(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


class _Scratch(nn.Module):
    """Channel projections, fusion blocks and the output head (MiDaS' ``scratch`` module)."""

    def __init__(self, config: DPTConfig):
        super().__init__()
        f = config.features
        for i, width in enumerate(config.stage_features):
            setattr(self, f"layer{i + 1}_rn", nn.Conv2d(width, f, kernel_size=3, padding=1, bias=False))
        for i in range(4):
            setattr(self, f"refinenet{i + 1}", _Fusion(f))
        hidden = config.head_features
        # Non-negative head: the last ReLU keeps inverse depth ≥ 0, as MiDaS' non_negative=True.
        self.output_conv = nn.Sequential(
            nn.Conv2d(f, f // 2, kernel_size=3, padding=1), _Upsample2x(),
            nn.Conv2d(f // 2, hidden, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, 1, kernel_size=1), nn.ReLU(), nn.Identity())


class DPTDepth(nn.Module):
    """DPT depth network: image [B, 3, h, w] (normalised, sides multiples of 32) → inverse depth [B, h, w]."""

    def __init__(self, config: DPTConfig = DPT_LARGE):
        super().__init__()
        self.config = config
        self.pretrained = _Backbone(config)
        self.scratch = _Scratch(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.scratch
        l1, l2, l3, l4 = self.pretrained(x)
        l1, l2, l3, l4 = s.layer1_rn(l1), s.layer2_rn(l2), s.layer3_rn(l3), s.layer4_rn(l4)
        path = s.refinenet4(l4, size=l3.shape[-2:])
        path = s.refinenet3(path, l3, size=l2.shape[-2:])
        path = s.refinenet2(path, l2, size=l1.shape[-2:])
        path = s.refinenet1(path, l1)
        return s.output_conv(path).squeeze(1)


def midas_input_size(height: int, width: int, target: int = 384, multiple: int = 32) -> tuple[int, int]:
    """DD/MiDaS "minimal" resize: one scale for both sides - whichever of target/h, target/w is
    closer to 1 - then each side rounded to the nearest multiple of 32 (never below 32)."""
    scale_h, scale_w = target / height, target / width
    scale = scale_w if abs(1 - scale_w) < abs(1 - scale_h) else scale_h

    def snap(x: float) -> int:
        return max(multiple, int(round(x / multiple)) * multiple)

    return snap(scale * height), snap(scale * width)


@torch.no_grad()
def estimate_depth(model: DPTDepth, frame: torch.Tensor) -> torch.Tensor:
    """Depth [H, W] (float32, DD units: (50 − MiDaS inverse depth)/19, larger = farther) of
    `frame` [1, 3, H, W] in [0, 1], computed on the model's device and returned on the frame's."""
    if frame.dim() != 4 or frame.shape[:2] != (1, 3):
        raise ValueError(f"expected a frame of shape [1, 3, H, W], got {tuple(frame.shape)}")
    param = next(model.parameters())
    h, w = frame.shape[-2:]
    nh, nw = midas_input_size(h, w, model.config.net_size)
    x = frame.to(device=param.device, dtype=torch.float32)
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False)  # DD: cv2 INTER_CUBIC
    x = (x - 0.5) / 0.5
    pred = model(x.to(param.dtype)).float()
    pred = F.interpolate(pred.unsqueeze(1), size=(h, w), mode="bicubic", align_corners=False)[0, 0]
    return ((DD_DEPTH_OFFSET - pred) / DD_DEPTH_SCALE).to(frame.device)


def _seeded_init(model: nn.Module, seed: int) -> None:
    """Deterministic random weights without disturbing the global RNG (for 'random' and 'tiny')."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and name.endswith("weight"):   # norm scales: 1, not noise
                p.fill_(1.0)
            elif p.dim() == 1:
                p.zero_()
            else:
                fan_in = p[0].numel() if p.dim() > 1 else 1
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)


def load_dpt_state(model: DPTDepth, state: dict[str, torch.Tensor]) -> None:
    """Load a MiDaS DPT state dict into `model` (on any device, incl. meta), strictly except for
    the unused ViT classifier. A wrapped {'model': ...} checkpoint (MiDaS' training format) is
    unwrapped. Raises ModelError naming missing/unexpected keys."""
    if isinstance(state.get("model"), dict):
        state = state["model"]
    state = {k: v for k, v in state.items() if not k.startswith("pretrained.model.head.")}
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {', '.join(keys[:5])}{' …' if len(keys) > 5 else ''}"
                           for label, keys in (("missing", missing), ("unexpected", unexpected),
                                               ("wrong shape", wrong)) if keys)
        raise ModelError(f"Depth weights do not fit the DPT-Large layout ({detail}).")
    # assign=True adopts the loaded tensors, so a model built on the meta device becomes real.
    model.load_state_dict(state, strict=True, assign=True)


def build_depth_model(kind: Literal["random", "tiny", "real"], device: torch.device | str = "cpu", *,
                      allow_download: bool = False, half: bool | None = None, seed: int = 0) -> DPTDepth:
    """A ready (eval, no grad) depth model on `device`.

    'tiny': toy DPT with seeded random weights (tests). 'random': full DPT-Large with seeded random
    weights (benchmarks). 'real': DPT-Large with MiDaS' weights through the model registry; without
    `allow_download` a missing file raises ModelError naming the download command.
    `half` (default: on for CUDA) stores the weights in fp16 to halve the ~1.3 GB it keeps resident.
    """
    device = torch.device(device)
    if kind == "tiny":
        model = DPTDepth(DPT_TINY)
        _seeded_init(model, seed)
    elif kind == "random":
        model = DPTDepth(DPT_LARGE)
        _seeded_init(model, seed)
    elif kind == "real":

        path = ensure(get_model(DEPTH_MODEL), allow_download=allow_download)
        state = load_weights(path)
        with torch.device("meta"):   # skip random init of 340 M parameters that get replaced anyway
            model = DPTDepth(DPT_LARGE)
        load_dpt_state(model, state)
    else:
        raise ValueError(f"depth model kind must be 'random', 'tiny' or 'real', not {kind!r}")
    if half is None:
        half = device.type == "cuda"
    model = model.to(device=device, dtype=torch.float16 if half else torch.float32)
    return model.eval().requires_grad_(False)
