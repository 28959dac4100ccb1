#!/usr/bin/env bash
# Release every part at one version: writes it into podfleet.version (which podfleet-core's
# build reads) and into every part's pyproject.toml, its own version and its pins on the
# other parts. tests/deploy/test_one_version.py checks that they agree.
#   scripts/set-version.sh 0.2.0
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/parts.sh
source "$ROOT/scripts/parts.sh"
new="${1:?usage: scripts/set-version.sh VERSION}"
if ! [[ "$new" =~ ^[0-9]+\.[0-9]+\.[0-9]+([.a-z0-9]*)$ ]]; then
    echo "set-version: $new is not a version like 1.2.3" >&2
    exit 2
fi
sed -i -E "s/^__version__ = \".*\"$/__version__ = \"$new\"/" \
    "$ROOT/core/src/podfleet/version/__init__.py"
for part in . "${PODFLEET_PARTS[@]}" "${PODFLEET_PROVIDERS[@]}"; do
    # The project's own version (core's is dynamic: it has none), then its podfleet pins.
    sed -i -E -e "s/^version = \".*\"$/version = \"$new\"/" \
        -e "s/\"(podfleet-[a-z]+(\[[a-z,]+\])?)==[^\"]*\"/\"\1==$new\"/g" \
        "$ROOT/$part/pyproject.toml"
done
echo "every part is at $new; re-install them (scripts/bootstrap.sh) for their metadata"
