"""Shared by the deploy tests: the repository root, YAML loading, required external tools."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def require_tool(name: str) -> str:
    """The path of executable ``name``; skips (fails in CI) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (Debian: apt-get install -y {name})"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found
