"""The note that CLIP did not read a prompt to its end: counted with the model's own tokenizer
(open_clip's, as for every CLIP model DD offers), on the text without its weight."""
from __future__ import annotations

from functools import lru_cache

import open_clip
import pytest

from engine.diffusion.prompt_length import TAIL_CHARS, numbered, prompt_length_notes, unread_tail
from engine.models.pool import ClipModel
from engine.spec.render import RenderSpec

LONG = ("a beautiful painting of a lighthouse on a cliff above a stormy sea at dusk, dramatic clouds, "
        "crashing waves, seagulls, warm light in the windows, by greg rutkowski and thomas kinkade, "
        "highly detailed, matte painting, volumetric lighting, cinematic, unreal engine, octane render, "
        "artstation hq, concept art, sharp focus, golden hour, trending on artstation, 8k")


@lru_cache(maxsize=None)
def tokenizer(arch: str = "ViT-B-32", context_length: int | None = None):
    made = open_clip.get_tokenizer(arch)
    if context_length:
        made.context_length = context_length
    return made


def clip(name: str = "ViT-B-32::openai", context_length: int | None = None) -> ClipModel:
    return ClipModel(name=name, model=None, tokenizer=tokenizer(context_length=context_length), cut_size=224)


@pytest.mark.parametrize("arch", ["ViT-B-32", "RN50", "ViT-L-14"])
def test_every_clip_dd_offers_has_a_tokenizer_that_counts_and_cuts_at_77(arch):
    made = open_clip.get_tokenizer(arch)
    assert made.context_length == 77 and callable(made.encode)
    assert len(made.encode(LONG)) == 77  # 75 fit between the start and end marks


def test_the_words_past_75_tokens_are_the_unread_end_exactly_where_the_tokenizer_cuts():
    cats = "cat " * 75
    assert unread_tail(tokenizer(), cats.strip()) is None  # 75 tokens: read whole
    assert unread_tail(tokenizer(), cats + "dog") == "dog"
    assert unread_tail(tokenizer(), LONG) == "8k"
    read = [t for t in tokenizer()([LONG])[0].tolist() if t][1:-1]  # what CLIP gets, without the marks
    assert tokenizer().encode(LONG)[:75] == read  # "8k" is the two tokens past them
    assert tokenizer().decode(tokenizer().encode(LONG)[75:]).split() == ["8", "k"]


def test_a_short_prompt_has_no_note_a_long_one_names_its_unread_end_without_its_weight():
    spec = RenderSpec(text_prompts=["a lighthouse:2", f"{LONG}:0.5", "a lighthouse:-1"])
    notes = prompt_length_notes([clip()], numbered([p.text for p in spec.text_prompts]))
    assert notes == ["CLIP reads 77 tokens of a prompt; it did not read the end of prompt 2: “…8k” — "
                     "shorten it or split it into weighted prompts"]
    assert prompt_length_notes([clip()], numbered(["a lighthouse"])) == []
    assert "the prompt: “…8k”" in prompt_length_notes([clip()], numbered([LONG]))[0]


def test_one_note_per_text_models_named_only_when_they_differ_and_the_quote_is_bounded():
    twice = numbered([LONG, LONG], " at frame 0") + numbered([LONG], " at frame 60")
    assert len(prompt_length_notes([clip(), clip("RN50::openai")], twice)) == 1
    wide = clip("wide::test", context_length=300)
    assert "(ViT-B-32::openai)" in prompt_length_notes([clip(), wide], numbered([LONG]))[0]
    assert prompt_length_notes([wide], numbered([LONG])) == []
    very_long = LONG + ", " + "golden light " * 40
    quoted = prompt_length_notes([clip()], numbered([very_long]))[0].split("“…")[1].split("”")[0]
    assert len(quoted) == TAIL_CHARS and quoted.startswith("8k, golden light") and quoted.endswith("…")


def test_an_animations_prompts_are_named_by_the_frame_they_start_at():
    from engine.diffusion.prompt_length import by_frame
    from engine.spec.prompts import WeightedPrompt as P

    assert by_frame({0: [P("a castle", 1)]}) == [("the prompt", "a castle")]
    assert by_frame({60: [P("a city", 1), P("fog", -0.5)], 0: [P("a castle", 1)]}) == [
        ("the prompt at frame 0", "a castle"), ("prompt 1 at frame 60", "a city"), ("prompt 2 at frame 60", "fog")]
    notes = prompt_length_notes([clip()], by_frame({0: [P("a castle", 1)], 60: [P(LONG, 1)]}))
    assert len(notes) == 1 and "of the prompt at frame 60:" in notes[0]


def test_no_prompt_is_counted_where_clip_does_not_guide():
    """At clip_guidance_scale 0 CLIP reads no prompt: no note, and no CLIP model loads to count."""
    from engine.diffusion.prompt_length import still_prompts, unread_prompt_notes

    prompts = [("the prompt", LONG)]
    assert still_prompts(RenderSpec(text_prompts=LONG, clip_guidance_scale=0)) == []
    assert still_prompts(RenderSpec(text_prompts=LONG)) == prompts

    class NoModels:
        def clip(self, name):
            raise AssertionError(f"{name} loaded for no prompt")
    assert unread_prompt_notes(NoModels(), ["ViT-B-32::openai"], still_prompts(RenderSpec(text_prompts=LONG, clip_guidance_scale=0))) == []
