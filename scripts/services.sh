#!/usr/bin/env bash
# Services and tools the test suite needs beyond the virtualenv. Sourced by scripts/test.sh.

ensure_postgres() {
    # Tests create (and drop) a fresh database on TEST_POSTGRES_URL's server.
    if [ -n "${TEST_POSTGRES_URL:-}" ]; then return 0; fi
    if python - <<'PY' 2>/dev/null
import psycopg
psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3).close()
PY
    then
        export TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        return 0
    fi
    log "no PostgreSQL on 127.0.0.1:5432: starting a private cluster"
    local bindir
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    if [ -z "$bindir" ] && ! command -v initdb >/dev/null 2>&1; then
        apt_install postgresql
        bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    fi
    local initdb="${bindir:+$bindir/}initdb" pgctl="${bindir:+$bindir/}pg_ctl"
    local data="$ROOT/.podfleet/pgdata" port
    port="$(python -c 'from podfleet.local.ports import free_port; print(free_port())')"
    mkdir -p "$ROOT/.podfleet"
    local as=()
    if [ "$(id -u)" = "0" ]; then
        # PostgreSQL refuses to run as root: run it as the postgres user.
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$ROOT/.podfleet"
        as=(runuser -u postgres --)
    fi
    rm -rf "$data"
    "${as[@]}" "$initdb" -D "$data" -U postgres -A trust >/dev/null
    "${as[@]}" "$pgctl" -D "$data" -o "-p $port -k /tmp -c listen_addresses=127.0.0.1" \
        -l "$data/log" -w start >/dev/null
    export TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
    # shellcheck disable=SC2064
    trap "${as[*]} $pgctl -D $data -m immediate stop >/dev/null 2>&1 || true" EXIT
}

ensure_test_tools() {
    command -v kubectl >/dev/null 2>&1 || log "kubectl not found: kubectl tests will fail in CI"
    # promtool checks the alert rules; docker-compose (v1, Python) validates the compose files
    # statically (no Docker engine is needed for `docker-compose config`).
    local missing=()
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "${missing[@]}" || log "could not install ${missing[*]}: their checks fail in CI"
    fi
}

ensure_client_versions() {
    # The Kubernetes layer is tested with the 36.x client too (Airflow's provider pins
    # kubernetes<37): installed beside the venv and put first on PYTHONPATH by that test.
    local target="$ROOT/.podfleet/kubernetes-36"
    if [ ! -d "$target/kubernetes" ]; then
        log "installing kubernetes 36.x into .podfleet/kubernetes-36 (client compatibility test)"
        python -m pip install -q --no-deps --target "$target" "kubernetes>=36,<37" six \
            2>&1 | grep -v -E "^WARNING: Location|^$" >&2 || true
    fi
}
