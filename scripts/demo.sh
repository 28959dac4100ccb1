#!/usr/bin/env bash
# The demo: a fleet of tasks through the whole pipeline on this machine (simulated cluster,
# private Redis, SQLite). Arguments go to `podfleet demo` (try --help), e.g. --tasks 5000.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/bootstrap.sh
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec podfleet demo "$@"
