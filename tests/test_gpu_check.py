"""benchmarks/gpu_check.sh, dry: the one prepared GPU check run on the CPU (test-tiny models at
64×64, GPU_CHECK_DRY_RUN=1). A lent GPU allows one call; this makes sure that call cannot fail on
the script's own plumbing: the test run and its JUnit summary, the bench arguments, the
per-part JSON and the one summary object at the end."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import REPO_ROOT


def test_the_gpu_check_runs_dry_on_the_cpu_and_ends_with_one_json_summary(tmp_path):
    env = {**os.environ, "GPU_CHECK_DRY_RUN": "1", "OUT": str(tmp_path), "PYTHON": sys.executable,
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    done = subprocess.run(["bash", str(REPO_ROOT / "benchmarks" / "gpu_check.sh")], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "tests rc=0" in done.stdout, done.stdout[-2000:]
    summary = json.loads(done.stdout[done.stdout.rindex("\n{") + 1:])
    assert summary["device"] == "cpu (dry run)"
    assert summary["tests"]["tests"] > 0 and summary["tests"]["failures"] == summary["tests"]["errors"] == 0
    report = summary["dd_default"]
    assert isinstance(report, dict), report  # not "no result: …"
    assert report["seconds_per_step"] > 0 and report["cut_batches_per_pass"] == 4
    assert abs(report["projected_250_steps_seconds"] - 250 * report["seconds_per_step"]) <= 0.1
    assert not (tmp_path / "bench_dd_default_compiled.json").exists()  # compiling: GPU only
