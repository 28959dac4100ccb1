"""One version for all parts: ``podfleet.version.__version__`` is where it is written,
podfleet-core's build reads it, and every other part states it and pins the parts it depends
on to it (``scripts/set-version.sh`` changes them all); ``podfleet --version`` prints it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata

import pytest
from deploy_checks import ROOT
from packaging.requirements import Requirement

from podfleet.version import __version__

# Every project: the parts, the providers and the root (meta-)project.
PROJECTS = (".", "core", "monitoring", "executor", "workers", "simulator", "local",
            "providers/airflow")


def project(folder: str) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())
    return data


def podfleet_pins(folder: str) -> dict[str, str]:
    """Each requirement of ``folder`` on a podfleet part: its text -> its specifier."""
    table = project(folder)["project"]
    texts = list(table["dependencies"])  # type: ignore[index]
    for extra in table.get("optional-dependencies", {}).values():  # type: ignore[attr-defined]
        texts.extend(extra)
    return {text: str(req.specifier) for text in texts
            if (req := Requirement(text)).name.startswith("podfleet-")}


def test_core_reads_its_version_from_podfleet_version() -> None:
    core = project("core")
    assert "version" not in core["project"]  # type: ignore[operator]
    assert core["project"]["dynamic"] == ["version"]  # type: ignore[index]
    assert core["tool"]["setuptools"]["dynamic"]["version"] == {  # type: ignore[index]
        "attr": "podfleet.version.__version__"}


@pytest.mark.parametrize("folder", [p for p in PROJECTS if p != "core"])
def test_every_other_project_is_at_the_one_version(folder: str) -> None:
    assert project(folder)["project"]["version"] == __version__  # type: ignore[index]


@pytest.mark.parametrize("folder", PROJECTS)
def test_every_pin_on_a_part_is_the_one_version(folder: str) -> None:
    pins = podfleet_pins(folder)
    assert {text: spec for text, spec in pins.items() if spec != f"=={__version__}"} == {}


def test_the_installed_parts_are_at_the_one_version() -> None:
    # The editable installs' metadata, as pip recorded it (re-install after a version change).
    for name in ("podfleet-core", "podfleet-monitoring", "podfleet-executor",
                 "podfleet-workers", "podfleet-simulator", "podfleet-local"):
        assert metadata.version(name) == __version__, name


def test_podfleet_version_prints_it() -> None:
    printed = subprocess.run([sys.executable, "-m", "podfleet.cli", "--version"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == f"podfleet {__version__}"
