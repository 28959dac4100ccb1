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
from podfleet.settings.declaration import Variable
from podfleet.settings.parsers import integer, text

SECTION = "podfleet"
PREFIX = "PODFLEET_"

# The Airflow executor's own options (no PODFLEET_* variable: only the Airflow executor requeues
# pods that failed before their task started), declared like podfleet's settings.
LAUNCH_FAILURE_RETRIES = Variable(
    "pod_launch_failure_retries", "1",
    "How many times a pod that failed before its task started (the task instance still "
    "queued) is replaced by a new pod without using up one of the task's retries; "
    "-1: without limit, 0: never.", integer(minimum=-1))
LAUNCH_FAILURE_EXCLUDED_REASONS = Variable(
    "pod_launch_failure_excluded_container_reasons", "Error",
    "Container reasons that never count as a pre-start failure (Error: the task process "
    "started and died before it could report).", text(empty_is_default=True))
EXECUTOR_OPTIONS = (LAUNCH_FAILURE_RETRIES, LAUNCH_FAILURE_EXCLUDED_REASONS)


def option_name(variable: str) -> str:
    """``PODFLEET_REDIS_URL`` → ``redis_url``."""
    return variable[len(PREFIX):].lower()


def _option(variable: Variable, description: str) -> dict[str, Any]:
    return {
        "description": description + "\n",
        "version_added": "0.1.0",
        "type": variable.parser.kind,
        "example": None,
        "default": variable.default,
        # Shown as *** by `airflow config list` and the UI.
        "sensitive": variable.secret,
    }


def config_section() -> dict[str, Any]:
    """The provider's ``config`` entry for ``[podfleet]``, generated from podfleet's variables
    and the executor's own options."""
    options = {option_name(v.name): _option(v, f"{v.doc} (Same as the {v.name} variable.)")
               for v in VARIABLES}
    options.update({v.name: _option(v, v.doc) for v in EXECUTOR_OPTIONS})
    return {SECTION: {"description": "podfleet: Airflow tasks as Kubernetes pods, launched by "
                                     "a dramatiq worker pool.\n", "options": options}}


def executor_option(variable: Variable, get: Callable[[str, str], str | None]) -> Any:
    """The parsed value of one of :data:`EXECUTOR_OPTIONS` (its default when unset)."""
    value = get(SECTION, variable.name)
    return variable.read({} if value is None else {variable.name: value})


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
