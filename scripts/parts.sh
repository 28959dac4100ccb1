#!/usr/bin/env bash
# podfleet's parts: each folder is a source root of the `podfleet` namespace with a
# pyproject.toml of its own (docs/architecture.md, "Layout"). Sourced by scripts/bootstrap.sh,
# scripts/airflow-venv.sh and scripts/lock.sh; tests/deploy/test_parts.py checks the list.
PODFLEET_PARTS=(core monitoring executor workers simulator local)
# In a virtualenv of its own (scripts/airflow-venv.sh): it needs Airflow.
PODFLEET_PROVIDERS=(providers/airflow)

# `-e <folder>` for every part (and provider, with --providers), for one pip install.
podfleet_part_args() {
    local root="$1" part
    shift
    for part in "${PODFLEET_PARTS[@]}"; do printf -- '-e\n%s\n' "$root/$part"; done
    if [ "${1:-}" = "--providers" ]; then
        for part in "${PODFLEET_PROVIDERS[@]}"; do printf -- '-e\n%s\n' "$root/$part"; done
    fi
}

# A digest of every pyproject.toml: a changed one means re-installing.
podfleet_projects_digest() {
    local root="$1"
    shift
    cat "$root/pyproject.toml" "$root"/*/pyproject.toml "$root"/providers/*/pyproject.toml "$@" \
        | sha256sum | cut -c1-16
}
