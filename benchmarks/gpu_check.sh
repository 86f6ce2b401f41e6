#!/usr/bin/env bash
# The one prepared GPU check (issue 15): run once, unattended, on one GPU machine, in < 8 min.
#
#   here, once:   benchmarks/gpu_wheels.sh          (the missing Python packages into .whl/)
#   device call:  carry [".whl"], timeout_s 600, command "bash benchmarks/gpu_check.sh"
#
# It prints the device, runs the engine tests on CUDA (DISCO_TEST_DEVICE=cuda, the `gpu`-marked
# tests included: a whole step under torch.cuda.set_sync_debug_mode("error")), benchmarks
# `random-full` models at DD's default image (1280×768, ViT-B-32 + ViT-B-16 + RN50, 4 cut
# batches, secondary model) and at 512×512, eager and compiled, and ends with ONE JSON object:
# seconds per step, the projected 250-step time, peak memory against the memory model's
# prediction, load time, and the test results. Every part has its own time limit, so the JSON
# always comes (a part that ran out of time says so). Logs and per-part JSON go to $OUT.
#
# GPU_CHECK_DRY_RUN=1 runs the same script on the CPU with test-tiny models at 64×64, only the
# first bench part (the others differ only in their arguments), and one test file (tests/test_gpu_check.py does, in the suite), so that the one
# call a lent GPU allows never fails on the script itself.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT" && rm -f "$OUT/device.json"  # the summary reads this run's device step
PY=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 KINETO_LOG_LEVEL=5
started=$(date +%s)
if [ "${GPU_CHECK_DRY_RUN:-0}" = 1 ]; then
    DEVICE=cpu MODELS=test-tiny STEPS=2 DD_SIZE=(--width 64 --height 64) S512_SIZE=(--width 64 --height 64)
    TESTS=(tests/engine/diffusion/test_losses.py)  # the quickest of the real run's files (~5 s)
else
    DEVICE=cuda MODELS=random-full STEPS=5 DD_SIZE=(--width 1280 --height 768) S512_SIZE=(--width 512 --height 512)
    TESTS=(tests/engine/diffusion/test_guidance.py tests/engine/diffusion/test_cut_resize.py
           tests/engine/diffusion/test_cutouts.py tests/engine/diffusion/test_losses.py
           tests/engine/diffusion/test_sampling.py tests/engine/diffusion/test_pipeline.py)
fi

echo "== packages (.whl -> /tmp/site)"
if [ "$DEVICE" = cpu ]; then
    echo "dry run: this machine's packages"
    export PYTHONPATH=$PWD
elif ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || echo "wheel install failed"
    export PYTHONPATH=/tmp/site:$PWD
else
    echo "no .whl/ here: run benchmarks/gpu_wheels.sh first and carry .whl"
    export PYTHONPATH=$PWD
fi

# One Python start (torch's import is seconds) for the device, kept for the summary, and the imports.
echo "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" - "$OUT" <<'PYEOF' || true
import json, sys
from pathlib import Path
import torch
cuda = torch.cuda.is_available()
print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.get_device_name(0) if cuda else "no CUDA device")
device = {"device": torch.cuda.get_device_name(0),
          "memory_gb": round(torch.cuda.get_device_properties(0).total_memory / 1e9, 1)} if cuda \
    else {"device": "cpu (dry run)", "memory_gb": None}
Path(sys.argv[1], "device.json").write_text(json.dumps({**device, "torch": torch.__version__}))
import open_clip, guided_diffusion, pydantic, lpips, pillow_heif
print("imports ok")
PYEOF

echo "== engine tests on $DEVICE"
DISCO_TEST_DEVICE=$DEVICE timeout 100 "$PY" -m pytest -q -p no:cacheprovider -o addopts="" \
    --junitxml="$OUT/tests.xml" "${TESTS[@]}" 2>&1 | tee "$OUT/tests.log" | tail -25
echo "tests rc=${PIPESTATUS[0]}"

bench() {  # name, limit in seconds, bench arguments...
    local name=$1 limit=$2; shift 2
    echo "== bench $name"
    timeout "$limit" "$PY" -m engine.cli.bench --models "$MODELS" --device "$DEVICE" --steps "$STEPS" "$@" \
        >"$OUT/bench_$name.json" 2>"$OUT/bench_$name.err"
    local rc=$?
    [ $rc -eq 0 ] || { echo "bench $name rc=$rc"; tail -5 "$OUT/bench_$name.err"; }
}
DD_CLIPS=(--clip-models ViT-B-32::openai ViT-B-16::openai RN50::openai --cutn-batches 4)
bench dd_default 90 "${DD_SIZE[@]}" "${DD_CLIPS[@]}"
left() { echo $(( 465 - ($(date +%s) - started) )); }  # seconds left of the 8 minutes, with margin
if [ "$DEVICE" = cuda ]; then  # a dry run stops here: the rest differs only in its arguments
    bench s512 50 "${S512_SIZE[@]}" "${DD_CLIPS[@]}"
    # Compiled: the first (warm-up) step includes compiling the UNet, the secondary and the CLIPs.
    bench dd_default_compiled 150 "${DD_SIZE[@]}" --compile --channels-last "${DD_CLIPS[@]}"
    [ "$(left)" -ge 60 ] && bench s512_compiled "$(left)" "${S512_SIZE[@]}" --compile --channels-last "${DD_CLIPS[@]}"
    [ "$(left)" -ge 45 ] && bench dd_default_no_secondary "$(left)" "${DD_SIZE[@]}" --no-secondary "${DD_CLIPS[@]}"
fi

echo "== summary"
"$PY" - "$OUT" "$started" <<'PYEOF'
import json, sys, time, xml.etree.ElementTree as ET
from pathlib import Path
out, started = Path(sys.argv[1]), int(sys.argv[2])
try:  # written by the device step: no second torch import here
    summary = json.loads((out / "device.json").read_text())
except (OSError, ValueError):
    summary = {"device": "unknown: the device step failed (see its output above)"}
try:
    suite = ET.parse(out / "tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    summary["tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
except (OSError, ET.ParseError, IndexError):
    summary["tests"] = "no result (timed out or did not start)"
keys = ("seconds_per_step", "projected_250_steps_seconds", "warmup_step_seconds", "model_load_seconds",
        "peak_cuda_mb", "peak_cuda_reserved_mb", "predicted_allocated_mb", "predicted_peak_mb", "cut_batches_per_pass", "precision")
for path in sorted(out.glob("bench_*.json")):
    name = path.stem.removeprefix("bench_")
    try:
        report = json.loads(path.read_text())
        summary[name] = {k: report.get(k) for k in keys}
    except ValueError:
        summary[name] = "no result: " + (out / f"bench_{name}.err").read_text()[-300:].strip()
summary["check_seconds"] = int(time.time()) - started
print(json.dumps(summary, indent=1))
PYEOF
