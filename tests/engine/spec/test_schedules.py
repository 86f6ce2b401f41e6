"""The cut-schedule parser: DD's notation, canonical output, bounds and hostile input."""
from __future__ import annotations

import random
import time
import tracemalloc

import pytest
from hypothesis import given, settings, strategies as st

from engine.errors import SpecError
from engine.spec.render import RenderSpec
from engine.spec.schedules import (
    SCHEDULE_LENGTH,
    canonical_schedule,
    format_schedule,
    parse_schedule,
    schedule_index,
)


def parse(text, **kwargs):
    return parse_schedule(text, param="cut_overview", **kwargs)


def error_of(text, **kwargs) -> str:
    with pytest.raises(SpecError) as info:
        parse(text, **kwargs)
    assert info.value.param == "cut_overview"
    return str(info.value)


# ---- what DD writes ----------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "[12]*400+[4]*600", "[4]*400+[12]*600", "[1]*1000", "[0.2]*400+[0]*600",
    "[15]*100+[15]*100+[12]*100+[12]*100+[6]*100+[4]*100+[2]*200+[0]*200",
    "[0.87]*100+[0.78]*50+[0.73]*50+[0.64]*60+[0.56]*40+[0.50]*50+[0.33]*100+[0.19]*150+[0]*400",
])
def test_dd_schedules_expand_to_1000_entries(text):
    values = parse(text)
    assert len(values) == SCHEDULE_LENGTH


def test_values_and_order():
    values = parse("[12]*400+[4]*600", integer=True)
    assert values[:400] == (12,) * 400 and values[400:] == (4,) * 600
    assert all(type(v) is int for v in values)
    floats = parse("[0.2]*400+[0]*600")
    assert floats[0] == 0.2 and floats[-1] == 0.0 and all(type(v) is float for v in floats)


def test_whitespace_lists_and_trailing_comma():
    assert parse(" [ 1 , 2 ] * 500 ") == (1.0, 2.0) * 500
    assert parse("[1,2,]*500") == (1.0, 2.0) * 500
    assert parse("[3]*999+[4]") == (3.0,) * 999 + (4.0,)


def test_number_forms():
    assert parse("[-1.5e-1]*1000")[0] == -0.15
    assert parse("[.5]*1000")[0] == 0.5
    assert parse("[+2.]*1000")[0] == 2.0


def test_booleans():
    assert parse("[True]*400+[False]*600")[:1] == (1.0,)
    assert parse("[True]*400+[False]*600", boolean=True)[399:401] == (True, False)
    assert "True or False" in error_of("[2]*1000", boolean=True)


@pytest.mark.parametrize("value", [5, 5.0, "5", " 5 "])
def test_bare_number_is_a_constant(value):
    assert parse(value) == (5.0,) * 1000


def test_list_of_1000_numbers_is_accepted():
    assert parse([1] * 500 + [2] * 500, integer=True) == (1,) * 500 + (2,) * 500
    assert parse(tuple([0.5] * 1000)) == (0.5,) * 1000


# ---- errors that teach ---------------------------------------------------------------------

def test_power_is_refused_instantly_with_position():
    tracemalloc.start()
    started = time.process_time()  # CPU time: the work done, not a busy neighbour's share
    message = error_of("[0]*9**9**9")
    elapsed = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 0.05 and peak < 1_000_000
    assert message.startswith("cut_overview: at position 5: expected a whole number after '*'")
    assert "'9**9**9'" in message and "[12]*400+[4]*600" in message


@pytest.mark.parametrize("text", ["[0]*99999999999", "[0]*99999999999999", "[0]*1001",
                                  "[0]*" + "9" * 5000])
def test_huge_counts_are_refused_before_expanding(text):
    started = time.process_time()
    message = error_of(text)
    assert time.process_time() - started < 0.05
    assert "too large" in message and "1000" in message and "position 5" in message


def test_running_total_checked_before_expanding():
    message = error_of("[1]*1000+[1]*1000+[1]*1000")
    assert "2000 entries" in message and "position 10" in message


@pytest.mark.parametrize("text,count,fix", [
    ("[4]*400+[12]*500", 900, "[4]*400+[12]*600"),
    ("[1]*10", 10, "[1]*1000"),
    ("[1,2]*100", 200, "[1,2,1,2"),
])
def test_wrong_total_names_count_and_fix(text, count, fix):
    message = error_of(text)
    assert f"has {count} entries; it needs exactly 1000" in message
    assert fix in message


@pytest.mark.parametrize("text,position,expected", [
    ("12*400", 1, "'[' to start a list"),
    ("[12]*400+", 10, "'[' to start a list"),
    ("[12]*400 [4]*600", 10, "'+' between terms"),
    ("[12)*1000", 4, "',' or ']'"),
    ("[a]*1000", 2, "a number"),
    ("[1]*4.5e2", 5, "a whole number after '*'"),
    ("[1]*", 5, "a whole number after '*'"),
    ("[]*1000", 2, "a number"),
    ("__import__('os')", 1, "'['"),
])
def test_syntax_errors_name_position_and_expectation(text, position, expected):
    message = error_of(text)
    assert f"at position {position}:" in message and expected in message


