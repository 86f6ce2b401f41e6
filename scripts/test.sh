#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the test suite; extra arguments go to pytest.
#   scripts/test.sh           everything (what CI runs)
#   scripts/test.sh --fast    the inner loop: no end-to-end or slow tests (-m "not e2e and not slow")
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export HF_HUB_OFFLINE=1
args=()
for arg in "$@"; do
    if [ "$arg" = "--fast" ]; then
        args+=(-m "not e2e and not slow")
    else
        args+=("$arg")
    fi
done
exec .venv/bin/python -m pytest -q ${args[@]+"${args[@]}"}
