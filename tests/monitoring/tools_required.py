"""External tools tests need: skip locally when missing, fail in CI (CI must not pass by
skipping). Install them with: apt-get install -y prometheus docker-compose."""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str) -> str:
    """The path of executable ``name``; skips (fails in CI) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian: apt-get install -y prometheus docker-compose)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found
