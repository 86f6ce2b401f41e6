"""Keyframe parsing, DD's get_inbetweens interpolation, frame prompts, turbo and skip steps."""
from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from engine.errors import SpecError
from engine.spec.frame_prompts import format_frame_prompts, is_frame_keyed, parse_frame_prompts, prompts_at
from engine.spec.keyframes import (
    MAX_KEYFRAMES,
    effective_method,
    format_keyframes,
    frames_skip_steps,
    interpolate,
    parse_keyframes,
    parse_percent,
    turbo_blend_weight,
    turbo_schedule,
)
from engine.spec.prompts import WeightedPrompt as P


def zoom(text, **kw):
    return parse_keyframes(text, param="zoom", low=0, high=10, low_open=True, **kw)


# ---- parsing -------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("0: (1), 10: (1.05)", {0: 1.0, 10: 1.05}),
    ("0:(1),10:(1.05)", {0: 1.0, 10: 1.05}),
    ("  0 :  ( 1 )  ,\n 10: (+1.5e-1), ", {0: 1.0, 10: 0.15}),
    ("10: (2) 0: (.5)", {0: 0.5, 10: 2.0}),
    ('"0: (1), 10: (1.05)"', {0: 1.0, 10: 1.05}),  # with the quotes of DD's code cell
    ("'0: (1)'", {0: 1.0}),
    ({"0": 1, 5: "2.5"}, {0: 1.0, 5: 2.5}),
])
def test_parse_good(text, expected):
    assert zoom(text) == expected
    assert list(zoom(text)) == sorted(expected)


def test_bare_number_means_frame_zero_with_note():
    notes: list[str] = []
    assert zoom(" 1.05 ", notes=notes) == {0: 1.05}
    assert notes and "read as 0: (1.05)" in notes[0]
    assert zoom(2) == {0: 2.0}


@pytest.mark.parametrize("text, fragment", [
    ("0: (1), 10: (1.o5)", "zoom: keyframe 2 ('10: (1.o5)'): '1.o5' is not a number"),
    ("0: (9**9**9)", "'9**9**9' is not a number"),
    ("0: (__import__('os'))", "is not a number"),
    ("0: (1.0+0.02*t)", "'1.0+0.02*t' is math; keyframe values are plain numbers, as in DD 5.x"),
    ("0: (sin(t))", "is math; keyframe values are plain numbers"),
    # Deforum-style math pasted whole was shown cut at its first ')': '1+0.002*sin(t'.
    ("0: (1+0.002*sin(t)), 10: (1)", "keyframe 1 ('0: (1+0.002*sin(t))'): '1+0.002*sin(t)' is math"),
    ("0: (t)", "'t' is math"),
    ("0: (1e999)", "too large"),
    ("0 (1)", "at character 3: expected ':'"),
    ("0: 1", "expected '(' — the value goes in parentheses"),
    ("0: (1", "is never closed"),
    ("x: (1)", "keyframe 1 ('x: (1)') at character 1: expected a frame number"),
    ("0: (1), 0: (2)", "frame 0 is given twice"),
    # A fractional or negative frame was "expected ':' after frame 0" / "expected a frame number".
    ("0: (1), 12.5: (2)", "keyframe 2 ('12.5: (2)'): frame 12.5 is not a whole frame"),
    ("0.5: (1)", "frame 0.5 is not a whole frame"),
    ("0: (1), -10: (2)", "at character 9: frames start at 0, a keyframe cannot be before it"),
    ("99999999999999999999: (1)", "is beyond frame 100000"),
    ("0: ()", "an empty value is not a number"),
    ("0: (-1)", "out of range; allowed: (0, 10]"),
    ("0: (0)", "out of range"),
    ("0: (11)", "out of range"),
    ("", "no keyframes given"),
    ({"a": 1}, "the frame must be a whole number"),
    ({"0": [1]}, "the value must be a number"),
    (None, "is not keyframe text"),
])
def test_parse_bad(text, fragment):
    with pytest.raises(SpecError) as info:
        zoom(text)
    assert fragment in str(info.value)
    assert info.value.param == "zoom"
    assert "write keyframes like 0: (1), 10: (1.05)" in str(info.value) or "allowed" in str(
        info.value)


