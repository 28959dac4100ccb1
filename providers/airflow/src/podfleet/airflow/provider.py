"""The provider metadata Airflow reads through the ``apache_airflow_provider`` entry point."""

from __future__ import annotations

from typing import Any

from podfleet.airflow.config import config_section
from podfleet.version import __version__


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers list`` shows, plus the ``[podfleet]`` config section."""
    return {
        # Airflow refuses a provider whose package-name is not the distribution carrying it.
        "package-name": "podfleet-airflow",
        "name": "podfleet",
        "description": "Runs every task as its own Kubernetes pod through a dramatiq worker "
                       "pool, under one cluster-wide launch rate limit.",
        "versions": [__version__],
        "executors": ["podfleet.airflow.executor.PodFleetExecutor"],
        "cli": ["podfleet.airflow.cli.get_cli_commands"],
        "config": config_section(),
    }
