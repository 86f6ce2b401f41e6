"""Prompt embeddings for guidance: text prompts (cached per CLIP model), image prompts (DD's
16 legacy cutouts each) and fuzzy copies, with DD's weight normalisation."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from engine.diffusion.cutouts import image_prompt_cutouts
from engine.diffusion.images import image_to_tensor
from engine.diffusion.rng import Generators
from engine.errors import SpecError
from engine.media.still_formats import FORMAT_LIST
from engine.media.stills import UnusableImage, read_still
from engine.models.pool import ClipModel, ModelPool

IMAGE_PROMPT_CUTS = 16
FUZZY_COPIES = 25
MAX_IMAGE_BYTES = 50 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000


def load_image(path: str, param: str) -> Image.Image:
    """A local image file, bounded in bytes and pixels; every failure is a SpecError."""
    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError:
        raise SpecError(f"{param}: no image file at {path!r}; give the path of a {FORMAT_LIST} file",
                        param) from None
    if size > MAX_IMAGE_BYTES:
        raise SpecError(f"{param}: {path!r} is {size / 2**20:.1f} MB; the limit is "
                        f"{MAX_IMAGE_BYTES // 2**20} MB — use a smaller file", param)
    try:
        return read_still(file, MAX_IMAGE_PIXELS, fix="use")  # as the bot checked at upload, upright
    except UnusableImage as err:
        raise SpecError(f"{param}: {path!r} {err}", param) from None


@torch.no_grad()
def text_embedding(pool: ModelPool, clip: ClipModel, text: str) -> torch.Tensor:
    """CLIP's text embedding [1, d], computed once per (model, text) while the pool lives."""
    def build() -> torch.Tensor:
        tokens = clip.tokenizer([text]).to(pool.device)
        return clip.model.encode_text(tokens).float()

    return pool.cached(("text", clip.name, text), build)


@torch.no_grad()
def prompt_embeddings(pool: ModelPool, clip: ClipModel, spec, gens: Generators,
                      device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets [n, d] and weights [n] for one CLIP model, weights divided by |Σw| as DD does."""
    targets, weights = [], []
    for prompt in spec.text_prompts:
        embed = text_embedding(pool, clip, prompt.text)
        targets.append(embed)
        weights.append(prompt.weight)
        if spec.fuzzy_prompt:
            # DD clamped the fuzzed embeddings to [0, 1] although CLIP embeddings are signed.
            noise = torch.randn((FUZZY_COPIES, embed.shape[1]), generator=gens.device,
                                device=gens.device.device).to(device)
            targets.append(embed + noise * spec.rand_mag)
            weights += [prompt.weight] * FUZZY_COPIES
    for prompt in spec.image_prompts:
        image = load_image(prompt.text, "image_prompts")
        # DD scales the image so its short side is min(width, height, its own short side).
        short = min(spec.width, spec.height, *image.size)
        scale = short / min(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        pixels = image_to_tensor(image, *size, device).add(1).div(2)
        cuts = image_prompt_cutouts(pixels, clip.cut_size, IMAGE_PROMPT_CUTS, gens)
        targets.append(clip.encode(cuts))
        weights += [prompt.weight / IMAGE_PROMPT_CUTS] * IMAGE_PROMPT_CUTS
    if not targets:
        raise SpecError("text_prompts: there is nothing to guide towards; give at least one text or "
                        "image prompt", "text_prompts")
    weight_tensor = torch.tensor(weights, device=device)
    total = float(weight_tensor.sum().abs())
    if total < 1e-3:
        raise SpecError("text_prompts: the prompt weights sum to 0; DD divides by their sum, so make "
                        "it non-zero (for example raise a positive weight: 'a lighthouse:2 | yellow:-1')",
                        "text_prompts")
    return torch.cat(targets), weight_tensor / total
