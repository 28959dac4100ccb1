#!/usr/bin/env bash
# A second virtualenv, .venv-airflow, with Airflow 3.3, the cncf.kubernetes provider (which pins
# the kubernetes client to 36.x) and podfleet[airflow], for the Airflow integration's tests and
# benchmark. Sourced by scripts/test.sh; safe to run again (it only redoes what changed).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
AIRFLOW_VENV="$ROOT/.venv-airflow"
AIRFLOW_STAMP="$AIRFLOW_VENV/.podfleet-installed"
AIRFLOW_PINS=("apache-airflow==3.3.*" "apache-airflow-providers-cncf-kubernetes==10.25.*")

_af_log() { printf '\033[1m[airflow-venv]\033[0m %s\n' "$*" >&2; }

_af_python="${PY:-python3}"
if [ ! -x "$AIRFLOW_VENV/bin/python" ]; then
    _af_log "creating .venv-airflow"
    "$_af_python" -m venv "$AIRFLOW_VENV"
fi
# shellcheck source=scripts/parts.sh
source "$ROOT/scripts/parts.sh"
_af_want="$(podfleet_projects_digest "$ROOT" <(printf '%s\n' "${AIRFLOW_PINS[@]}"))"
if [ ! -f "$AIRFLOW_STAMP" ] || [ "$(cat "$AIRFLOW_STAMP")" != "$_af_want" ]; then
    _af_log "installing Airflow 3.3, the cncf.kubernetes provider and podfleet[airflow] (~2 min)"
    "$AIRFLOW_VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    mapfile -t _af_parts < <(podfleet_part_args "$ROOT" --providers)
    "$AIRFLOW_VENV/bin/python" -m pip install -q "${AIRFLOW_PINS[@]}" "${_af_parts[@]}" \
        "$ROOT[airflow,postgres]" \
        pytest pytest-timeout psutil 2>&1 | grep -v -E "^WARNING: Location|^$" >&2 || true
    "$AIRFLOW_VENV/bin/python" -c "import airflow, podfleet.airflow.executor" \
        || { _af_log "install failed"; exit 1; }
    echo "$_af_want" > "$AIRFLOW_STAMP"
fi
export TEST_AIRFLOW_PYTHON="$AIRFLOW_VENV/bin/python"