def test_too_many_keyframes():
    text = ", ".join(f"{i}: (1)" for i in range(MAX_KEYFRAMES + 1))
    with pytest.raises(SpecError, match="more than 1000 keyframes"):
        zoom(text)


def test_frames_past_the_end_are_noted_or_refused():
    notes: list[str] = []
    assert zoom("0: (1), 200: (2)", max_frames=100, notes=notes) == {0: 1.0}
    assert "200" in notes[0] and "ignored" in notes[0]
    with pytest.raises(SpecError, match="every keyframe is at or after frame 100"):
        zoom("150: (2)", max_frames=100)


def test_format_round_trip():
    keys = zoom("10: (1.05), 0: (1)")
    assert format_keyframes(keys) == "0: (1), 10: (1.05)"
    assert zoom(format_keyframes(keys)) == keys


# ---- interpolation -------------------------------------------------------------------------

def test_linear_holds_before_and_after():
    assert interpolate({2: 1.0, 4: 3.0}, 7, "linear") == [1, 1, 1, 2, 3, 3, 3]
    assert interpolate({0: 5.0}, 3, "cubic") == [5.0, 5.0, 5.0]
    assert interpolate({0: 5.0}, 1, "linear") == [5.0]


def test_degrade_rules_as_dd():
    assert effective_method("cubic", 3) == "quadratic"
    assert effective_method("cubic", 2) == "linear"
    assert effective_method("cubic", 4) == "cubic"
    assert effective_method("Quadratic", 2) == "linear"
    assert effective_method("quadratic", 3) == "quadratic"
    notes: list[str] = []
    values = interpolate({0: 0.0, 10: 1.0}, 11, "cubic", notes=notes, param="angle")
    assert values == pytest.approx([i / 10 for i in range(11)])
    assert "angle: 2 keyframes are too few for cubic" in notes[0]
    with pytest.raises(SpecError, match="interp_spline"):
        effective_method("spline", 5)


def test_cubic_reproduces_a_cubic_polynomial():
    def f(x):
        return 0.5 * x**3 - 2 * x**2 + x - 3
    keys = {x: f(x) for x in (0, 3, 4, 7, 9, 10)}  # includes both ends, so no pinning
    assert interpolate(keys, 11, "cubic") == pytest.approx([f(x) for x in range(11)], abs=1e-9)


def test_quadratic_reproduces_a_parabola():
    def f(x):
        return 2 * x**2 - 3 * x + 1
    keys = {x: f(x) for x in (0, 2, 3, 7, 12)}
    assert interpolate(keys, 13, "quadratic") == pytest.approx([f(x) for x in range(13)],
                                                              abs=1e-9)


def test_quadratic_through_three_points_is_their_parabola():
    # Hand-computed: p(10) = p(19) puts the vertex at 14.5, so p = 1 + b·x + c·x² with
    # b = −29c and 1 − 190c = 1.05: c = −0.05/190, b = 29·0.05/190.
    values = interpolate({0: 1.0, 10: 1.05, 19: 1.05}, 20, "quadratic")
    b, c = 29 * 0.05 / 190, -0.05 / 190
    assert values == pytest.approx([1 + b * x + c * x * x for x in range(20)])


