#!/usr/bin/env bash
# The test command: bootstraps what the tests need, then lints, type-checks and runs every test.
#   ./scripts/test.sh                 everything (what CI runs)
#   ./scripts/test.sh tests/executor  just some tests (lint still runs first)
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

log "ruff"
ruff check .
log "mypy --strict"
mypy
log "import-linter"
lint-imports

log "pytest"
set +e
python -m pytest "${@:-tests}" -p no:cacheprovider
status=$?
set -e
if [ "$status" -ne 0 ]; then exit "$status"; fi

if [ $# -eq 0 ]; then
    log "benchmark smoke runs (bench/ --quick)"
    python bench/run_all.py --quick
fi
