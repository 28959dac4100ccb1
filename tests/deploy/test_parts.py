"""podfleet's parts: each folder with a pyproject.toml is a source root of the one ``podfleet``
namespace, built as a distribution of its own, with no file linked or duplicated. A part
declares every third-party package it imports (or gets it from a part it depends on), its
wheel carries every file it has, and the sides of a deployment run with only their parts:
the worker side without SQLAlchemy, the scheduler side without the simulator, uvloop or rich.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Mapping
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from deploy_checks import ROOT, build_wheel
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PARTS = ("core", "monitoring", "executor", "workers", "simulator", "local", "providers/airflow")
# A module a part imports whose distribution is not installed here (Airflow is in .venv-airflow).
NOT_INSTALLED_HERE = {"airflow": "apache-airflow"}


def project(part: str) -> dict[str, object]:
    data: dict[str, object] = tomllib.loads((ROOT / part / "pyproject.toml").read_text())
    return data["project"]  # type: ignore[return-value]


@cache
def part_of_distribution() -> dict[str, str]:
    return {canonicalize_name(str(project(part)["name"])): part for part in PARTS}


def requirements(part: str) -> list[Requirement]:
    data = project(part)
    texts = list(data["dependencies"])  # type: ignore[call-overload]
    for extra in data.get("optional-dependencies", {}).values():  # type: ignore[attr-defined]
        texts.extend(extra)
    return [Requirement(text) for text in texts]


def available_distributions(part: str) -> set[str]:
    """What ``part`` may import: what it declares and, through its podfleet dependencies,
    what they declare."""
    names: set[str] = set()
    todo, seen = [part], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for requirement in requirements(current):
            name = canonicalize_name(requirement.name)
            names.add(name)
            if name in part_of_distribution():
                todo.append(part_of_distribution()[name])
    return names


def source_files(part: str) -> list[Path]:
    return sorted(p for p in (ROOT / part / "src" / "podfleet").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def imported_top_level_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@cache
def installed_distributions_by_module() -> Mapping[str, list[str]]:
    """Read once: each read walks every installed distribution's files (seconds)."""
    return metadata.packages_distributions()


def distributions_of(module: str) -> set[str]:
    if module in NOT_INSTALLED_HERE:
        return {NOT_INSTALLED_HERE[module]}
    return {canonicalize_name(d) for d in installed_distributions_by_module().get(module, [])}


def test_the_repository_has_no_symbolic_links() -> None:
    listed = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    if listed.returncode == 0:
        links = [line.split("\t", 1)[1] for line in listed.stdout.splitlines()
                 if line.startswith("120000 ")]
    else:  # not a git checkout: walk the files
        links = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
                 if p.is_symlink() and ".venv" not in p.parts[len(ROOT.parts):][:1]]
    assert links == []


def test_every_folder_with_a_project_is_a_listed_part() -> None:
    found = {str(p.parent.relative_to(ROOT)) for p in ROOT.glob("*/pyproject.toml")}
    found |= {str(p.parent.relative_to(ROOT)) for p in ROOT.glob("providers/*/pyproject.toml")}
    assert found == set(PARTS)
    parts_sh = (ROOT / "scripts" / "parts.sh").read_text()
    for part in PARTS:
        assert f"{part}" in parts_sh, f"scripts/parts.sh does not install {part}"


def test_the_root_project_depends_on_every_part_but_the_providers() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    depends = {canonicalize_name(Requirement(t).name) for t in root["dependencies"]}
    expected = {canonicalize_name(str(project(p)["name"])) for p in PARTS
                if not p.startswith("providers/")}
    assert depends == expected


@pytest.mark.parametrize("part", PARTS)
def test_a_part_is_a_portion_of_the_podfleet_namespace(part: str) -> None:
    namespace = ROOT / part / "src" / "podfleet"
    assert namespace.is_dir()
    assert not (namespace / "__init__.py").exists(), (
        f"{namespace / '__init__.py'} would make podfleet a regular package: the other "
        "parts' modules could not be imported beside it")
    # Nothing else to install from the source root (pip's egg-info is a build output).
    assert [p.name for p in (ROOT / part / "src").iterdir()
            if p.name != "__pycache__" and not p.name.endswith(".egg-info")] == ["podfleet"]


