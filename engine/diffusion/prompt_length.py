"""Which prompts CLIP does not read to the end, said in a note the user sees.

CLIP's text encoder has a fixed context: 77 tokens, its start and end marks included, so 75
BPE tokens of the prompt itself. open_clip's tokenizer silently cuts a longer prompt there;
OpenAI's `clip.tokenize`, which DD 5.x used, raised instead. We render on (users paste long
Midjourney-style prompts) but say which prompt was cut and roughly where: the words from the
first one not read whole to the end.

The count is exact (the model's own tokenizer, on the text CLIP gets: the weight already
stripped, engine/spec/prompts.py); where the words start is found word by word, which agrees
with the whole text's tokens because the tokenizer never joins tokens across whitespace.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from engine.models.pool import ClipModel, ModelPool
from engine.spec.prompts import WeightedPrompt
from engine.spec.render import RenderSpec

if TYPE_CHECKING:
    from engine.spec.animation import AnimationSpec

MARKS = 2  # the start-of-text and end-of-text tokens inside the context
TAIL_CHARS = 100  # the most of an unread end a note quotes


def unread_tail(tokenizer: object, text: str) -> str | None:
    """The end of `text` that `tokenizer`'s context leaves out, from the first word not read
    whole; None when it is read whole, or when the tokenizer cannot count: what it needs is
    open_clip's SimpleTokenizer's `encode` and `context_length` (every CLIP model DD offers)."""
    encode = getattr(tokenizer, "encode", None)
    context = getattr(tokenizer, "context_length", None)
    if encode is None or not context:
        return None
    room = context - MARKS
    if len(encode(text)) <= room:
        return None
    words, read = text.split(), 0
    for index, word in enumerate(words):
        read += len(encode(word))
        if read > room:
            return " ".join(words[index:])
    return words[-1]  # the word-by-word count fell short of the whole one: at least the last word


def prompt_length_notes(clips: Sequence[ClipModel], prompts: Iterable[tuple[str, str]]) -> list[str]:
    """One note per distinct prompt text that some CLIP model in `clips` does not read to the
    end. `prompts`: (how to name it, e.g. "prompt 2", its text) in the order the user wrote them.
    The models are named only when not all of them cut the prompt."""
    notes, seen = [], set()
    for label, text in prompts:
        if text in seen:
            continue
        seen.add(text)
        cut = {clip.name: (tail, clip.tokenizer.context_length) for clip in clips
               if (tail := unread_tail(clip.tokenizer, text)) is not None}
        if not cut:
            continue
        tail, context = next(iter(cut.values()))
        if len(tail) > TAIL_CHARS:
            tail = tail[:TAIL_CHARS - 1].rstrip() + "…"
        models = "" if len(cut) == len(clips) else f" ({', '.join(cut)})"
        notes.append(f"CLIP reads {context} tokens of a prompt{models}; it did not read the end of "
                      f"{label}: “…{tail}” — shorten it or split it into weighted prompts")
    return notes


def unread_prompt_notes(pool: ModelPool, clip_models: Sequence[str],
                        prompts: Iterable[tuple[str, str]]) -> list[str]:
    """`prompt_length_notes` for the CLIP models named (loaded from `pool`, as a render will;
    none is loaded for no prompts)."""
    prompts = list(prompts)
    return prompt_length_notes([pool.clip(name) for name in clip_models], prompts) if prompts else []


def still_prompts(spec: RenderSpec) -> list[tuple[str, str]]:
    """A still's prompts, labelled, as CLIP reads them: none at clip_guidance_scale 0, where CLIP
    reads no prompt at all."""
    return numbered([p.text for p in spec.text_prompts]) if spec.clip_guidance_scale > 0 else []


def animation_prompts(anim: AnimationSpec) -> list[tuple[str, str]]:
    """An animation's prompts, labelled by frame (`by_frame`); none where its frames are not
    guided by CLIP."""
    return by_frame(anim.text_prompts) if anim.frame_render_spec(0).clip_guidance_scale > 0 else []


def numbered(texts: Sequence[str], where: str = "") -> list[tuple[str, str]]:
    """(label, text) for prompts as the user numbers them: "the prompt" alone, else "prompt 2";
    `where` follows the label (e.g. " at frame 60")."""
    if len(texts) == 1:
        return [(f"the prompt{where}", texts[0])]
    return [(f"prompt {number}{where}", text) for number, text in enumerate(texts, 1)]


def by_frame(text_prompts: Mapping[int, Sequence[WeightedPrompt]]) -> list[tuple[str, str]]:
    """An animation's prompts, keyed by the frame they start at, as `numbered` labels them (the
    frame named when there are several keys)."""
    keys = sorted(text_prompts)
    return [labelled for frame in keys for labelled in numbered(
        [p.text for p in text_prompts[frame]], f" at frame {frame}" if len(keys) > 1 else "")]