# Reference values computed once with pandas 3.1.1 / scipy 1.17.1 running DD's get_inbetweens
# (pinned frame 0 and last frame, Series.interpolate(method, limit_direction='both')).
@pytest.mark.parametrize("keys, frames, method, expected", [
    ({5: 2.0, 10: 4.0, 12: 3.0}, 20, "quadratic",
     {0: 2.0, 1: 1.705333333333, 2: 1.558, 7: 3.031333333333, 13: 2.578, 19: 3.0}),
    ({5: 2.0, 10: 4.0, 12: 3.0, 15: 0.0}, 20, "cubic",
     {1: 1.297234155288, 7: 3.19322681883, 16: -0.776319543509, 18: -0.950193600978}),
    ({0: 1.0, 10: 1.05, 20: 0.9, 40: 1.2}, 50, "cubic",
     {1: 1.031269092292, 21: 0.897175456389, 45: 1.2363336714, 49: 1.2}),
])
def test_matches_pandas_reference(keys, frames, method, expected):
    values = interpolate(keys, frames, method)
    for frame, value in expected.items():
        assert values[frame] == pytest.approx(value, abs=1e-9)


def test_interpolate_errors():
    with pytest.raises(SpecError, match="no keyframe inside"):
        interpolate({50: 1.0}, 10)
    with pytest.raises(SpecError, match="at least 1 frame"):
        interpolate({0: 1.0}, 0)


# ---- frame prompts -------------------------------------------------------------------------

def test_frame_prompt_text():
    frames = parse_frame_prompts("0: a castle:1 | fog:-0.5 || 60: a city", max_frames=100)
    assert frames == {0: [P("a castle"), P("fog", -0.5)], 60: [P("a city")]}
    assert parse_frame_prompts("a lighthouse:2") == {0: [P("a lighthouse", 2.0)]}
    assert parse_frame_prompts(["a", "b:3"]) == {0: [P("a"), P("b", 3.0)]}


def test_frame_prompts_pasted_one_frame_a_line_or_with_a_trailing_separator():
    """One "frame: prompts" a line was one prompt for every frame ("a castle\n60: a city"), and a
    trailing "||" was refused as a part with no frame number."""
    expected = {0: [P("a castle", 2.0), P("fog", -0.5)], 60: [P("a city")]}
    assert parse_frame_prompts("0: a castle:2 | fog:-0.5\n  60: a city\n") == expected
    assert parse_frame_prompts("0: a castle:2 | fog:-0.5 || 60: a city ||") == expected
    # A line break inside a part that is not followed by a frame key stays prompt text.
    assert parse_frame_prompts("0: a castle || 60: a\ncity") == {0: [P("a castle")], 60: [P("a\ncity")]}
    assert parse_frame_prompts("a castle\n60: a city") == {0: [P("a castle\n60: a city")]}  # not keyed


def test_frame_prompts_pasted_from_dds_notebook_cell():
    """DD's own text_prompts cell (Python: trailing commas, maybe the "text_prompts =" too) was
    "cannot be read", and as a prompt it was not even seen as frame-keyed: the whole dict text
    became one prompt for every frame."""
    cell = ('text_prompts = {\n    0: ["A lighthouse, Trending on artstation.", "yellow color scheme"],\n'
            '    100: ["This set of prompts start at frame 100","This prompt has weight five:5"],\n}')
    assert is_frame_keyed(cell) and is_frame_keyed("{0: ['a'], 10: ['b']}")
    assert parse_frame_prompts(cell) == {
        0: [P("A lighthouse, Trending on artstation."), P("yellow color scheme")],
        100: [P("This set of prompts start at frame 100"), P("This prompt has weight five", 5.0)]}
    assert parse_frame_prompts('{0: ["a, ]", "b",],}') == {0: [P("a, ]"), P("b")]}  # commas in text stay
    assert not is_frame_keyed("{braces} around a word") and not is_frame_keyed("a castle")


def test_frame_prompt_dicts():
    expected = {0: [P("a"), P("b")], 60: [P("c", 2.0), P("d")]}
    assert parse_frame_prompts({0: ["a", "b"], "60": "c:2 | d"}) == expected
    assert parse_frame_prompts('{0: ["a", "b"], "60": "c:2 | d"}') == expected
    assert parse_frame_prompts("{'0': ['a', 'b'], 60: 'c:2 | d'}") == expected
    # A "5:" inside a quoted prompt is text, not a key.
    assert parse_frame_prompts('{0: ["x, 5: y"]}') == {0: [P("x, 5: y")]}