def test_empty_and_too_long_text():
    assert "empty" in error_of("   ")
    assert "characters long" in error_of("[1]*1000" + " " * 40_000)


def test_non_finite_values():
    assert "finite" in error_of("[1e999]*1000")
    assert "finite" in error_of("[" + "9" * 5000 + "]*1000")
    assert "finite" in error_of([float("nan")] * 1000)
    assert "finite" in error_of(10**400)


@pytest.mark.parametrize("value,message", [
    ([1] * 999, "999 entries"), ([0] * 10**6, "1000000 entries"),
    ([None] * 1000, "entry 1 is None"), ({"a": 1}, "got dict"),
    (None, "got NoneType"),
])
def test_other_input_types(value, message):
    assert message in error_of(value)


def test_integer_and_bounds():
    assert "whole number" in error_of("[0.5]*1000", integer=True)
    message = error_of("[12]*400+[70]*600", integer=True, low=0, high=64)
    assert "entries 401..1000" in message and "above the maximum 64" in message
    assert "below the minimum 0" in error_of("[-1]*1000", low=0)
    assert "entry 1000 " in error_of("[0]*999+[9]", high=1)


# ---- canonical form --------------------------------------------------------------------------

def test_format_is_run_length_and_merges_runs():
    assert format_schedule((12,) * 400 + (4,) * 600) == "[12]*400+[4]*600"
    assert format_schedule((5.0,) * 1000) == "[5]*1000"
    assert canonical_schedule("[15]*100+[15]*100+[0]*800", param="x") == "[15]*200+[0]*800"
    assert format_schedule((1, 2) * 500).startswith("[1,2,1,2,")
    assert format_schedule((0.25,) * 999 + (1e-05,)) == "[0.25]*999+[1e-05]"


def test_canonical_schedule_passes_bounds():
    assert canonical_schedule(" [0.2] * 400 + [0]*600", param="x", low=0, high=1) == (
        "[0.2]*400+[0]*600")
    with pytest.raises(SpecError):
        canonical_schedule("[2]*1000", param="x", high=1)


@given(st.lists(st.sampled_from([0.0, 1.0, 0.5, -3.25]), min_size=1, max_size=8),
       st.integers(0, 2**32))
@settings(max_examples=40, deadline=500)
def test_format_then_parse_is_identity(runs, seed):
    # A run-heavy schedule and an every-entry-different one both come back unchanged.
    rng = random.Random(seed)
    blocky = tuple(runs[i * len(runs) // 1000] for i in range(1000))
    noisy = tuple(rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300) for _ in range(1000))
    for values in (blocky, noisy):
        assert parse_schedule(format_schedule(values), param="x") == values


# ---- lookups -------------------------------------------------------------------------------

def test_schedule_lookups_follow_dd_indexing():
    spec = RenderSpec(cut_overview="[12]*400+[4]*600")  # read at run time by cut_schedule
    assert schedule_index(1000) == 0 and schedule_index(1) == 999
    assert spec.cut_schedule(1000).overview == 12 and spec.cut_schedule(601).overview == 12
    assert spec.cut_schedule(600).overview == 4 and spec.cut_schedule(1).overview == 4
    with pytest.raises(ValueError):
        schedule_index(0)


# ---- hostile input: SpecError or a result, nothing else, quickly ----------------------------

schedule_alphabet = st.sampled_from(list("[]*+,.-eE0123456789 ") + ["True", "False", "9**9"])


@given(st.one_of(st.text(max_size=300), st.lists(schedule_alphabet, max_size=80).map("".join)))
@settings(max_examples=300, deadline=200)
def test_any_string_parses_or_raises_spec_error(text):
    try:
        values = parse_schedule(text, param="cut_innercut", integer=True, low=0, high=64)
    except SpecError as err:
        assert err.param == "cut_innercut" and str(err).startswith("cut_innercut: ")
    else:
        assert len(values) == 1000


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=5),
    max_leaves=20,
)


@given(json_like)
@settings(max_examples=300, deadline=200)
def test_any_json_like_value_parses_or_raises_spec_error(value):
    try:
        parse_schedule(value, param="cut_ic_pow", low=0, high=100)
    except SpecError:
        pass


def test_a_count_with_thousands_of_leading_zeros_reads_as_its_value():
    assert parse("[12]*" + "0" * 5000 + "400+[4]*0600") == parse("[12]*400+[4]*600")
    message = error_of("[0]*" + "0" * 5000 + "1001")
    assert "too large" in message and "4300" not in message
