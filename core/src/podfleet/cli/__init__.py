"""The ``podfleet`` command line.

Each subcommand lives with the part it drives (``podfleet.simulator.cli``,
``podfleet.workers.cli``, …) as a module with ``add_arguments(parser)`` and ``run(args) -> int``.
Only the chosen subcommand's module is imported, so ``podfleet status`` does not pay for
starting dramatiq, and ``podfleet sim`` does not need a database driver. The command lives in
podfleet-core; a subcommand whose part is not installed (``podfleet sim`` on a scheduler host
with only podfleet-executor) says which distribution it needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from podfleet.settings import SettingsError
from podfleet.version import __version__

# name -> (module, the distribution that ships it, one-line help)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("podfleet.demo", "podfleet-local",
             "run a fleet of tasks through the whole pipeline, locally"),
    "sim": ("podfleet.simulator.cli", "podfleet-simulator",
            "serve a simulated Kubernetes cluster"),
    "worker": ("podfleet.workers.cli", "podfleet-workers",
               "run launcher/watcher worker processes"),
    "executor": ("podfleet.executor.cli.service", "podfleet-executor",
                 "run an executor that follows every task"),
    "submit": ("podfleet.executor.cli.submit", "podfleet-executor",
               "submit tasks to run as pods (--wait: follow them)"),
    "status": ("podfleet.executor.cli.status", "podfleet-executor",
               "show tasks and executors"),
    "logs": ("podfleet.executor.cli.logs", "podfleet-executor",
             "show or follow a task's log (pod or archive)"),
    "db": ("podfleet.executor.cli.db", "podfleet-executor",
           "manage the metadata database (db upgrade)"),
}


class MissingPart(Exception):
    """A subcommand whose part (distribution) is not installed."""


def load_command(name: str) -> ModuleType:
    """The module of subcommand ``name``; :class:`MissingPart` when its part is absent."""
    module_name, distribution, _ = COMMANDS[name]
    part_package = ".".join(module_name.split(".")[:2])
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and part_package.startswith(exc.name):
            raise MissingPart(f"podfleet {name} needs {distribution}, which is not installed "
                              f"(pip install {distribution})") from exc
        raise


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podfleet",
        description="Run every task of a DAG fleet as its own Kubernetes pod.",
        epilog="Configuration comes from PODFLEET_* environment variables "
               "(see docs/configuration.md).")
    parser.add_argument("--version", action="version", version=f"podfleet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, _, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            load_command(name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    try:
        parser = build_parser(command if command in COMMANDS else None)
    except MissingPart as exc:
        print(f"podfleet: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(args_list)
    module = load_command(args.command)
    try:
        code: int = module.run(args)
    except SettingsError as exc:
        print(f"podfleet {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
