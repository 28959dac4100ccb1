"""The ``podfleet`` command line.

The command lives in podfleet-core; its subcommands live with the parts they drive, and each
part registers its own in its ``pyproject.toml``, in the ``podfleet.cli`` entry-point group::

    [project.entry-points."podfleet.cli"]
    sim = "podfleet.simulator.cli"

A subcommand is a module with ``HELP`` (its one-line help), ``add_arguments(parser)`` and
``run(args) -> int`` (:class:`Subcommand`). Only the chosen subcommand's module is imported,
so ``podfleet status`` does not pay for starting dramatiq and ``podfleet sim`` does not need a
database driver (``podfleet --help`` imports them all, for their help). A subcommand of one of
podfleet's own parts that is not installed (``podfleet sim`` on a scheduler host with only
podfleet-executor) says which distribution it needs, and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Protocol, cast

from podfleet.settings import SettingsError
from podfleet.version import __version__

#: The entry-point group in which a part registers its subcommands: name = "module".
ENTRY_POINT_GROUP = "podfleet.cli"

# Which of podfleet's parts registers each of its subcommands. Only read when a subcommand is
# not registered, to name the part to install; tests/deploy/test_cli_entry_points.py checks
# that it says what the parts' pyproject.toml files register.
PART_OF_SUBCOMMAND: dict[str, str] = {
    "demo": "podfleet-local",
    "sim": "podfleet-simulator",
    "worker": "podfleet-workers",
    "executor": "podfleet-executor",
    "submit": "podfleet-executor",
    "status": "podfleet-executor",
    "logs": "podfleet-executor",
    "db": "podfleet-executor",
}


class Subcommand(Protocol):
    """What a module registered in the ``podfleet.cli`` group provides."""

    HELP: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class MissingPart(Exception):
    """A subcommand whose part (distribution) is not installed."""


def registered_subcommands() -> dict[str, metadata.EntryPoint]:
    """Every subcommand the installed parts register, by name (the first registration wins)."""
    found: dict[str, metadata.EntryPoint] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name, entry_point)
    return dict(sorted(found.items()))


def _missing(name: str, distribution: str) -> MissingPart:
    return MissingPart(f"podfleet {name} needs {distribution}, which is not installed "
                       f"(pip install {distribution})")


def load_subcommand(name: str, entry_point: metadata.EntryPoint) -> Subcommand:
    """The module of subcommand ``name``; :class:`MissingPart` when its part cannot be imported
    (registered, but its modules are gone)."""
    module_name = entry_point.module
    part_package = ".".join(module_name.split(".")[:2])
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and part_package.startswith(exc.name):
            distribution = entry_point.dist.name if entry_point.dist else part_package
            raise _missing(name, distribution) from exc
        raise
    return cast(Subcommand, module)


def build_parser(command: str | None, registered: dict[str, metadata.EntryPoint],
                 with_help: bool = False) -> argparse.ArgumentParser:
    """The parser: every registered subcommand, with the arguments of ``command`` only (the
    others' modules stay unimported) and, ``with_help``, each one's help."""
    parser = argparse.ArgumentParser(
        prog="podfleet",
        description="Run every task of a DAG fleet as its own Kubernetes pod.",
        epilog="Configuration comes from PODFLEET_* environment variables "
               "(see docs/configuration.md).")
    parser.add_argument("--version", action="version", version=f"podfleet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, entry_point in registered.items():
        help_text = None
        if with_help or name == command:
            try:
                help_text = load_subcommand(name, entry_point).HELP
            except MissingPart as exc:
                if name == command:
                    raise
                help_text = f"(unavailable: {exc})"
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            load_subcommand(name, entry_point).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    registered = registered_subcommands()
    asks_for_help = command is None and not {"-h", "--help"}.isdisjoint(args_list)
    try:
        if command in PART_OF_SUBCOMMAND and command not in registered:
            raise _missing(command, PART_OF_SUBCOMMAND[command])
        parser = build_parser(command if command in registered else None, registered,
                              with_help=asks_for_help)
    except MissingPart as exc:
        print(f"podfleet: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(args_list)
    subcommand = load_subcommand(args.command, registered[args.command])
    try:
        code: int = subcommand.run(args)
    except SettingsError as exc:
        print(f"podfleet {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
