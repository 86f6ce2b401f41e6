"""Optical flow for video init (DD 5.4's "warp" mode): RAFT flow between consecutive video frames,
warping the previous rendered frame along it, and blending that with the next raw frame.

RAFT is torchvision's implementation (`raft_large` / `raft_small`), built with `weights=None` and
loaded from a registry file, so torchvision never downloads anything by itself. The tiny variant
for tests is raft_small with seeded random weights (its flows are meaningless but well-shaped).

Direction, as DD uses it: `flow = flow_between(model, next_raw, prev_raw)` gives, for each pixel x
of the next frame, where that content was in the previous frame: next(x) ≈ prev(x + flow(x)).
`warp_with_flow(prev_output, flow)` samples the previous *output* at x + flow(x), moving it into
the next frame's geometry; `blend_init(next_raw, warped, blend)` then makes the next init image.
"""
from __future__ import annotations

from typing import Literal, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from engine.errors import ModelError, SpecError
from engine.models.download import ensure, load_weights, reference_sha256, sha256_file
from engine.models.registry import get_model

Variant = Literal["large", "small"]
FrameLike = Union[Image.Image, np.ndarray, torch.Tensor]

DEFAULT_FLOW_MODEL = "raft_large_C_T_SKHT_V2"   # torchvision's default RAFT weights
DEFAULT_ITERS = 20                              # DD's RAFT iterations
DEFAULT_BLEND = 0.999                           # DD's video_init_flow_blend


def build_raft(variant: Variant = "large") -> torch.nn.Module:
    """RAFT's architecture with untrained weights (nothing is downloaded)."""
    from torchvision.models.optical_flow import raft_large, raft_small
    if variant not in ("large", "small"):
        raise ModelError(f"RAFT variant must be 'large' or 'small', got {variant!r}.")
    return (raft_large if variant == "large" else raft_small)(weights=None, progress=False)