@pytest.mark.parametrize("value, fragment", [
    ("0: a || b", "part 2 ('b') has no frame number"),
    ("0: a || 0: b", "frame 0 is given twice"),
    ("0: a || 5: ", "frame 5 has no prompts"),
    ("{0: [", "cannot be read"),
    ("{0: 'a'} x", "cannot be read"),
    ({"-1": "a"}, "is not a frame number"),
    ({"0": "a:1 | b:nan"}, "frame 0: prompt 2"),
    (42, "is not prompts"),
    ("150: a", "past the last frame"),
])
def test_frame_prompt_errors(value, fragment):
    with pytest.raises(SpecError) as info:
        parse_frame_prompts(value, max_frames=100)
    assert fragment in str(info.value)
    assert info.value.param == "text_prompts"


def test_frame_prompts_past_end_are_noted():
    notes: list[str] = []
    assert list(parse_frame_prompts("0: a || 200: b", max_frames=100, notes=notes)) == [0]
    assert "200" in notes[0]


def test_prompts_at_fills_forward_then_backward():
    frames = {10: [P("a")], 20: [P("b")]}
    assert prompts_at(frames, 0) == [P("a")]  # back fill before the first key
    assert prompts_at(frames, 15) == [P("a")]
    assert prompts_at(frames, 20) == [P("b")]
    assert prompts_at(frames, 999) == [P("b")]
    text = format_frame_prompts({0: [P("a", 2.0), P("b")], 60: [P("c")]})
    assert text == "0: a:2 | b || 60: c"
    assert parse_frame_prompts(text) == {0: [P("a", 2.0), P("b")], 60: [P("c")]}


# ---- turbo and skip steps ------------------------------------------------------------------

def test_turbo_schedule_by_hand():
    assert turbo_schedule(8, 3, 0) == [True, False, False, True, False, False, True, False]
    assert turbo_schedule(8, 3, 4) == [True, True, True, True, False, False, True, False]
    assert turbo_schedule(5, 2, 10) == [True] * 5
    assert turbo_blend_weight(4, 3) == pytest.approx(2 / 3)
    assert turbo_blend_weight(5, 3) == 1.0
    assert turbo_blend_weight(3, 3) == pytest.approx(1 / 3)


def test_frames_skip_steps():
    assert frames_skip_steps(250, "60%") == 150
    assert frames_skip_steps(50, " 70 % ") == 35
    assert frames_skip_steps(33, 60) == 19  # floor(19.8)
    assert frames_skip_steps(10, "99%") == 9
    assert parse_percent("0%") == 0
    for bad in ("100%", "60.5%", "-1%", True, "abc", 150):
        with pytest.raises(SpecError, match="frames_skip_steps"):
            parse_percent(bad)


# ---- robustness ----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from("0123456789:()., e+-*|x{}[]\"'\n"), max_size=80)
       | st.text(max_size=80))
def test_any_string_parses_or_raises_quickly(text):
    start = time.process_time()  # CPU time: the work done, not a busy neighbour's share
    for call in (lambda: zoom(text, max_frames=50),
                 lambda: parse_frame_prompts(text, max_frames=50)):
        try:
            call()
        except SpecError:
            pass
    assert time.process_time() - start < 0.5


def test_huge_inputs_fail_fast():
    start = time.process_time()
    for text in ("0: (" + "9" * 100_000 + ")", "0: (1)" * 20_000, "{" * 100_000,
                 "0: a || " * 2000):
        with pytest.raises(SpecError):
            zoom(text) if text.startswith("0: (") else parse_frame_prompts(text)
    assert time.process_time() - start < 2


def test_a_pasted_typographic_minus_is_a_minus():
    """"0: (−0.5)" from a web page was "'−0.5' is not a number", though it shows one."""
    assert parse_keyframes("0: (\u22120.5), 10: (\u20131)", param="angle") == {0: -0.5, 10: -1.0}
