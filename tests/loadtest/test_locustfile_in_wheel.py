"""The locustfile ships in podfleet-local's wheel, so ``pip install podfleet[loadtest]`` can run it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_contains_the_locustfile(tmp_path: Path) -> None:
    # When the wheel is built as a user (or the Dockerfile) builds it
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT / "local")], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("podfleet_local-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # Then the load test is in it, as a real file of the package
    assert {"podfleet/loadtest/__init__.py", "podfleet/loadtest/__main__.py",
            "podfleet/loadtest/locustfile.py"} <= names
