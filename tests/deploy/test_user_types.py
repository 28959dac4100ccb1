"""podfleet is typed for downstream users: a user's program, type-checked with ``mypy --strict``
against podfleet-core installed from its wheel into an environment of its own, sees
podfleet's types (not ``Any``); and that environment's ``podfleet`` command, with no other
part installed, names the part each absent subcommand needs."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from deploy_checks import build_wheel

from podfleet.version import __version__

USER_PROGRAM = """\
from podfleet.contracts.keys import TaskKey
from podfleet.settings import Settings
from podfleet.version import __version__


def launch_rate() -> float:
    return Settings.from_env().launch.rate


def first_try(dag_id: str) -> TaskKey:
    return TaskKey(dag_id, "load", "manual__1")


release: str = __version__
"""

# The same program, misusing a typed API: mypy must refuse it, so the types are really seen.
MISUSE = USER_PROGRAM + """

def misused() -> object:
    return Settings.from_env().launch.rate + "x"
"""


@pytest.fixture(scope="module")
def core_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh virtualenv holding only podfleet-core's wheel (no dependencies:
    mypy needs none, and the command's start-up imports none)."""
    root = tmp_path_factory.mktemp("core-only")
    wheel = build_wheel("core", root / "wheels")
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    # pip --python: this pip installs into that environment alone (with --prefix it would
    # also uninstall the running environment's podfleet-core).
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "-q", str(wheel)],
        capture_output=True, text=True, timeout=180, check=False)
    assert installed.returncode == 0, installed.stderr
    return python


def mypy(python: Path, program: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    (workdir / "user_program.py").write_text(program)
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--config-file", os.devnull, "--python-executable", str(python), "user_program.py"],
        cwd=workdir, capture_output=True, text=True, timeout=300, check=False, env=env)


def in_core_only(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("PODFLEET_", "PYTHON", "VIRTUAL_ENV"))}
    # Run from the environment's folder: the checkout (cwd, on sys.path) holds podfleet's own.
    return subprocess.run([str(python), "-m", "podfleet.cli", *args], capture_output=True,
                          text=True, timeout=60, check=False, env=clean, cwd=python.parent)


def test_the_environment_holds_podfleet_core_alone(core_only: Path) -> None:
    listed = subprocess.run([str(core_only), "-c", "import importlib.metadata as m; "
                             "print(sorted(d.metadata['Name'] for d in m.distributions()))"],
                            capture_output=True, text=True, timeout=60, check=True,
                            cwd=core_only.parent)
    assert listed.stdout.strip() == "['podfleet-core']"


@pytest.mark.slow
def test_a_user_program_type_checks_strictly_against_the_wheel(
        core_only: Path, tmp_path: Path) -> None:
    checked = mypy(core_only, USER_PROGRAM, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.slow
def test_mypy_refuses_a_user_program_that_misuses_a_typed_setting(
        core_only: Path, tmp_path: Path) -> None:
    checked = mypy(core_only, MISUSE, tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert 'Unsupported operand types for + ("float" and "str")' in checked.stdout
    assert checked.stdout.count("error:") == 1, checked.stdout


def test_podfleet_version_prints_the_one_version(core_only: Path) -> None:
    printed = in_core_only(core_only, "--version")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == f"podfleet {__version__}"


@pytest.mark.parametrize(("subcommand", "distribution"), [
    ("sim", "podfleet-simulator"), ("worker", "podfleet-workers"),
    ("submit", "podfleet-executor"), ("demo", "podfleet-local")])
def test_a_subcommand_of_a_part_not_installed_names_the_part(
        core_only: Path, subcommand: str, distribution: str) -> None:
    result = in_core_only(core_only, subcommand, "--help")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"podfleet: podfleet {subcommand} needs {distribution}, which is not installed "
        f"(pip install {distribution})"]
