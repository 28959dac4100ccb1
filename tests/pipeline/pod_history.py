"""Every change of one namespace's podfleet pods, in the API server's order, read from a watch
opened before the test acts: the evidence that no try ever had two live pods at once.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from kubernetes import client, watch

from podfleet.contracts.naming import (
    DAG_ID_LABEL,
    LAUNCH_ID_LABEL,
    MANAGED_SELECTOR,
    MAP_INDEX_LABEL,
    RUN_ID_LABEL,
    TASK_ID_LABEL,
    TRY_NUMBER_LABEL,
)
from podfleet.simulator.server import RunningSimulator

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})
_TRY_LABELS = (DAG_ID_LABEL, TASK_ID_LABEL, RUN_ID_LABEL, MAP_INDEX_LABEL, TRY_NUMBER_LABEL)


@dataclass(frozen=True, slots=True)
class PodChange:
    """One watch event of one pod: what it says about the pod's life."""

    kind: str  # ADDED, MODIFIED, DELETED
    name: str
    launch_id: str
    try_labels: tuple[str, ...]
    node: str | None
    phase: str | None

    @property
    def live(self) -> bool:
        """The pod exists and has not finished: its container may be running."""
        return self.kind != "DELETED" and self.phase not in FINISHED_PHASES


class PodHistory:
    """Records the namespace's podfleet pods from :meth:`start` to :meth:`stop`."""

    def __init__(self, sim: RunningSimulator, namespace: str) -> None:
        self._namespace = namespace
        self._api_client = sim.api_client()
        self._api = client.CoreV1Api(self._api_client)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._changes: list[PodChange] = []
        self._thread = threading.Thread(target=self._run, name="pod-history", daemon=True)
        self._resource_version = ""
        self.error: BaseException | None = None

    def start(self) -> PodHistory:
        listing = self._api.list_namespaced_pod(self._namespace,
                                                label_selector=MANAGED_SELECTOR)
        self._resource_version = listing.metadata.resource_version
        for pod in listing.items:
            self._record("ADDED", self._api_client.sanitize_for_serialization(pod))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        self._api_client.close()

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                stream = watch.Watch().stream(
                    self._api.list_namespaced_pod, self._namespace,
                    label_selector=MANAGED_SELECTOR, resource_version=self._resource_version,
                    timeout_seconds=1, allow_watch_bookmarks=False)
                for event in stream:
                    pod = event["raw_object"]
                    self._resource_version = pod["metadata"]["resourceVersion"]
                    self._record(event["type"], pod)
        except BaseException as error:  # kept for the test, which asserts there was none
            self.error = error

    def _record(self, kind: str, pod: dict[str, Any]) -> None:
        labels = pod["metadata"].get("labels") or {}
        change = PodChange(
            kind=kind, name=pod["metadata"]["name"], launch_id=labels.get(LAUNCH_ID_LABEL, ""),
            try_labels=tuple(labels.get(label, "") for label in _TRY_LABELS),
            node=(pod.get("spec") or {}).get("nodeName"),
            phase=(pod.get("status") or {}).get("phase"))
        with self._lock:
            self._changes.append(change)

    @property
    def changes(self) -> list[PodChange]:
        with self._lock:
            return list(self._changes)

    def most_live_pods_of_one_try(self) -> int:
        """The most pods any one try had live at the same moment (1: never two at once)."""
        live: dict[tuple[str, ...], set[str]] = defaultdict(set)
        most = 0
        for change in self.changes:
            pods = live[change.try_labels]
            if change.live:
                pods.add(change.name)
            else:
                pods.discard(change.name)
            most = max(most, len(pods))
        return most

    def nodes_of_launch(self, launch_id: str) -> set[str]:
        """Every node a launch's pod was seen bound to."""
        return {c.node for c in self.changes if c.launch_id == launch_id and c.node}
