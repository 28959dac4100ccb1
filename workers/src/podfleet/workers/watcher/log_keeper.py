"""Keeping a finished pod's log: copied to the log archive just before the pod is deleted.

A pod's log lives on its node and goes with the pod, so with the default delete policy
(``always``) a finished task's output would be gone seconds after it ended. The deleter
calls :meth:`PodLogKeeper.keep` before each delete; the archive is written to a temporary
name and published whole, so ``podfleet logs`` finds either the pod or the complete log.
Archiving is best effort with a bound: a failing archive is retried a few times and then
the pod is deleted anyway (counted as ``failed``; each failed attempt is recorded in
:class:`~podfleet.logs.failures.ArchiveFailures`, so ``podfleet logs`` says the archive write
failed, when and why, instead of "no log"), because a stuck archive must not keep
finished pods - and their node resources - forever. The task's event was published before
the pod was handed to the deleter, so the task's outcome never depends on its log.

The archive also prunes itself: :class:`ArchivePruner` runs in the watcher (one per fleet,
under the lease) at start and then hourly.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Protocol

from podfleet.contracts.keys import TaskKey
from podfleet.kube.client import container_not_started
from podfleet.kube.errors import KubeError, NotFound, Unreachable
from podfleet.logs.archive import LogArchive
from podfleet.logs.failures import ArchiveFailures
from podfleet.monitoring.metrics import POD_LOGS_ARCHIVED, LogArchiveResult

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0


class PodLogSource(Protocol):
    def stream_pod_log(self, namespace: str, name: str, *, container: str | None = None,
                       follow: bool = False, tail_lines: int | None = None,
                       timestamps: bool = False, previous: bool = False,
                       read_timeout: float | None = None) -> Iterator[bytes]: ...


class Kept(enum.Enum):
    """What :meth:`PodLogKeeper.keep` did; ``FAILED`` means "may try again"."""

    ARCHIVED = "archived"
    NO_LOG = "no_log"
    POD_GONE = "pod_gone"
    FAILED = "failed"


class PodLogKeeper:
    """Copies one pod's log into the archive (opened on first use, so that an archive that
    cannot be opened is an archive failure like any other, not a watcher that cannot start)."""

    def __init__(self, kube: PodLogSource, archive: Callable[[], LogArchive],
                 failures: ArchiveFailures | None = None) -> None:
        self.kube = kube
        self.failures = failures
        self._open_archive = archive
        self._archive: LogArchive | None = None
        self._lock = threading.Lock()

    def archive(self) -> LogArchive:
        with self._lock:
            if self._archive is None:
                self._archive = self._open_archive()
            return self._archive

    def keep(self, namespace: str, name: str, key: TaskKey, launch_id: str,
             container: str | None) -> Kept:
        try:
            chunks = self.kube.stream_pod_log(namespace, name, container=container)
            first = next(chunks, b"")  # errors of the request itself surface here

            def everything() -> Iterator[bytes]:
                yield first
                yield from chunks

            self.archive().write(key, launch_id, everything())
        except NotFound:
            return Kept.POD_GONE
        except (KubeError, Unreachable) as exc:
            if container_not_started(exc):
                return Kept.NO_LOG
            log.warning("cannot read the log of pod %s/%s: %s", namespace, name, exc)
            self._record_failure(launch_id, f"cannot read the pod's log: {exc}")
            return Kept.FAILED
        except Exception as exc:
            log.warning("cannot archive the log of pod %s/%s: %s", namespace, name, exc)
            self._record_failure(launch_id, f"{type(exc).__name__}: {exc}")
            return Kept.FAILED
        return Kept.ARCHIVED

    def _record_failure(self, launch_id: str, error: str) -> None:
        if self.failures is None:
            return
        try:
            self.failures.record(launch_id, error)
        except Exception as exc:  # Redis gone too: the log line above is all there is
            log.warning("cannot record the failed archive write of launch %s: %s",
                        launch_id, exc)


def count(result: Kept, *, final: bool) -> None:
    """Count one attempt; a failure that will be retried counts as ``retried``."""
    label = (LogArchiveResult(result.value) if result is not Kept.FAILED or final
             else LogArchiveResult.RETRIED)
    POD_LOGS_ARCHIVED.labels(result=label).inc()


class ArchivePruner:
    """A thread that deletes archived logs older than the retention, now and every hour."""

    def __init__(self, keeper: PodLogKeeper, retention_days: float,
                 interval_seconds: float = PRUNE_INTERVAL_SECONDS) -> None:
        self.keeper = keeper
        self.retention_days = retention_days
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ArchivePruner:
        if self.retention_days > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="podfleet-log-pruner")
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                removed = self.keeper.archive().prune(self.retention_days)
                if removed:
                    log.info("pruned %d archived logs older than %g days", removed,
                             self.retention_days)
            except Exception as exc:
                log.warning("cannot prune the log archive: %s", exc)
            self._stop.wait(self.interval_seconds)
