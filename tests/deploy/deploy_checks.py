"""Shared by the deploy tests: the repository root, YAML loading, required external tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from service_checks import require_tool

__all__ = ["ROOT", "load_all", "require_tool"]

ROOT = Path(__file__).resolve().parents[2]


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
