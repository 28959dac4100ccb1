"""The ``[podfleet]`` Airflow config section, and podfleet's settings read from it.

Every ``PODFLEET_*`` variable has an option of the same name in lower case without the
prefix (``PODFLEET_REDIS_URL`` → ``[podfleet] redis_url``, or ``AIRFLOW__PODFLEET__REDIS_URL``).
Which value wins is :mod:`podfleet.settings.airflow_config`'s precedence: ``[podfleet]``, then
the ``PODFLEET_*`` variable, then ``[kubernetes_executor]``, then podfleet's default. The
options' defaults are computed from the last three when the provider is loaded, so
``airflow config get-value podfleet X`` prints the value the executor uses.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from podfleet.settings import VARIABLES, Settings, SettingsError
from podfleet.settings.airflow_config import (
    SAME_NAME_OPTIONS,
    AirflowConfigFile,
    airflow_cfg_path,
    fallback_environ,
    ignored_options,
    ignored_options_warning,
    kubernetes_executor_value,
    option_name,
)
from podfleet.settings.airflow_config import podfleet_environ as _podfleet_environ
from podfleet.settings.declaration import Variable
from podfleet.settings.parsers import integer, text

log = logging.getLogger("podfleet.airflow")

SECTION = "podfleet"

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


def _option(variable: Variable, description: str, default: str) -> dict[str, Any]:
    return {
        "description": description + "\n",
        "version_added": "0.1.0",
        "type": variable.parser.kind,
        "example": None,
        "default": default,
        # Shown as *** by `airflow config list` and the UI.
        "sensitive": variable.secret,
    }


def _loaded_airflow_config() -> Callable[[str, str], str | None]:
    """Airflow's config as far as it can be read while Airflow loads the provider's metadata.

    Airflow reads it while its own config module is still being imported, so its ``conf``
    object is usually not there yet: then the airflow.cfg Airflow reads and the
    ``AIRFLOW__*`` variables are read directly (:class:`AirflowConfigFile`); with neither,
    nothing is set. Reading it must not import Airflow.
    """
    conf = getattr(sys.modules.get("airflow.configuration"), "conf", None)
    if conf is not None:
        def get(section: str, option: str) -> str | None:
            value = conf.get(section, option, fallback=None)
            return None if value is None else str(value)
        return get
    try:
        return AirflowConfigFile(airflow_cfg_path()).get
    except SettingsError:   # no airflow.cfg (yet), or one Airflow will complain about
        return AirflowConfigFile(None).get


def config_section(get: Callable[[str, str], str | None] | None = None,
                   environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The provider's ``config`` entry for ``[podfleet]``, generated from podfleet's variables
    and the executor's own options.

    Each option's default is the value the executor uses when the option is not set: the
    ``PODFLEET_*`` variable, else what ``[kubernetes_executor]`` implies (read through ``get``,
    default: Airflow's loaded config), else podfleet's default. A secret's (the Redis and
    database URLs, the signing key) is always podfleet's default, never the variable's value.
    A ``[kubernetes_executor]`` value podfleet cannot use leaves the defaults alone here; the
    executor's start names it.
    """
    get = _loaded_airflow_config() if get is None else get
    try:
        effective = fallback_environ(get, environ)
    except SettingsError:
        effective = fallback_environ(lambda section, option: None, environ)
    # A secret's default stays podfleet's own: Airflow writes the defaults into the airflow.cfg
    # it creates on first start, and a password or signing key must not land there in clear.
    options = {option_name(v.name): _option(v, f"{v.doc} (Same as the {v.name} variable.)",
                                            v.default if v.secret
                                            else effective.get(v.name, v.default))
               for v in VARIABLES}
    options.update({v.name: _option(v, v.doc, kubernetes_executor_value(get, v.name)
                                    or v.default) for v in EXECUTOR_OPTIONS})
    return {SECTION: {"description": "podfleet: Airflow tasks as Kubernetes pods, launched by "
                                     "a dramatiq worker pool.\n", "options": options}}


def executor_option(variable: Variable, get: Callable[[str, str], str | None]) -> Any:
    """The parsed value of one of :data:`EXECUTOR_OPTIONS`: ``[podfleet]``, else the
    ``[kubernetes_executor]`` option of the same name, else its default."""
    assert variable.name in SAME_NAME_OPTIONS
    value = get(SECTION, variable.name)
    if value is None or value == variable.default:
        value = kubernetes_executor_value(get, variable.name) or value
    return variable.read({} if value is None else {variable.name: value})


#: The sets of ignored ``[kubernetes_executor]`` options this process has warned about.
_warned: set[tuple[str, ...]] = set()


def warn_ignored_options(get: Callable[[str, str], str | None]) -> None:
    """Log one warning (once per process) naming the ``[kubernetes_executor]`` options set that
    podfleet has no use for."""
    ignored = tuple(ignored_options(get))
    if ignored and ignored not in _warned:
        _warned.add(ignored)
        log.warning("%s", ignored_options_warning(list(ignored)))


def podfleet_environ(get: Callable[[str, str], str | None],
                     environ: Mapping[str, str] | None = None,
                     *, executor_id: str | None = None) -> dict[str, str]:
    """The ``PODFLEET_*`` mapping podfleet's :class:`Settings` reads, for one executor.

    ``get(section, option)`` reads Airflow's config (per team when the executor has one).
    ``executor_id`` is used unless ``[podfleet] executor_id`` or the variable is set.
    """
    env = _podfleet_environ(get, environ)
    if executor_id and not env.get("PODFLEET_EXECUTOR_ID"):
        env["PODFLEET_EXECUTOR_ID"] = executor_id
    return env


def settings_from_airflow(get: Callable[[str, str], str | None],
                          *, executor_id: str | None = None) -> Settings:
    """podfleet's settings from ``[podfleet]``, the ``PODFLEET_*`` variables and
    ``[kubernetes_executor]``; warns once about the latter's options podfleet ignores."""
    warn_ignored_options(get)
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
