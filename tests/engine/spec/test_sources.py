"""The command line's layers (settings file, --set, flags): a later source that changes an
earlier one's value says so."""
import argparse
import json

from engine.spec.sources import build_spec


def _args(**given):
    fields = dict(settings=None, set=[], steps=None, width=None, height=None, seed=None, prompt=None,
                  batches=None)
    return argparse.Namespace(**{**fields, **given})


def test_a_flag_or_set_that_changes_the_file_s_value_is_noted(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"text_prompts": ["a lighthouse"], "steps": 250, "eta": 0.5}))
    spec, report = build_spec(_args(settings=path, set=["eta=0.8", "width=640"], steps=50, width=640,
                                    prompt="a harbour"))
    assert (spec.steps, spec.eta, spec.width) == (50, 0.8, 640)
    assert "eta: 0.8 from --set replaces 0.5 from --settings mine.json" in report
    assert "steps: 50 from --steps replaces 250 from --settings mine.json" in report
    assert any(line.startswith("text_prompts: 'a harbour' from the prompt replaces") for line in report)
    assert not any(line.startswith("width:") for line in report)  # --set and --width agree


def test_no_note_where_nothing_is_replaced(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"text_prompts": ["a lighthouse"], "steps": 50}))
    _, report = build_spec(_args(settings=path, steps=50, seed=7, set=["eta=0.3"]))
    assert not any("replaces" in line for line in report)
