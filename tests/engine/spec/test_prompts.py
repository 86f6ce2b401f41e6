"""Weighted prompts: DD's 'text:weight' syntax, with the weight stripped from the text."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from engine.errors import SpecError
from engine.spec.prompts import (
    MAX_PROMPTS,
    WeightedPrompt,
    format_prompt,
    format_prompts,
    normalized_weights,
    parse_prompt,
    parse_prompts,
)


@pytest.mark.parametrize("text,expected", [
    ("a lighthouse:2", WeightedPrompt("a lighthouse", 2.0)),
    ("a lighthouse", WeightedPrompt("a lighthouse", 1.0)),
    ("  a lighthouse : 2.5  ", WeightedPrompt("a lighthouse", 2.5)),
    ("yellow:-0.5", WeightedPrompt("yellow", -0.5)),
    ("sky:-1", WeightedPrompt("sky", -1.0)),
    ("fog:1e-1", WeightedPrompt("fog", 0.1)),
    ("fog:0", WeightedPrompt("fog", 0.0)),
    ("http://x/y.png:2", WeightedPrompt("http://x/y.png", 2.0)),
    ("http://x/y.png", WeightedPrompt("http://x/y.png", 1.0)),
    ("https://host:8443/a.png:0.5", WeightedPrompt("https://host:8443/a.png", 0.5)),
    ("a cat: portrait", WeightedPrompt("a cat: portrait", 1.0)),
    ("ratio 16:9 poster:3", WeightedPrompt("ratio 16:9 poster", 3.0)),
    ("C:/images/init.png", WeightedPrompt("C:/images/init.png", 1.0)),
])
def test_parse_prompt(text, expected):
    assert parse_prompt(text) == expected


def test_weight_suffix_is_stripped_from_the_text():
    # DD's bug was to give "a lighthouse:2" to CLIP's tokenizer; we give "a lighthouse".
    assert parse_prompt("a lighthouse:2").text == "a lighthouse"


@pytest.mark.parametrize("text,message", [
    (":2", "prompt 1 is empty"),
    ("   ", "prompt 1 is empty"),
    ("fog:nan", "finite"),
    ("fog:inf", "finite"),
    ("fog:-Infinity", "finite"),
    ("fog:1e999", "prompt 1 has weight '1e999'; allowed: -100..100"),
    ("fog:101", "-100..100"),
    ("fog:", "no weight"),
    ("x" * 1001, "1001 characters"),
    ("bad\x00byte", "U+0000"),
])
def test_parse_prompt_errors(text, message):
    with pytest.raises(SpecError) as info:
        parse_prompt(text, param="image_prompts")
    assert message in str(info.value)
    assert str(info.value).startswith("image_prompts: ") and info.value.param == "image_prompts"


def test_parse_prompts_forms():
    expected = [WeightedPrompt("a lighthouse", 2.0), WeightedPrompt("yellow", -0.5)]
    assert parse_prompts("a lighthouse:2 | yellow:-0.5") == expected
    assert parse_prompts(["a lighthouse:2", "yellow:-0.5"]) == expected
    assert parse_prompts(["a lighthouse:2 | yellow:-0.5"]) == expected
    assert parse_prompts(expected) == expected
    assert parse_prompts([{"text": "a lighthouse", "weight": 2}, {"text": "yellow",
                                                                  "weight": "-0.5"}]) == expected
    assert parse_prompts({"text": "a lighthouse"}) == [WeightedPrompt("a lighthouse", 1.0)]
    assert parse_prompts("") == [] and parse_prompts(None) == [] and parse_prompts([]) == []


def test_dict_text_is_literal_but_checked():
    # In the dict form the text is taken as is: a ':2' inside it is text, not a weight.
    assert parse_prompts([{"text": "time 12:30", "weight": 1}])[0].text == "time 12:30"
    with pytest.raises(SpecError, match="contains '\\|'"):
        parse_prompts([{"text": "a | b"}])


@pytest.mark.parametrize("value,message", [
    ("a | | b", "prompt 2 is empty: '|' separates prompts"),
    ("a ||spoiler||", "prompt 2 is empty: '|' separates prompts, so '||' or a '|' at either end"),
    ("a |", "prompt 2 is empty"),
    (["a", 5], "prompt 2 is int"),
    ([{"txt": "a"}], "unknown keys: 'txt'"),
    ([{"weight": 2}], "'text' is missing"),
    ([{"text": 3}], "not a string"),
    ([{"text": "a", "weight": True}], "weight True"),
    ([{"text": "a", "weight": [1]}], "weight a list"),
    ([{"text": "a", "weight": 10**400}], "weight a whole number of about 400 digits; allowed"),
    ("|".join(["a"] * (MAX_PROMPTS + 1)), "17 prompts given"),
    (["a"] * (MAX_PROMPTS + 1), "17 prompts given"),
    (["a | b"] * 9, "18 prompts given"),
    (42, "got int"),
])
def test_parse_prompts_errors(value, message):
    with pytest.raises(SpecError) as info:
        parse_prompts(value)
    assert message in str(info.value)
    assert info.value.param == "text_prompts"


def test_normalized_weights_divide_by_absolute_sum():
    prompts = parse_prompts("a:2 | b:-1")
    assert normalized_weights(prompts) == [2.0, -1.0]
    assert normalized_weights(parse_prompts("a | b")) == [0.5, 0.5]
    # DD divides by |Σw|, so a negative sum keeps the signs.
    assert normalized_weights(parse_prompts("a:1 | b:-3")) == [0.5, -1.5]


def test_zero_sum_error_explains_and_suggests_a_fix():
    with pytest.raises(SpecError) as info:
        normalized_weights(parse_prompts("a lighthouse:1 | yellow:-1"))
    assert str(info.value) == (
        "text_prompts: the weights sum to 0 (a lighthouse:1 | yellow:-1); DD divides by their "
        "sum, so make it non-zero — e.g. raise a positive weight: a lighthouse:2 | yellow:-1")
    with pytest.raises(SpecError, match="give a prompt a positive weight: a:1 \\| b:0"):
        normalized_weights(parse_prompts("a:0 | b:0"))
    with pytest.raises(SpecError, match="no prompts"):
        normalized_weights([])


def test_format_prompts_round_trips():
    prompts = parse_prompts("a lighthouse:2 | yellow:-0.5 | sea | a cat: portrait")
    text = format_prompts(prompts)
    assert text == "a lighthouse:2 | yellow:-0.5 | sea | a cat: portrait"
    assert parse_prompts(text) == prompts
    # Weight 1 is written when the text would otherwise be misread.
    tricky = WeightedPrompt("time 12:30", 1.0)
    assert format_prompt(tricky) == "time 12:30:1"
    assert parse_prompt(format_prompt(tricky)) == tricky
    assert format_prompt(WeightedPrompt("x", 1.0), always_weight=True) == "x:1"


safe_text = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="|"),
                    min_size=1, max_size=30).filter(lambda t: t.strip())


@given(st.lists(st.tuples(safe_text, st.floats(-100, 100, allow_nan=False)), min_size=1,
                max_size=MAX_PROMPTS))
@settings(max_examples=150, deadline=200)
def test_format_then_parse_is_identity(pairs):
    prompts = parse_prompts([{"text": text, "weight": weight} for text, weight in pairs])
    assert parse_prompts(format_prompts(prompts)) == prompts


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
        st.sampled_from(["text", "weight", "x"]) | st.text(max_size=4), inner, max_size=3),
    max_leaves=20,
)


@given(st.one_of(st.text(max_size=400), json_like))
@settings(max_examples=400, deadline=200)
def test_any_input_parses_or_raises_spec_error(value):
    try:
        prompts = parse_prompts(value, param="image_prompts")
    except SpecError as err:
        assert err.param == "image_prompts"
    else:
        assert len(prompts) <= MAX_PROMPTS
        assert all(isinstance(p, WeightedPrompt) and p.text == p.text.strip() for p in prompts)


def test_a_pasted_typographic_minus_is_a_negative_weight():
    """"fog:−0.5" copied from a web page (U+2212, or an en dash) was read as the text "fog:−0.5"
    with weight 1: the prompt meant to push away pulled towards it instead."""
    assert parse_prompts("a castle:2 | fog:\u22120.5 | rain:\u20131") == [
        WeightedPrompt("a castle", 2.0), WeightedPrompt("fog", -0.5), WeightedPrompt("rain", -1.0)]