def random_raft(variant: Variant = "small", seed: int = 0) -> torch.nn.Module:
    """RAFT with seeded random weights, in eval mode: the 'tiny' flow model for tests and CPU runs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_raft(variant)
    return model.eval()


def load_raft(name: str = DEFAULT_FLOW_MODEL, *, allow_download: bool = False,
              device: str | torch.device = "cpu") -> torch.nn.Module:
    """RAFT with real weights from the registry entry `name` (kind 'flow'), in eval mode on `device`.

    torchvision publishes only the first 8 hex digits of each file's SHA-256 (in its file name);
    the registry therefore trusts the first download, and this function also checks that prefix."""
    entry = get_model(name)
    if entry.kind != "flow":
        raise ModelError(f"{name!r} is a {entry.kind} model, not an optical-flow model.")
    path = ensure(entry, allow_download=allow_download)
    prefix = entry.config.get("sha256_prefix")
    if prefix:
        digest = reference_sha256(entry, path)[0] or sha256_file(path)
        if not digest.startswith(prefix):
            raise ModelError(f"{path} does not match torchvision's published checksum prefix {prefix} "
                             f"(got {digest[:8]}). Delete it and run `disco models download {name}`.")
    model = build_raft(entry.config["variant"])
    try:
        model.load_state_dict(load_weights(path))
    except RuntimeError as err:  # wrong or truncated file: the keys or shapes do not match
        raise ModelError(f"{path} is not a torchvision RAFT-{entry.config['variant']} state_dict ({err}). "
                         f"Delete it and run `disco models download {name}`.") from err
    return model.eval().to(device)


def _to_batch(frame: FrameLike) -> torch.Tensor:
    """A frame as float [1, 3, H, W] in [0, 1]. Tensors are taken as [3, H, W] or [1, 3, H, W] in [0, 1]."""
    if isinstance(frame, torch.Tensor):
        tensor = frame.float()
        return tensor.unsqueeze(0) if tensor.dim() == 3 else tensor
    array = np.asarray(frame.convert("RGB") if isinstance(frame, Image.Image) else frame)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"A frame must be a PIL image, a uint8 array [H, W, 3] or a tensor; "
                         f"got {array.dtype} {array.shape}.")
    return torch.tensor(array).permute(2, 0, 1).unsqueeze(0).float().div(255)


def _like(result: torch.Tensor, original: FrameLike) -> FrameLike:
    """`result` ([1, 3, H, W] in [0, 1]) converted back to `original`'s type."""
    if isinstance(original, torch.Tensor):
        return result.squeeze(0) if original.dim() == 3 else result
    array = result[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB") if isinstance(original, Image.Image) else array


def _raft_side(n: int) -> int:
    """RAFT's input side for a frame side n: a multiple of 8 (its features are 1/8 size) and at least
    128, because its 4-level correlation pyramid needs 16 feature pixels per side."""
    return max(128, -(-n // 8) * 8)


@torch.no_grad()
def flow_between(model: torch.nn.Module, frame_a: FrameLike, frame_b: FrameLike,
                 iters: int = DEFAULT_ITERS) -> torch.Tensor:
    """Flow [2, H, W] (x then y, in pixels of frame_a's size) with frame_a(x) ≈ frame_b(x + flow(x)).

    RAFT needs sides divisible by 8 and at least 128, so both frames are resized (bilinear) up to
    the next such size, and the flow is resized back and its components rescaled to the original pixel units.
    Inputs go in normalised to [-1, 1], as torchvision's RAFT weights expect. The result is on the
    model's device."""
    a, b = _to_batch(frame_a), _to_batch(frame_b)
    if a.shape != b.shape:
        raise ValueError(f"Both frames need the same size for optical flow; got {tuple(a.shape[-2:])} "
                         f"and {tuple(b.shape[-2:])}.")
    if iters < 1:
        raise SpecError(f"RAFT iterations must be at least 1, got {iters}. DD uses {DEFAULT_ITERS}.", "flow_iters")
    device = next(model.parameters()).device
    h, w = a.shape[-2:]
    h8, w8 = _raft_side(h), _raft_side(w)
    pair = torch.cat([a, b]).to(device)
    if (h8, w8) != (h, w):
        pair = F.interpolate(pair, size=(h8, w8), mode="bilinear", align_corners=False)
    pair = pair * 2 - 1
    flow = model(pair[:1], pair[1:], num_flow_updates=iters)[-1]  # RAFT returns every refinement
    if (h8, w8) != (h, w):
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
        flow = flow * torch.tensor([w / w8, h / h8], device=device).view(1, 2, 1, 1)
    return flow[0].float()


def warp_with_flow(image: FrameLike, flow: torch.Tensor | np.ndarray) -> FrameLike:
    """Backward warp: out(x) = image(x + flow(x)), bilinear, returned in `image`'s type.

    With a constant flow of (+d, 0) the content moves d pixels to the left. Samples outside the
    image repeat the nearest edge pixel ('border'), not black as DD's cv2.remap default gives:
    black borders would be carried into the next init image and compound frame after frame."""
    batch = _to_batch(image)
    flow = torch.as_tensor(flow, dtype=torch.float32, device=batch.device)
    if flow.dim() == 3 and flow.shape[-1] == 2 and flow.shape[0] != 2:
        flow = flow.permute(2, 0, 1)  # DD stores flows as [H, W, 2] .npy files
    _, _, h, w = batch.shape
    if tuple(flow.shape) != (2, h, w):
        raise ValueError(f"The flow must be [2, {h}, {w}] for a {w}x{h} image; got {tuple(flow.shape)}.")
    ys, xs = torch.meshgrid(torch.arange(h, device=batch.device, dtype=torch.float32),
                            torch.arange(w, device=batch.device, dtype=torch.float32), indexing="ij")
    # grid_sample wants sampling positions in [-1, 1]; with align_corners=True, -1 and 1 are the
    # centres of the first and last pixels, so pixel coordinates map linearly and exactly.
    gx = (xs + flow[0]) * (2 / max(w - 1, 1)) - 1
    gy = (ys + flow[1]) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(0).expand(batch.shape[0], -1, -1, -1)
    warped = F.grid_sample(batch, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return _like(warped, image)


def blend_init(raw_frame: FrameLike, warped_prev: FrameLike, blend: float = DEFAULT_BLEND) -> FrameLike:
    """DD's init image for video frame n > 0: (1 − blend)·raw + blend·warped, in `raw_frame`'s type."""
    if not 0.0 <= blend <= 1.0:
        raise SpecError(f"video_init_flow_blend must be between 0 and 1, got {blend}. DD uses {DEFAULT_BLEND}: "
                        "higher keeps more of the previous rendered frame.", "video_init_flow_blend")
    raw, warped = _to_batch(raw_frame), _to_batch(warped_prev)
    if raw.shape != warped.shape:
        raise ValueError(f"The raw frame {tuple(raw.shape[-2:])} and the warped frame "
                         f"{tuple(warped.shape[-2:])} must have the same size.")
    return _like(raw * (1 - blend) + warped.to(raw.device) * blend, raw_frame)
