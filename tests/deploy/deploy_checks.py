"""Shared by the deploy tests: the repository root, YAML loading, required external tools, a
part's wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from service_checks import require_tool

__all__ = ["ROOT", "build_wheel", "load_all", "require_tool"]

ROOT = Path(__file__).resolve().parents[2]


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def build_wheel(part: str, out: Path) -> Path:
    """The wheel of ``part`` (a folder under the root), built offline into ``out``."""
    # Built from a copy: setuptools writes build/ and egg-info beside the sources.
    copy = out / f"{part.replace('/', '-')}-project"
    shutil.copytree(ROOT / part, copy, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(copy)],
        capture_output=True, text=True, timeout=180, check=False)
    assert built.returncode == 0, built.stderr
    shutil.rmtree(copy)
    (wheel,) = out.glob("*.whl")
    return wheel
