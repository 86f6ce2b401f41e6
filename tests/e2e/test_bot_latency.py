"""Smoke test of benchmarks/bot_latency.py: a small burst through the real bot and the loopback
Discord must run end to end and report every key. No timing is asserted: the figures depend on
the machine, and the benchmark itself is where they are read."""
from __future__ import annotations

import json

from benchmarks import bot_latency


def test_percentile_interpolates_between_ranks():
    assert bot_latency.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert bot_latency.percentile([0.0, 10.0], 90) == 9.0
    assert bot_latency.percentile([4.0], 99) == 4.0


def test_small_burst_defers_and_queues_every_command(tmp_path):
    result = bot_latency.run_benchmark(count=6, guilds=2, data_dir=tmp_path)
    assert set(bot_latency.KEYS) <= set(result)
    assert result["count"] == 6 and result["guilds"] == 2 and result["busy_engine"] is False
    assert result["all_deferred"] and result["deferred"] == 6
    assert result["queued"] == 6  # no guild cap refused any of them
    assert result["fake_errors"] == []
    json.dumps(result)  # what main() prints


def test_main_prints_one_json_object(tmp_path, capsys):
    assert bot_latency.main(["--count", "2", "--guilds", "2", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and json.loads(out[0])["all_deferred"] is True
