"""podfleet as an Airflow executor: ``[core] executor = podfleet.airflow.PodFleetExecutor``.

Install with ``pip install 'podfleet[airflow]'``. The package registers itself as an Airflow
provider (entry point ``apache_airflow_provider``, see :mod:`podfleet.airflow.provider`),
which brings the ``[podfleet]`` config section and the ``airflow podfleet`` CLI group.

Nothing here imports Airflow at import time of ``podfleet.airflow`` itself, so the provider
metadata can be read without Airflow's heavy imports; :class:`PodFleetExecutor` is loaded on
first access.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PodFleetExecutor"]


def __getattr__(name: str) -> Any:
    if name == "PodFleetExecutor":
        from podfleet.airflow.executor import PodFleetExecutor

        return PodFleetExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
