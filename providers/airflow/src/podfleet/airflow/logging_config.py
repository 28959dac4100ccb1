"""Airflow's default logging config, plus podfleet's archive as the remote log reader.

``[logging] logging_config_class = podfleet.airflow.logging_config.LOGGING_CONFIG`` makes
finished tasks' logs readable in Airflow's UI and REST API after their pods are deleted (see
:mod:`podfleet.airflow.logs`), and its task handler (:class:`PodTaskHandler`) never asks a
worker's log server, which pods do not run.
"""

from __future__ import annotations

import copy
from typing import Any

from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG
from podfleet.airflow.logs import ArchivedPodLogs

LOGGING_CONFIG: dict[str, Any] = copy.deepcopy(DEFAULT_LOGGING_CONFIG)
LOGGING_CONFIG["handlers"]["task"]["class"] = "podfleet.airflow.logs.PodTaskHandler"
REMOTE_TASK_LOG = ArchivedPodLogs()
