#!/usr/bin/env bash
# The test command: bootstraps what the tests need, then lints, type-checks and runs every test.
#   ./scripts/test.sh                 everything (what CI runs)
#   ./scripts/test.sh tests/executor  just some tests (lint still runs first)
#   ./scripts/test.sh tests/airflow_e2e   the Airflow end-to-end tests, all of them (in .venv-airflow)
# A full run includes the Airflow tests not marked slow; PODFLEET_AIRFLOW_TESTS=all runs the
# slow ones too, =off none.
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

AIRFLOW_TESTS="${PODFLEET_AIRFLOW_TESTS:-quick}"
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

log "pytest"
set +e
python -m pytest "${@:-tests}" -p no:cacheprovider
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
