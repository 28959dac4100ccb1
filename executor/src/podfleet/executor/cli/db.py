"""``podfleet db upgrade|downgrade|current``: manage the metadata DB's schema."""

from __future__ import annotations

import argparse

from podfleet.executor import migrate
from podfleet.executor.cli.preflight import fail
from podfleet.settings import Settings, redact_url

#: ``podfleet --help``'s line for this subcommand.
HELP = "manage the metadata database (db upgrade)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="db_action", metavar="ACTION", required=True)
    upgrade = actions.add_parser("upgrade", help="create or upgrade podfleet's tables")
    upgrade.add_argument("--revision", default="head", help="target revision (default: head)")
    downgrade = actions.add_parser("downgrade", help="take the schema down to a revision")
    downgrade.add_argument("--revision", required=True,
                           help="target revision ('base' drops podfleet's tables)")
    actions.add_parser("current", help="print the schema's revision")


def run(args: argparse.Namespace) -> int:
    import sqlalchemy.exc

    url = Settings.from_env().database.url
    try:
        return _act(args, url)
    except sqlalchemy.exc.DBAPIError as exc:
        # One line naming the DB, not the driver's traceback
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        return fail("db", f"cannot reach the metadata DB {redact_url(url)} "
                          f"(PODFLEET_DATABASE_URL): {reason}")


def _act(args: argparse.Namespace, url: str) -> int:
    if args.db_action == "upgrade":
        migrate.upgrade(url, args.revision)
        print(f"metadata DB at revision {migrate.current_revision(url)}")
    elif args.db_action == "downgrade":
        migrate.downgrade(url, args.revision)
        print(f"metadata DB at revision {migrate.current_revision(url)}")
    else:
        print(migrate.current_revision(url) or "(empty)")
    return 0
