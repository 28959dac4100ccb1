"""The ``[podfleet]`` Airflow config section, and podfleet's settings read from it.

Every ``PODFLEET_*`` variable has an option of the same name in lower case without the
prefix (``PODFLEET_REDIS_URL`` → ``[podfleet] redis_url``, or ``AIRFLOW__PODFLEET__REDIS_URL``)
with the same default, so ``airflow config get-value podfleet redis_url`` answers. An option
set to something other than its default wins over the variable; options left at their default
fall back to the ``PODFLEET_*`` variable, which the worker processes read too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from podfleet.settings import VARIABLES, Settings

SECTION = "podfleet"
PREFIX = "PODFLEET_"
# Shown as *** by `airflow config list` and the UI.
SENSITIVE = frozenset({"redis_url", "database_url", "signing_key"})


def option_name(variable: str) -> str:
    """``PODFLEET_REDIS_URL`` → ``redis_url``."""
    return variable[len(PREFIX):].lower()


def config_section() -> dict[str, Any]:
    """The provider's ``config`` entry for ``[podfleet]``, generated from podfleet's variables."""
    options: dict[str, Any] = {}
    for variable in VARIABLES:
        options[option_name(variable.name)] = {
            "description": f"{variable.doc} (Same as the {variable.name} variable.)\n",
            "version_added": "0.1.0",
            "type": "string",
            "example": None,
            "default": variable.default,
            "sensitive": option_name(variable.name) in SENSITIVE,
        }
    options["pod_launch_failure_retries"] = {
        "description": "How many times a pod that failed before its task started (the task "
                       "instance still queued) is replaced by a new pod without using up one "
                       "of the task's retries; -1: without limit, 0: never.\n",
        "version_added": "0.1.0", "type": "integer", "example": None, "default": "1",
    }
    options["pod_launch_failure_excluded_container_reasons"] = {
        "description": "Container reasons that never count as a pre-start failure (Error: the "
                       "task process started and died before it could report).\n",
        "version_added": "0.1.0", "type": "string", "example": None, "default": "Error",
    }
    return {SECTION: {"description": "podfleet: Airflow tasks as Kubernetes pods, launched by "
                                     "a dramatiq worker pool.\n", "options": options}}


def podfleet_environ(get: Callable[[str, str], str | None],
                     environ: Mapping[str, str] | None = None,
                     *, executor_id: str | None = None) -> dict[str, str]:
    """The ``PODFLEET_*`` mapping podfleet's :class:`Settings` reads, for one executor.

    ``get(section, option)`` reads Airflow's config (per team when the executor has one).
    ``executor_id`` is used unless ``[podfleet] executor_id`` is set.
    """
    env = {k: v for k, v in (os.environ if environ is None else environ).items()
           if k.startswith(PREFIX)}
    for variable in VARIABLES:
        option = option_name(variable.name)
        value = get(SECTION, option)
        if value is not None and value != variable.default:
            env[variable.name] = value
    if executor_id and not env.get("PODFLEET_EXECUTOR_ID"):
        env["PODFLEET_EXECUTOR_ID"] = executor_id
    return env


def settings_from_airflow(get: Callable[[str, str], str | None],
                          *, executor_id: str | None = None) -> Settings:
    """podfleet's settings from ``[podfleet]`` and the ``PODFLEET_*`` variables."""
    return Settings.from_env(podfleet_environ(get, executor_id=executor_id))


def executor_id_for_job(job_id: object, team_name: str | None = None) -> str | None:
    """One podfleet executor per scheduler job: ``airflow-<job id>`` (``-<team>``).

    A restarted scheduler is a new job with a new id, so it never collides with its dead
    predecessor's registration; Airflow's adoption hands the predecessor over explicitly.
    """
    if job_id is None:
        return None
    suffix = f"-{team_name}" if team_name else ""
    return f"airflow-{job_id}{suffix}"[:63].rstrip("-_.")
