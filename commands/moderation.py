"""Banned words, checked on what a job will render: every text prompt of its final spec.

The check runs on the spec that is about to be queued (`check_spec`), after every way a prompt can
arrive has been applied: the prompt option, `--flags`, the settings option and file (JSON escapes
already decoded), presets, re-runs and buttons, every keyframed prompt of an animation and every
cell of a study. Checking what was typed instead would miss all of those.

Both the text and the banned words are compared in one normal form (`normalise`): Unicode NFKC
(full-width and other compatibility letters become plain ones), case-folded, zero-width and other
invisible format characters and combining marks removed, and every run of separators (spaces,
punctuation) collapsed to one space. Words match whole ("gore" does not refuse "gorgeous"),
except inside a word spelled out letter by letter: "f o r b i d" and "f.o.r.b.i.d" match "forbid".
"""
from __future__ import annotations

import unicodedata
from typing import Iterable

from commands.errors import CommandError
from engine.spec.animation import AnimationSpec
from engine.spec.render import RenderSpec
from engine.spec.study import StudySpec

RULE = "banned_words"


def normalise(text: str) -> str:
    """`text` in the form banned words are compared in: plain letters and digits, one space
    between words."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Decompose so accents become combining marks; drop the marks and the invisible format
    # characters (zero-width joiners, soft hyphens) so they cannot split a word.
    kept = [" " if unicodedata.category(c) == "Cc" else c
            for c in unicodedata.normalize("NFD", folded)
            if unicodedata.category(c) == "Cc" or not unicodedata.category(c).startswith(("M", "C"))]
    return " ".join("".join(c if c.isalnum() else " " for c in kept).split())


def _spelled_out(words: list[str]) -> list[str]:
    """Each run of two or more one-letter words, joined ('a f o r b i d' → 'aforbid')."""
    runs, run = [], []
    for word in [*words, ""]:
        if len(word) == 1:
            run.append(word)
            continue
        if len(run) > 1:
            runs.append("".join(run))
        run = []
    return runs


def find_banned(texts: Iterable[str], banned_words: Iterable[str]) -> str | None:
    """The first banned word or phrase that appears whole in any of `texts` (or spelled out
    letter by letter), else None."""
    normal = [normalise(text) for text in texts]
    whole = [f" {text} " for text in normal]
    spelled = [run for text in normal for run in _spelled_out(text.split())]
    for word in banned_words:
        needle = normalise(word)
        if not needle:
            continue
        if any(f" {needle} " in text for text in whole) or any(
                needle.replace(" ", "") in run for run in spelled):
            return word
    return None


def rendered_texts(spec: RenderSpec | AnimationSpec | StudySpec) -> list[str]:
    """Every text prompt the job will render: a still's, every keyframed prompt of an animation,
    every cell of a study (an axis may vary the prompts)."""
    if isinstance(spec, AnimationSpec):
        frames = [p.text for prompts in spec.text_prompts.values() for p in prompts]
        return frames + rendered_texts(spec.render)
    if isinstance(spec, StudySpec):
        return [text for cell in spec.cells() for text in rendered_texts(cell.spec)]
    return [p.text for p in spec.text_prompts]


def check_spec(spec: RenderSpec | AnimationSpec | StudySpec, banned_words: Iterable[str]) -> None:
    """Refuse a job whose prompts contain a banned word (rule `banned_words`)."""
    banned = find_banned(rendered_texts(spec), banned_words)
    if banned:
        raise CommandError(f"the prompts contain '{banned}', a word or phrase this server's admins "
                           f"banned ({RULE}); rephrase them without it", "text_prompts", rule=RULE)


def check_banned_word(word: str) -> str:
    """An admin's new banned word, refused when nothing of it could ever match."""
    if not normalise(word):
        raise CommandError(f"'{word}' has no letters or digits, so it could never match a prompt "
                           f"({RULE}); ban a word or phrase", "word", rule=RULE)
    return word
