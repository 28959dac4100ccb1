"""Finished tasks' logs for Airflow's UI and REST API, from podfleet's log archive.

Airflow asks an executor for a task's log only while the task runs; once it finished, it reads
a remote log store, else local files, else the worker's log server. Pods leave no files and
run no log server, so without remote logging a finished task's log would be gone with its
pod. :class:`ArchivedPodLogs` is a remote log reader (Airflow's ``RemoteLogIO``) over the
archive podfleet's watcher writes before it deletes each pod. To use it::

    [logging]
    logging_config_class = podfleet.airflow.logging_config.LOGGING_CONFIG

It only reads; ``upload`` does nothing (the watcher archives).

Airflow's file task handler also falls back to the worker's log server (port 8793) for a
running task whose executor gave no log, or a finished one found nowhere else. A pod runs no
log server, so that only adds "Could not read served logs … Connection refused" to the
page: :class:`PodTaskHandler`, the task handler of podfleet's logging config, never asks it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from typing import Any

from airflow.utils.log.file_task_handler import FileTaskHandler
from podfleet.airflow.workloads import task_key
from podfleet.executor.db import make_engine, make_sessionmaker
from podfleet.executor.logs import TaskLogs, TaskLogUnavailable
from podfleet.kube.clusters import ClusterClients
from podfleet.settings import Settings

_ATTEMPT = re.compile(r"attempt=(\d+)")


def task_logs(settings: Settings) -> TaskLogs:
    """A reader of task logs (pod or archive) that needs neither Redis nor the signing key:
    the api-server reads logs, it never launches."""
    clusters = ClusterClients(settings.clusters.configured)
    return TaskLogs.for_settings(
        settings, make_sessionmaker(make_engine(settings.database.url)), clusters.client)


def try_log(logs: TaskLogs, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
    """Airflow's ``(messages, logs)`` for try ``try_number`` of task instance ``ti``: where
    the log was found and its text, or why there is none (never raises)."""
    key = dataclasses.replace(task_key(ti), try_number=int(try_number))
    try:
        log = logs.read_key(key)
    except TaskLogUnavailable as exc:
        return [f"podfleet: no log for this try: {exc}"], []
    except Exception as exc:
        return [f"podfleet: reading the log failed: {exc}"], []
    where = "the pod" if log.source == "pod" else "podfleet's log archive"
    return [f"Found logs in {where} (launch {log.launch_id})"], [log.text]


class ArchivedPodLogs:
    """Airflow's remote-log interface over podfleet's pod log archive (read-only)."""

    def __init__(self, settings: Callable[[], Settings] | None = None) -> None:
        self._settings = settings
        self._logs: TaskLogs | None = None

    @property
    def processors(self) -> tuple[Any, ...]:
        return ()

    def upload(self, path: os.PathLike[str] | str, ti: Any = None) -> None:
        """Nothing to do: podfleet's watcher archives each pod's log before deleting it."""

    def read(self, relative_path: str, ti: Any) -> tuple[list[str], list[str]]:
        """The try's log (its number is read from the log path's ``attempt=N``); when there
        is none, why, as the log's one line: an empty answer would send Airflow on to the
        worker's log server, which pods do not run."""
        found = _ATTEMPT.search(relative_path)
        messages, lines = try_log(self._reader(), ti,
                                  int(found.group(1)) if found else int(ti.try_number))
        return messages, lines or messages

    def _reader(self) -> TaskLogs:
        if self._logs is None:
            if self._settings is not None:
                settings = self._settings()
            else:
                from airflow.configuration import conf
                from podfleet.airflow.config import settings_from_airflow

                settings = settings_from_airflow(
                    lambda s, o: conf.get(s, o, fallback=None))
            self._logs = task_logs(settings)
        return self._logs


class PodTaskHandler(FileTaskHandler):
    """Airflow's file task handler without the worker log server fallback."""

    def _read_from_logs_server(self, ti: Any, worker_log_rel_path: str
                               ) -> tuple[list[str], list[Any]]:
        """No sources, no log: pods serve none (podfleet reads the pod or its archive)."""
        return [], []
