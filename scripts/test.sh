#!/usr/bin/env bash
# Set up the environment (scripts/setup.sh) and run the test suite; extra arguments go to pytest.
#   scripts/test.sh           everything (what CI runs)
#   scripts/test.sh --fast    the inner loop: no end-to-end or slow tests (-m "not e2e and not slow")
# The whole suite (or --fast) runs in two pytest-xdist workers (-n auto: tests/conftest.py says
# how many); named files or tests, and the slow tier, run in one process. -n N overrides that
# (-n 0: one process).
# The storage tests also run on PostgreSQL: unless DISCO_TEST_POSTGRES_URL names a server
# already, a throw-away cluster is started (scripts/postgres.sh) and stopped at the end, also
# on failure. If it cannot start, this fails: under this script those tests never skip.
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
if [ -z "${DISCO_TEST_POSTGRES_URL:-}" ]; then
    cluster=$(scripts/postgres.sh start) || { echo "test.sh: the PostgreSQL test cluster did not start" >&2; exit 1; }
    pg_dir=$(echo "$cluster" | head -1)
    trap 'scripts/postgres.sh stop "$pg_dir"' EXIT
    export DISCO_TEST_POSTGRES_URL=$(echo "$cluster" | tail -1)
    export DISCO_TEST_POSTGRES_DIR=$pg_dir  # postgres.sh works here: the outage tests start their own
fi
export DISCO_TEST_REQUIRE_POSTGRES=1
status=0
.venv/bin/python -m pytest -q -n auto --dist worksteal ${args[@]+"${args[@]}"} || status=$?
exit $status
