"""The log archive: one file per pod, at a path that names the task try and its launch.

Layout, relative to the archive's root (``PODFLEET_LOG_ARCHIVE``)::

    dag_id=<dag_id>/run_id=<run_id>/task_id=<task_id>/map_index=<n>/try=<n>/<launch_id>.log

Every part of the task key is a folder, so a try's logs are found by listing one folder and
a whole run's by listing a prefix (an S3 prefix, a bucket lifecycle rule's filter). The run
id is percent-encoded (``:`` stays, ``/`` and ``+`` do not), dag and task ids are used as they
are (Airflow's rule allows only letters, digits, ``_``, ``-`` and ``.``). A try relaunched
under a new launch id (its first pod was lost before it ran) keeps one file per launch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from podfleet.contracts.keys import TaskKey
from podfleet.logs.storage import LogStorage, open_storage

LOG_SUFFIX = ".log"
DAY_SECONDS = 86_400.0


def try_folder(key: TaskKey) -> str:
    """The folder of one task try's logs, relative to the archive root."""
    return (f"dag_id={key.dag_id}/run_id={quote(key.run_id, safe='-_.~:')}/"
            f"task_id={key.task_id}/map_index={key.map_index}/try={key.try_number}")


def log_path(key: TaskKey, launch_id: str) -> str:
    """Where the log of launch ``launch_id`` of try ``key`` is archived."""
    return f"{try_folder(key)}/{quote(launch_id, safe='-_')}{LOG_SUFFIX}"


@dataclass(frozen=True, slots=True)
class ArchivedLog:
    path: str
    data: bytes


class LogArchive:
    """Writes, finds and prunes archived pod logs in one :class:`LogStorage`."""

    def __init__(self, storage: LogStorage) -> None:
        self.storage = storage

    @classmethod
    def open(cls, location: str) -> LogArchive:
        """The archive at a directory path or fsspec URL (raises ArchiveUnavailable)."""
        return cls(open_storage(location))

    def write(self, key: TaskKey, launch_id: str, chunks: Iterable[bytes]) -> int:
        """Store one pod's log (streamed, never held whole in memory); returns its size."""
        return self.storage.write(log_path(key, launch_id), chunks)

    def read(self, key: TaskKey, launch_id: str | None = None) -> ArchivedLog | None:
        """The log of that launch of try ``key``; without a launch id, the try's newest."""
        if launch_id is not None:
            path = log_path(key, launch_id)
            data = self.storage.read(path)
            return None if data is None else ArchivedLog(path, data)
        folder = try_folder(key)
        logs = [(mtime, name) for name, mtime in self.storage.listdir(folder)
                if name.endswith(LOG_SUFFIX)]
        for _mtime, name in sorted(logs, reverse=True):
            data = self.storage.read(f"{folder}/{name}")
            if data is not None:
                return ArchivedLog(f"{folder}/{name}", data)
        return None

    def prune(self, retention_days: float, now: float | None = None) -> int:
        """Delete logs archived more than ``retention_days`` ago; returns how many."""
        if retention_days <= 0:
            return 0
        cutoff = (time.time() if now is None else now) - retention_days * DAY_SECONDS
        removed = 0
        for path, mtime in list(self.storage.walk()):
            if path.endswith(LOG_SUFFIX) and 0 < mtime < cutoff:
                self.storage.remove(path)
                removed += 1
        return removed


def tail_lines(data: bytes, lines: int | None) -> bytes:
    """The last ``lines`` lines of ``data`` (all of it for None), as ``kubectl logs --tail``."""
    if lines is None or lines < 0:
        return data
    if lines == 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])
