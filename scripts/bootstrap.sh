#!/usr/bin/env bash
# Make this checkout runnable: a virtualenv in .venv with podfleet and its dev tools installed.
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it only redoes what changed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.podfleet-installed"

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

find_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
           "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"; return 0
        fi
    done
    return 1
}

apt_install() {
    # Debian packages for services and tools podfleet runs; only when we may (root) and must.
    if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
        log "please install: $* (apt-get install $*)"; return 1
    fi
    if [ -z "${_PODFLEET_APT_UPDATED:-}" ]; then
        log "apt-get update"
        apt-get update -qq >/dev/null 2>&1 || true
        export _PODFLEET_APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# pip's output without its noise, and without its complaint that the Airflow provider (installed
# here without Airflow, see below) misses Airflow.
pip_noise_filtered() {
    grep -v -E "^WARNING: Location|^$|dependency resolver does not|^podfleet-airflow .* requires"
}

PY="$(find_python)" || { log "Python 3.11+ is required"; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv in .venv with $PY"
    "$PY" -m venv "$VENV" || { apt_install python3-venv && "$PY" -m venv "$VENV"; }
fi

# The versions CI tested: requirements/lock.txt pins everything `.[dev]` resolves to (within
# the parts' ranges) and is installed as constraints; scripts/lock.sh refreshes it.
# shellcheck source=scripts/parts.sh
source "$ROOT/scripts/parts.sh"
LOCK="$ROOT/requirements/lock.txt"
want="$(podfleet_projects_digest "$ROOT" "$LOCK")"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$want" ]; then
    log "installing podfleet's parts and their dependencies (pinned by requirements/lock.txt) into .venv"
    "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    mapfile -t part_args < <(podfleet_part_args "$ROOT")
    "$VENV/bin/python" -m pip install -q -c "$LOCK" "${part_args[@]}" "$ROOT[dev]" 2>&1 \
        | pip_noise_filtered >&2 || true
    # The Airflow provider without Airflow (that lives in .venv-airflow): its pure parts, the
    # [podfleet] section and executor_config settlement, are tested here, and linted.
    for provider in "${PODFLEET_PROVIDERS[@]}"; do
        # (pip then says the provider's Airflow is missing: that is the point)
        "$VENV/bin/python" -m pip install -q --no-deps -e "$ROOT/$provider" 2>&1 \
            | pip_noise_filtered >&2 || true
    done
    "$VENV/bin/python" -c "import podfleet.cli, podfleet.executor, podfleet.workers, podfleet.simulator, podfleet.local" \
        || { log "install failed"; exit 1; }
    echo "$want" > "$STAMP"
fi

# redis-server: the demo starts a private one unless PODFLEET_REDIS_URL is set; tests always do.
if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server || true
fi

export PATH="$VENV/bin:$PATH"
export PODFLEET_ROOT="$ROOT"
