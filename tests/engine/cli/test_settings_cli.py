"""`disco settings`: every setting listed, one explained, an unknown one refused with the closest
name, JSON that holds them all. In-process (`disco.cli.main`)."""
from __future__ import annotations

import json

from disco.cli import main
from engine.spec.setting_docs import setting_names


def test_the_list_one_setting_json_and_a_misspelling(capsys):
    assert main(["settings"]) == 0
    listing = capsys.readouterr().out
    assert all(f"  {name} " in listing for name in setting_names())
    assert listing.index("Animation settings") < listing.index("  turbo_steps ")
    assert main(["settings", "Cut_IC_Pow"]) == 0
    one = capsys.readouterr().out
    assert one.startswith("cut_ic_pow (setting): inner-cut size power") and "--set cut_ic_pow=VALUE" in one
    assert main(["settings", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert {e["name"] for e in entries} == set(setting_names()) and len(entries) == len(setting_names()) + 1
    assert main(["settings", "zom"]) == 2
    assert "no setting called 'zom'; did you mean 'zoom'? `disco settings` lists them all" in capsys.readouterr().err
    assert main(["settings", "nothing-like-it"]) == 2  # no guess: still two sentences that read
    assert capsys.readouterr().err == ("error: there is no setting called 'nothing-like-it'; `disco settings` "
                                       "lists them all\n")
