"""The /disco prompt string (DD and Midjourney weights, --no, inline flags) and the sizes."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from commands.errors import CommandError
from commands.prompt_syntax import MAX_PROMPT_CHARS, parse_prompt_text
from commands.sizes import SIZE_CHOICES, aspect_size, fit_pixels, parse_ratio, side_for_ratio, size_choice
from engine.errors import SpecError
from engine.spec.prompts import MAX_PROMPTS, WeightedPrompt as P


@pytest.mark.parametrize("text,prompts,syntax", [
    ("a lighthouse:2 | storm:-0.5", [P("a lighthouse", 2), P("storm", -0.5)], "dd"),
    ("a lighthouse in a storm", [P("a lighthouse in a storm", 1)], "dd"),
    ("a lighthouse::2 storm::-0.5", [P("a lighthouse", 2), P("storm", -0.5)], "midjourney"),
    ("hot:: dog", [P("hot", 1), P("dog", 1)], "midjourney"),
    ("a lighthouse::2 storm", [P("a lighthouse", 2), P("storm", 1)], "midjourney"),
    ("a cat::", [P("a cat", 1)], "midjourney"),
    ("still life:: fruit::-.5", [P("still life", 1), P("fruit", -0.5)], "midjourney"),
    ("a cat: portrait::2", [P("a cat: portrait", 2)], "midjourney"),
    ("", [], "none"),
])
def test_prompt_syntaxes(text, prompts, syntax):
    parsed = parse_prompt_text(text)
    assert parsed.prompts == prompts and parsed.syntax == syntax


@pytest.mark.parametrize("text,needle", [
    ("a::2 | b", "pick one syntax"),
    ("a:2::3", "pick one syntax"),
    ("::2 a", "no text before it"),
    ("a::-1 b::0.5", "must stay above 0"),
])
def test_prompt_syntax_errors_name_the_fix(text, needle):
    with pytest.raises(CommandError, match=needle):
        parse_prompt_text(text)


def test_no_alone_is_midjourneys_minus_half():
    parsed = parse_prompt_text('a cat --no "red sky"')
    assert parsed.all_prompts == [P("a cat", 1), P("red sky", -0.5)]


def test_no_items_share_half_the_positive_weight():
    parsed = parse_prompt_text("a cat::3 dog --no text, blur, watermark, frame")
    assert [p.weight for p in parsed.negatives] == [-0.5] * 4  # 4 items share -0.5 × (3 + 1)
    assert sum(p.weight for p in parsed.all_prompts) > 0


def test_no_cannot_make_the_total_non_positive():
    with pytest.raises(CommandError, match=r"give the main prompt more weight, e.g. 'a:2.4'"):
        parse_prompt_text("a:1 | b:-0.9 --no c")
    with pytest.raises(CommandError, match="add a prompt with a positive weight"):
        parse_prompt_text("a:-1 --no c")


def test_flags_map_to_settings():
    parsed = parse_prompt_text(
        "a lighthouse --seed 42 --steps 250 --ar 16:9 --w 1024 --cgs 1e4 --cutn 2 --skip 5 --n 3 "
        "--model portrait_generator_v0 --sampler plms --eta=0.5 --skip_augs --set \"range_scale=100; "
        "cut_overview=[12]*400+[4]*600\"")
    assert parsed.flags == {
        "seed": 42, "steps": 250, "aspect_ratio": (16.0, 9.0), "width": 1024,
        "clip_guidance_scale": 10000.0, "cutn_batches": 2, "skip_steps": 5, "n_batches": 3,
        "diffusion_model": "portrait_generator_v001", "sampling_mode": "plms", "eta": 0.5,
        "skip_augs": True, "range_scale": 100, "cut_overview": "[12]*400+[4]*600"}
    assert parsed.flag_names["range_scale"] == "--set range_scale"
    assert parsed.prompts == [P("a lighthouse", 1)]


def test_phone_dashes_and_curly_quotes():
    parsed = parse_prompt_text("a cat \u2014steps 100 \u2014no \u201cred sky\u201d")
    assert parsed.flags == {"steps": 100} and parsed.no_items == ["red sky"]
    assert any("long dash" in note for note in parsed.notes)


def test_one_dash_before_a_flag_and_its_value_is_the_flag():
    parsed = parse_prompt_text("a cat -steps 100 -AR 16:9 -no fog -seed=3")
    assert parsed.flags == {"steps": 100, "aspect_ratio": (16.0, 9.0), "seed": 3}
    assert parsed.no_items == ["fog"] and parsed.prompts == [P("a cat", 1)]
    assert "read -name before a value as the flag --name" in parsed.notes
    for text in ("ice -cold tea", "a city -set in the future", "a cat -steps", "a cat -seed -3",
                 "high-steps art", "a collage -images of cats"):
        prompt = parse_prompt_text(text)
        assert (prompt.flags, prompt.notes, prompt.prompts) == ({}, [], [P(text, 1)]), text


@pytest.mark.parametrize("text,needle", [
    ("a --stpes 4", "did you mean --steps"),
    ("a --stylize 400", "Midjourney parameter.*--cgs"),
    ("a --ar 16:9 in a hat", "takes one value"),
    ("a --seed", "needs a value, e.g. --seed 42"),
    ("a --seed 1 --set seed=2", "already set by --seed"),
    ("a --init_image /etc/passwd", "attachments only"),
    ("a --set image_prompts=/etc/x.png", "attachments only"),
    ("a --text_prompts b", "before the flags"),
    ('a --no "red', "never closed"),
    ("a --no", "needs what to leave out"),
    ("a --ar 40:1", "wider than 16:1"),
    ("a --ar wide", "not an aspect ratio"),
    ("a --size hugeish", "not a size choice"),
    ("a --set stpes=4", "did you mean 'steps'"),
])
def test_flag_errors_name_the_rule_and_fix(text, needle):
    with pytest.raises(SpecError, match=needle):
        parse_prompt_text(text)


def test_bounds():
    with pytest.raises(CommandError, match=f"at most {MAX_PROMPT_CHARS}"):
        parse_prompt_text("a" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(CommandError, match=f"at most {MAX_PROMPTS}"):
        parse_prompt_text(" | ".join("p" for _ in range(MAX_PROMPTS)) + " --no x")


def test_dashes_inside_words_are_prompt_text():
    parsed = parse_prompt_text("a well--known cat -- at dusk")
    assert parsed.prompts == [P("a well--known cat -- at dusk", 1)] and not parsed.flags


syntax_soup = st.lists(st.sampled_from(
    ["a", "cat", " ", ":", "::", "|", "2", "-0.5", ".", "--no", "--ar", "16:9", "--seed", "--set",
     "=", ";", '"', "\u201c", "\u2014", "--steps", "1e999", "--w", ",", "--x", "[", "]", "\n"]),
    max_size=40).map("".join)


@given(st.one_of(syntax_soup, st.text(max_size=300)))
@settings(max_examples=300, deadline=300)
def test_any_prompt_parses_or_raises_spec_error(text):
    try:
        parsed = parse_prompt_text(text)
    except SpecError as err:  # CommandError included
        assert str(err)
    else:
        assert len(parsed.all_prompts) <= MAX_PROMPTS
        assert all(p.text and p.text == p.text.strip() for p in parsed.all_prompts)


# ---- sizes ----------------------------------------------------------------------------------

def test_size_choices_fit_discord_and_dd():
    assert len(SIZE_CHOICES) <= 25
    for name, choice in SIZE_CHOICES.items():
        assert len(name) <= 100 and len(choice.label) <= 100
        assert choice.width % 64 == 0 and choice.height % 64 == 0
        assert choice.width * choice.height <= 1280 * 768  # none costs more than DD's default
    assert size_choice(" Small Square ") == SIZE_CHOICES["small-square"]


@pytest.mark.parametrize("ratio,size", [
    ("16:9", (1280, 704)), ("1:1", (960, 960)), ("9:16", (704, 1280)), ("5:3", (1280, 768)),
    ("3:2", (1152, 768)), ("2.4x1", (1536, 640)),
])
def test_aspect_ratio_sizes_at_the_default_budget(ratio, size):
    result = aspect_size(*parse_ratio(ratio))
    assert (result.width, result.height) == size and result.note is None


def test_fit_pixels_keeps_the_shape_and_says_why():
    fitted = fit_pixels(2048, 1024, 512 * 512)
    assert (fitted.width, fitted.height) == (704, 320) or fitted.width / fitted.height == 2
    assert fitted.pixels <= 512 * 512 and "max_pixels" in fitted.note
    assert fit_pixels(512, 512, 512 * 512).note is None
    assert side_for_ratio(1024, 16, 9, given="width") == 576


@given(st.floats(1 / 16, 16), st.integers(64 * 64, 4096 * 4096))
@settings(max_examples=60, deadline=500)
def test_aspect_size_is_within_budget_in_multiples_of_64(ratio, budget):
    size = aspect_size(ratio, 1, budget)
    assert size.width % 64 == 0 and size.height % 64 == 0
    assert 64 <= size.width <= 4096 and 64 <= size.height <= 4096
    assert size.pixels <= budget


@pytest.mark.parametrize("text", ["a --" + "x" * 65, "a --no red sky --" + "y" * 70,
                                  "a --steps 50 --" + "z" * 300])
def test_an_overlong_flag_name_is_refused_as_unknown(text):
    with pytest.raises(CommandError) as caught:
        parse_prompt_text(text)
    assert caught.value.rule == "unknown_flag" and "unknown flag" in str(caught.value)


def test_no_share_keeps_every_weight_in_range_and_the_ratios():
    from engine.spec.prompts import MAX_WEIGHT, parse_prompts
    parsed = parse_prompt_text("a:100 | b:100 | c:100 --no d")
    weights = [p.weight for p in parsed.all_prompts]
    assert all(abs(w) <= MAX_WEIGHT for w in weights)
    assert weights[3] / sum(weights[:3]) == pytest.approx(-0.5)
    assert weights[0] == weights[1] == weights[2]
    assert parse_prompts([{"text": p.text, "weight": p.weight} for p in parsed.all_prompts])
