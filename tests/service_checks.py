"""What a test does when a service or tool it needs is missing: skip locally, fail in CI.

CI must never pass by skipping what it should test, so with ``CI=true`` a missing
``redis-server``, PostgreSQL, ``promtool``, ``kubectl`` or client version fails the test.
``scripts/test.sh`` (what CI runs) installs all of them.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The Debian package that provides each external tool the tests run.
DEBIAN_PACKAGES = {"promtool": "prometheus", "docker-compose": "docker-compose",
                   "kubectl": "kubectl", "redis-server": "redis-server"}


def missing_service(message: str) -> NoReturn:
    """Fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    """The path of executable ``name``; skips (fails in CI) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        package = DEBIAN_PACKAGES.get(name, name)
        missing_service(f"{name} is not installed (Debian: apt-get install -y {package})")
    return found
