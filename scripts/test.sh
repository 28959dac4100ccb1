#!/usr/bin/env bash
# The test command: bootstraps what the tests need, then lints, type-checks and runs the tests.
#   ./scripts/test.sh                 what CI runs: every test not marked slow, the Airflow
#                                     quick set, the benchmark smoke
#   PODFLEET_TESTS=all ./scripts/test.sh   the same with the slow tests too (Airflow's as well)
#   ./scripts/test.sh tests/executor  just some tests, slow ones included (lint still runs first)
#   ./scripts/test.sh tests/airflow_e2e   the Airflow end-to-end tests, all of them (in .venv-airflow)
# PODFLEET_AIRFLOW_TESTS=all runs the slow Airflow tests too, =off none.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"

# PostgreSQL: the machine's on 127.0.0.1:5432, or a private cluster started here.
# shellcheck source=scripts/services.sh
source "$ROOT/scripts/services.sh"
ensure_postgres
ensure_test_tools
ensure_client_versions

TESTS="${PODFLEET_TESTS:-quick}"
case "$TESTS" in quick|all) ;; *) log "PODFLEET_TESTS must be quick or all, not $TESTS"; exit 2;; esac
AIRFLOW_TESTS="${PODFLEET_AIRFLOW_TESTS:-$TESTS}"
# These two are the script's, not podfleet settings: podfleet refuses PODFLEET_* names it does
# not know, so the processes the tests start must not inherit them.
unset PODFLEET_TESTS PODFLEET_AIRFLOW_TESTS
if [ $# -eq 0 ] && [ "$AIRFLOW_TESTS" != "off" ]; then
    # Airflow's virtualenv builds (~2 min, mostly downloads) while the main suite runs.
    log "building .venv-airflow in the background"
    (source "$ROOT/scripts/airflow-venv.sh") > "$ROOT/.venv-airflow.log" 2>&1 &
    airflow_venv_pid=$!
fi

log "ruff"
ruff check .
log "mypy --strict"
mypy
log "import-linter"
lint-imports

if [ $# -gt 0 ] && [[ "$*" == *tests/airflow_e2e* ]]; then
    # shellcheck source=scripts/airflow-venv.sh
    source "$ROOT/scripts/airflow-venv.sh"
    log "pytest (Airflow virtualenv)"
    exec "$TEST_AIRFLOW_PYTHON" -m pytest "$@" -p no:cacheprovider
fi

# Named paths run whole; the default run leaves the slow tests out unless PODFLEET_TESTS=all.
selection=()
if [ $# -eq 0 ] && [ "$TESTS" != "all" ]; then selection=(-m "not slow"); fi
# The whole suite runs in two processes (pytest-xdist), a test file per process at a time, so
# a module's fixtures stay one; each process has its own private Redis and scratch database.
# Most tests wait on processes they started, so two share two cores well.
# TEST_PROCESSES=1 runs it in one.
processes=()
if [ $# -eq 0 ] && [ "${TEST_PROCESSES:-2}" != "1" ]; then
    processes=(-n "${TEST_PROCESSES:-2}" --dist loadfile)
fi
log "pytest ${selection[*]:-} ${processes[*]:-}"
set +e
python -m pytest "${@:-tests}" "${selection[@]}" "${processes[@]}" -p no:cacheprovider
status=$?
set -e
if [ "$status" -ne 0 ]; then exit "$status"; fi

if [ -n "${airflow_venv_pid:-}" ]; then
    if ! wait "$airflow_venv_pid"; then
        cat "$ROOT/.venv-airflow.log" >&2
        log ".venv-airflow could not be built"; exit 1
    fi
    # shellcheck source=scripts/airflow-venv.sh
    source "$ROOT/scripts/airflow-venv.sh"
    marker=(-m "not slow")
    [ "$AIRFLOW_TESTS" = "all" ] && marker=()
    log "pytest tests/airflow_e2e ${marker[*]:-(all)} (Airflow 3.3 end to end)"
    "$TEST_AIRFLOW_PYTHON" -m pytest tests/airflow_e2e "${marker[@]}" -p no:cacheprovider
fi

if [ $# -eq 0 ]; then
    log "benchmark smoke runs (bench/ --quick)"
    python bench/run_all.py --quick
fi
