"""The ``podfleet`` command line.

Each subcommand lives with the part it drives (``podfleet.simulator.cli``,
``podfleet.workers.cli``, …) as a module with ``add_arguments(parser)`` and ``run(args) -> int``.
Only the chosen subcommand's module is imported, so ``podfleet status`` does not pay for
starting dramatiq, and ``podfleet sim`` does not need a database driver.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from podfleet import __version__
from podfleet.settings import SettingsError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("podfleet.demo", "run a fleet of tasks through the whole pipeline, locally"),
    "sim": ("podfleet.simulator.cli", "serve a simulated Kubernetes cluster"),
    "worker": ("podfleet.workers.cli", "run launcher/watcher worker processes"),
    "executor": ("podfleet.executor.cli.service", "run an executor that follows every task"),
    "submit": ("podfleet.executor.cli.submit", "submit tasks to run as pods (--wait: follow them)"),
    "status": ("podfleet.executor.cli.status", "show tasks and executors"),
    "logs": ("podfleet.executor.cli.logs", "show or follow a task's log (pod or archive)"),
    "db": ("podfleet.executor.cli.db", "manage the metadata database (db upgrade)"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="podfleet",
        description="Run every task of a DAG fleet as its own Kubernetes pod.",
        epilog="Configuration comes from PODFLEET_* environment variables "
               "(see docs/configuration.md).")
    parser.add_argument("--version", action="version", version=f"podfleet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module_name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(args_list)
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        code: int = module.run(args)
    except SettingsError as exc:
        print(f"podfleet {args.command}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
