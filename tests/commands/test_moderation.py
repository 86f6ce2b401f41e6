"""Banned words on what renders (commands/moderation.py): the normal form, whole-word matching,
and every text of a still, an animation and a study. The bot's paths are tested end to end in
tests/e2e/test_admin.py."""
from __future__ import annotations

import pytest

from commands.errors import CommandError
from commands.job_options import DiscoOptions, JobLimits, build_job
from commands.moderation import check_banned_word, check_spec, find_banned, normalise, rendered_texts
from engine.spec.animation import AnimationSpec
from engine.spec.render import RenderSpec
from engine.spec.study import build_study

BANNED = ("forbidden", "dark souls")


@pytest.mark.parametrize("text", [
    "a forbidden cat",
    "A FORBIDDEN cat",
    "a ｆｏｒｂｉｄｄｅｎ cat",                 # full-width letters (NFKC)
    "a forb\u200bidden cat",                  # zero-width space
    "a forb\u200didden cat",                  # zero-width joiner
    "a forbi\u00addden cat",                  # soft hyphen
    "a fo\u0301rbidde\u0308n cat",            # combining marks
    "a FORBİDDEN cat",                        # dotted capital I folds to i + a mark
    "a f o r b i d d e n cat",                # spelled out
    "a f.o.r.b.i.d.d.e.n cat",
    "a cat,forbidden!",
    "dark\n\tsouls",                          # separators collapse
    "DARK__souls boss",
])
def test_banned_words_are_found_however_they_are_written(text):
    assert find_banned([text], BANNED) is not None


@pytest.mark.parametrize("text", ["forbiddenly", "unforbidden", "a dark soul", "darksouls", "souls dark"])
def test_only_whole_words_match(text):
    assert find_banned([text], BANNED) is None


def test_normal_form():
    assert normalise("  Ｃａｆé—au\u200b LAIT!! ") == "cafe au lait"
    assert normalise("\u200b\u0301") == ""


def test_a_banned_phrase_typed_with_tricks_still_matches_plain_text():
    assert find_banned(["dark souls boss"], ["ＤＡＲＫ   Souls"]) == "ＤＡＲＫ   Souls"


def test_every_rendered_text_is_checked():
    render = RenderSpec(text_prompts=[{"text": "a dog", "weight": 1}])
    animation = AnimationSpec(render=render, max_frames=10,
                              text_prompts={0: [{"text": "a dog"}], 5: [{"text": "forbidden"}]})
    assert "forbidden" in rendered_texts(animation)
    study = build_study(render, 'text_prompts="a cat","a forbidden cat"')
    assert "a forbidden cat" in rendered_texts(study)
    for spec in (animation, study):
        with pytest.raises(CommandError) as err:
            check_spec(spec, BANNED)
        assert err.value.rule == "banned_words" and "rephrase" in str(err.value)
    check_spec(render, BANNED)


@pytest.mark.parametrize("options", [
    DiscoOptions(prompt="--steps 20", settings='text_prompts="a forbidd\\u0065n cat"'),
    DiscoOptions(prompt="--steps 20", settings_file=b'{"text_prompts": {"0": ["a forbidden cat"]}}'),
    DiscoOptions(prompt="a cat --no forbidden"),
])
def test_prompts_from_settings_and_files_are_checked_after_decoding(options):
    parsed = build_job(options, limits=JobLimits())
    with pytest.raises(CommandError):
        check_spec(parsed.spec, BANNED)


def test_a_banned_word_with_nothing_to_match_is_refused():
    assert check_banned_word("Gore") == "Gore"
    with pytest.raises(CommandError) as err:
        check_banned_word("!!\u200b")
    assert err.value.rule == "banned_words"
