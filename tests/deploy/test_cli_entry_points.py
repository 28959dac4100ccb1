"""Each part registers its own subcommands of ``podfleet`` (the ``podfleet.cli`` entry-point
group in its pyproject.toml); the command in podfleet-core discovers them and knows of no
part's modules."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib

from deploy_checks import ROOT

from podfleet.cli import ENTRY_POINT_GROUP, PART_OF_SUBCOMMAND, registered_subcommands

PARTS = ("core", "monitoring", "executor", "workers", "simulator", "local", "providers/airflow")


def declared_subcommands() -> dict[str, tuple[str, str]]:
    """name -> (distribution, module), as the parts' pyproject.toml files declare them."""
    found: dict[str, tuple[str, str]] = {}
    for part in PARTS:
        table = tomllib.loads((ROOT / part / "pyproject.toml").read_text())["project"]
        for name, module in table.get("entry-points", {}).get(ENTRY_POINT_GROUP, {}).items():
            assert name not in found, f"podfleet {name} is registered twice"
            found[name] = (table["name"], module)
    return found


def test_the_installed_parts_register_what_their_projects_declare() -> None:
    # (After a change to an entry point, re-install the part: scripts/bootstrap.sh.)
    registered = {name: ep.value for name, ep in registered_subcommands().items()}
    assert registered == {name: module for name, (_, module) in declared_subcommands().items()}


def test_the_part_named_for_a_missing_subcommand_is_the_one_that_registers_it() -> None:
    declared = {name: part for name, (part, _) in declared_subcommands().items()}
    assert declared == PART_OF_SUBCOMMAND


def test_every_registered_subcommand_has_help_arguments_and_a_run() -> None:
    for name, entry_point in registered_subcommands().items():
        module = importlib.import_module(entry_point.module)
        assert isinstance(module.HELP, str) and module.HELP, name
        assert callable(module.add_arguments) and callable(module.run), name


def test_podfleet_help_lists_every_subcommand_with_its_help() -> None:
    shown = subprocess.run([sys.executable, "-m", "podfleet.cli", "--help"],
                           capture_output=True, text=True, timeout=120, check=False,
                           env={**os.environ, "COLUMNS": "200"})  # a line per subcommand
    assert shown.returncode == 0, shown.stderr
    for name, entry_point in registered_subcommands().items():
        help_text = importlib.import_module(entry_point.module).HELP
        assert any(line.split(None, 1) == [name, help_text]
                   for line in shown.stdout.splitlines()), (name, shown.stdout)