@pytest.mark.parametrize("part", PARTS)
def test_every_third_party_import_is_declared_by_the_part_or_its_dependencies(
        part: str) -> None:
    allowed = available_distributions(part)
    undeclared: dict[str, str] = {}
    for path in source_files(part):
        if path.suffix != ".py":
            continue
        for module in imported_top_level_modules(path):
            if module in sys.stdlib_module_names or module in {"podfleet", "__future__"}:
                continue
            distributions = distributions_of(module)
            assert distributions, f"{path.relative_to(ROOT)} imports {module}, which nothing " \
                "installed here provides"
            if not distributions & allowed:
                undeclared[module] = str(path.relative_to(ROOT))
    assert undeclared == {}, (
        f"{part}/pyproject.toml (or a part it depends on) must declare what these import")


# One wheel build in the default run (core: the most data files); every part's when slow ones run.
@pytest.mark.parametrize("part", [
    part if part == "core" else pytest.param(part, marks=pytest.mark.slow) for part in PARTS])
def test_the_wheel_of_a_part_carries_every_source_and_data_file(
        part: str, tmp_path: Path) -> None:
    wheel = build_wheel(part, tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        in_wheel = {name for name in archive.namelist() if ".dist-info/" not in name}
    expected = {str(p.relative_to(ROOT / part / "src")) for p in source_files(part)}
    assert in_wheel == expected


# A finder that refuses some modules, as an environment without their distribution would.
REFUSE = """
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def __init__(self, names):
        self.names = names
    def find_spec(self, name, path=None, target=None):
        if any(name == n or name.startswith(n + ".") for n in self.names):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent(sys.argv[1].split(",")))
del sys.argv[1]
"""


def modules_of(*parts: str) -> list[str]:
    names = []
    for part in parts:
        src = ROOT / part / "src"
        for path in source_files(part):
            # __main__ runs a program; migrations/ are scripts alembic runs
            if (path.suffix == ".py" and path.stem != "__main__"
                    and "migrations" not in path.parts):
                relative = path.relative_to(src).with_suffix("")
                names.append(".".join(relative.parts[:-1] if path.stem == "__init__"
                                      else relative.parts))
    return names


def run_without(absent: list[str], code: str, *args: str,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", REFUSE + code, ",".join(absent), *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
        env={**os.environ, **(env or {})})


IMPORT_ALL = """
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
print("imported", len(sys.argv) - 1)
"""

CLI = """
from podfleet.cli import main
sys.exit(main(sys.argv[1:]))
"""

SCHEDULER_ABSENT = ["podfleet.simulator", "podfleet.workers", "podfleet.local", "uvloop", "rich"]
WORKER_ABSENT = ["podfleet.executor", "podfleet.simulator", "podfleet.local", "sqlalchemy",
                 "alembic", "psycopg", "rich", "uvloop"]


def test_the_refusing_finder_refuses() -> None:
    # The tests below mean something only if a refused module cannot be imported.
    result = run_without(["sqlalchemy"], IMPORT_ALL, "podfleet.executor.db")
    assert result.returncode != 0
    assert "No module named 'sqlalchemy'" in result.stderr


def test_the_worker_side_imports_without_sqlalchemy() -> None:
    modules = modules_of("core", "monitoring", "workers")
    result = run_without(WORKER_ABSENT, IMPORT_ALL, *modules)
    assert result.returncode == 0, result.stderr
    assert f"imported {len(modules)}" in result.stdout


def test_the_scheduler_side_imports_without_the_simulator_uvloop_or_rich() -> None:
    modules = modules_of("core", "monitoring", "executor")
    result = run_without(SCHEDULER_ABSENT, IMPORT_ALL, *modules)
    assert result.returncode == 0, result.stderr
    assert f"imported {len(modules)}" in result.stdout


@pytest.mark.slow
def test_the_scheduler_side_upgrades_and_reads_its_database_without_the_simulator(
        tmp_path: Path) -> None:
    env = {"PODFLEET_DATABASE_URL": f"sqlite:///{tmp_path / 'podfleet.sqlite'}"}
    upgraded = run_without(SCHEDULER_ABSENT, CLI, "db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    status = run_without(SCHEDULER_ABSENT, CLI, "status", env=env)
    assert status.returncode == 0, status.stderr


def test_a_subcommand_whose_part_is_missing_names_the_distribution_to_install() -> None:
    result = run_without(["podfleet.simulator"], CLI, "sim", "--help")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "podfleet: podfleet sim needs podfleet-simulator, which is not installed "
        "(pip install podfleet-simulator)"]
