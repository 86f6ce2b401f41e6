"""An image described the way clip-interrogator's "classic" mode does it, with DD's own CLIP
models and no caption model: the image is embedded once per CLIP model, every phrase of the
word lists (engine/describe/words/, with their source and licence) once per model in one batch
and kept in the pool, and each list ranked by the mean cosine similarity over the models. The answer is a
DD prompt: the best medium, artist and movement as one prompt of weight 2, then the best
flavours at weight 1 each.

Deterministic for a given image and model set: no random draws (the whole image, resized with
Lanczos, is the one cut), scores rounded to 6 decimals before sorting, ties kept in list order.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import torch
import torch.nn.functional as F
from PIL import Image

from engine.diffusion.images import pil_to_unit
from engine.models.pool import ClipModel, ModelPool
from engine.spec.schedules import format_number

LISTS = ("mediums", "movements", "artists", "flavors")
MAIN_WEIGHT, FLAVOR_WEIGHT, FLAVORS_IN_PROMPT = 2, 1, 3
MAX_SHOWN = 5  # per list, in the ranking


@dataclass(frozen=True)
class Ranked:
    phrase: str
    score: float  # mean cosine similarity over the CLIP models


@dataclass(frozen=True)
class Description:
    clip_models: tuple[str, ...]
    ranked: dict[str, tuple[Ranked, ...]]  # list name -> best first (at most MAX_SHOWN)
    prompt: str                            # DD syntax: "text:weight | text:weight"


@lru_cache(maxsize=1)
def word_lists() -> dict[str, tuple[str, ...]]:
    """The shipped lists, one phrase a line (blank lines and duplicates dropped)."""
    folder = resources.files("engine.describe") / "words"
    lists = {}
    for name in LISTS:
        lines = (folder / f"{name}.txt").read_text(encoding="utf-8").splitlines()
        lists[name] = tuple(dict.fromkeys(line.strip() for line in lines if line.strip()))
    return lists


def label(list_name: str, phrase: str) -> str:
    """What CLIP reads for a phrase: artists as "by NAME"."""
    return f"by {phrase}" if list_name == "artists" else phrase


@torch.no_grad()
def describe_image(pool: ModelPool, image: Image.Image, clip_models: list[str] | tuple[str, ...]) -> Description:
    """Rank every list against `image` with `clip_models` (names as in RenderSpec.clip_models)."""
    totals = {name: torch.zeros(len(phrases), dtype=torch.float64) for name, phrases in word_lists().items()}
    for name in clip_models:
        clip = pool.clip(name)
        pixels = pil_to_unit(image.convert("RGB").resize((clip.cut_size, clip.cut_size), Image.Resampling.LANCZOS),
                             pool.device)
        seen = F.normalize(clip.encode(pixels).float(), dim=-1)
        for list_name in word_lists():
            totals[list_name] += (_list_embeddings(pool, clip, list_name) @ seen[0]).double().cpu()
    ranked = {name: _best(word_lists()[name], scores / len(clip_models)) for name, scores in totals.items()}
    return Description(tuple(clip_models), ranked, weighted_prompt(ranked))


def _list_embeddings(pool: ModelPool, clip: ClipModel, list_name: str) -> torch.Tensor:
    """A list's normalised text embeddings [n, d] for one CLIP model: one batch through the text
    tower, then kept in the pool with the prompts' embeddings."""
    def build() -> torch.Tensor:
        labels = [label(list_name, phrase) for phrase in word_lists()[list_name]]
        tokens = clip.tokenizer(labels).to(pool.device)
        return F.normalize(clip.model.encode_text(tokens).float(), dim=-1)

    return pool.cached(("describe", clip.name, list_name), build)


def _best(phrases: tuple[str, ...], scores: torch.Tensor) -> tuple[Ranked, ...]:
    rounded = [round(float(s), 6) for s in scores]
    order = sorted(range(len(phrases)), key=lambda i: (-rounded[i], i))
    return tuple(Ranked(phrases[i], rounded[i]) for i in order[:MAX_SHOWN])


def weighted_prompt(ranked: dict[str, tuple[Ranked, ...]]) -> str:
    """'<medium> by <artist>, <movement>:2 | <flavour>:1 | …' from the rankings."""
    main = f"{ranked['mediums'][0].phrase} {label('artists', ranked['artists'][0].phrase)}, " \
           f"{ranked['movements'][0].phrase}"
    parts = [f"{main}:{format_number(MAIN_WEIGHT)}"]
    parts += [f"{r.phrase}:{format_number(FLAVOR_WEIGHT)}" for r in ranked["flavors"][:FLAVORS_IN_PROMPT]]
    return " | ".join(parts)
