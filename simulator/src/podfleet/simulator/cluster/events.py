"""The events the simulated scheduler and kubelet record, worded as the real ones word them.

What a real cluster shows in ``kubectl describe pod``::

    Normal   Scheduled  default-scheduler  Successfully assigned default/p to node-1
    Normal   Pulling    kubelet            Pulling image "busybox"
    Normal   Pulled     kubelet            Successfully pulled image "busybox" in 512ms ...
    Normal   Created    kubelet            Created container: main
    Normal   Started    kubelet            Started container main

Kubelet events are core/v1 Events (``source``, ``firstTimestamp``, ``lastTimestamp``,
``count``); the scheduler's come from the events.k8s.io recorder, so they carry ``eventTime``,
``reportingComponent`` and ``action`` and no first/last timestamps, as on a real server.

A repeat of an event (same object, sub-object, type, reason, message and source) is not a new
object: like client-go's event correlator, the recorder remembers the last 4,096 distinct
events it wrote and bumps the repeat's ``count`` and ``lastTimestamp`` instead
(``kubectl describe`` then shows ``10s (x3 over 2m)``).

With event recording off (``SimulatorConfig.record_events``), ``EventRecorder(None)`` records
nothing and costs each call site one attribute test.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from podfleet.simulator.store import now_rfc3339

if TYPE_CHECKING:
    from podfleet.simulator.cluster.state import PodRecord
    from podfleet.simulator.eventstore import EventStore

Json = dict[str, Any]

NORMAL = "Normal"
WARNING = "Warning"
KUBELET = "kubelet"
SCHEDULER = "default-scheduler"
TAINT_EVICTION = "taint-eviction-controller"
#: client-go's event cache (``maxLruCacheEntries``).
_CORRELATION_ENTRIES = 4096


def _micro_time() -> str:
    """Now as a MicroTime (``2024-05-01T10:00:00.123456Z``)."""
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def go_duration(seconds: float) -> str:
    """A duration as Go prints one: ``512.3ms``, ``1.25s``."""
    if seconds < 1:
        text = f"{seconds * 1000:.6f}".rstrip("0").rstrip(".")
        return f"{text}ms"
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def image_size(image: str) -> int:
    """A plausible, stable size in bytes for an image (2–400 MB)."""
    digest = hashlib.blake2b(image.encode(), digest_size=4).digest()
    return 2_000_000 + int.from_bytes(digest, "big") % 400_000_000


def _pod_ref(pod: PodRecord) -> Json:
    return {"kind": "Pod", "namespace": pod.namespace, "name": pod.name, "uid": pod.uid,
            "apiVersion": "v1"}


def _fields(event: Json, involved: Json, reporting: str, source: str) -> tuple[str, ...]:
    """The event's field-selector values in ``store.EVENT_FIELDS`` order, from what the
    recorder has at hand (the strings are shared with the pod's record, not copied)."""
    meta = event["metadata"]
    return (meta["name"], meta["namespace"], event["reason"], reporting, source, event["type"],
            involved["kind"], involved.get("namespace", ""), involved["name"], involved["uid"],
            involved.get("apiVersion", ""), "", involved.get("fieldPath", ""))


class EventRecorder:
    """Writes the cluster's events into the event store, aggregating repeats."""

    def __init__(self, store: EventStore | None) -> None:
        self._store = store
        self.enabled = store is not None
        self._last_suffix = 0
        # (component, host, uid, fieldPath, type, reason, message) → (namespace, event name)
        self._recent: OrderedDict[tuple[str, ...], tuple[str, str]] = OrderedDict()

    # -- the scheduler ---------------------------------------------------------------------
    def scheduled(self, pod: PodRecord, node: str) -> None:
        if self.enabled:
            self._scheduler_event(pod, NORMAL, "Scheduled", "Binding",
                                  f"Successfully assigned {pod.namespace}/{pod.name} to {node}")

    def failed_scheduling(self, pod: PodRecord, message: str) -> None:
        if self.enabled:
            self._scheduler_event(pod, WARNING, "FailedScheduling", "Scheduling", message)

    def preempted(self, victim: PodRecord, preemptor: PodRecord, node: str) -> None:
        """The scheduler evicts ``victim`` to make room for ``preemptor``."""
        if self.enabled:
            self._scheduler_event(victim, NORMAL, "Preempted", "Preempting",
                                  f"Preempted by pod {preemptor.uid} on node {node}")

    def taint_eviction(self, pod: PodRecord) -> None:
        """The taint-eviction controller deletes a pod that does not tolerate a NoExecute taint."""
        if self.enabled:
            self._scheduler_event(pod, NORMAL, "TaintManagerEviction", "",
                                  f"Marking for deletion Pod {pod.namespace}/{pod.name}",
                                  component=TAINT_EVICTION)

    # -- the kubelet -----------------------------------------------------------------------
    def deadline_exceeded(self, pod: PodRecord) -> None:
        if self.enabled:
            self._record(pod.namespace, pod.name, _pod_ref(pod), NORMAL, "DeadlineExceeded",
                         "Pod was active on the node longer than the specified deadline",
                         KUBELET, pod.node or "")

    def pulling(self, pod: PodRecord, container: str, image: str) -> None:
        if self.enabled:
            self._container_event(pod, container, NORMAL, "Pulling", f'Pulling image "{image}"')

    def pulled(self, pod: PodRecord, container: str, image: str, took_s: float | None) -> None:
        """``took_s`` None: the image was already on the node (``IfNotPresent``)."""
        if not self.enabled:
            return
        if took_s is None:
            message = f'Container image "{image}" already present on machine'
        else:
            took = go_duration(took_s)
            message = (f'Successfully pulled image "{image}" in {took} ({took} including '
                       f"waiting). Image size: {image_size(image)} bytes.")
        self._container_event(pod, container, NORMAL, "Pulled", message)

    def started(self, pod: PodRecord, container: str) -> None:
        """Created and Started: the runtime made the container and ran it."""
        if self.enabled:
            self._container_event(pod, container, NORMAL, "Created",
                                  f"Created container: {container}")
            self._container_event(pod, container, NORMAL, "Started",
                                  f"Started container {container}")

    def created_only(self, pod: PodRecord, container: str) -> None:
        if self.enabled:
            self._container_event(pod, container, NORMAL, "Created",
                                  f"Created container: {container}")

    def failed(self, pod: PodRecord, container: str, message: str,
               reason: str = "Failed") -> None:
        """A Warning about one container (``Failed``, ``InspectFailed``)."""
        if self.enabled:
            self._container_event(pod, container, WARNING, reason, message)

    def pull_backoff(self, pod: PodRecord, container: str, image: str) -> None:
        if self.enabled:
            self._container_event(pod, container, NORMAL, "BackOff",
                                  f'Back-off pulling image "{image}"')
            self._container_event(pod, container, WARNING, "Failed", "Error: ImagePullBackOff")

    def crash_backoff(self, pod: PodRecord, container: str) -> None:
        if self.enabled:
            self._container_event(
                pod, container, WARNING, "BackOff",
                f"Back-off restarting failed container {container} in pod "
                f"{pod.name}_{pod.namespace}({pod.uid})")

    def killing(self, pod: PodRecord, container: str) -> None:
        if self.enabled:
            self._container_event(pod, container, NORMAL, "Killing",
                                  f"Stopping container {container}")

    def evicted(self, pod: PodRecord, message: str) -> None:
        """The kubelet's eviction manager ends a pod (about the pod, no sub-object)."""
        if self.enabled:
            self._record(pod.namespace, pod.name, _pod_ref(pod), WARNING, "Evicted", message,
                         KUBELET, pod.node or "")

    def node_not_ready(self, pod: PodRecord) -> None:
        """The node controller marks the pods of a node that stopped reporting."""
        if self.enabled:
            self._record(pod.namespace, pod.name, _pod_ref(pod), WARNING, "NodeNotReady",
                         "Node is not ready", "node-controller", "")

    def system_oom(self, node: str, process: str, pid: int) -> None:
        """The kubelet's OOM watcher reports a kill on its Node (in namespace default)."""
        if self.enabled:
            involved = {"kind": "Node", "name": node, "uid": node}
            self._record("default", node, involved, WARNING, "SystemOOM",
                         f"System OOM encountered, victim process: {process}, pid: {pid}",
                         KUBELET, node)

    # -- writing ---------------------------------------------------------------------------
    def _container_event(self, pod: PodRecord, container: str, level: str, reason: str,
                         message: str) -> None:
        involved = {"kind": "Pod", "namespace": pod.namespace, "name": pod.name,
                    "uid": pod.uid, "apiVersion": "v1",
                    "fieldPath": f"spec.containers{{{container}}}"}
        self._record(pod.namespace, pod.name, involved, level, reason, message, KUBELET,
                     pod.node or "")

    def _scheduler_event(self, pod: PodRecord, level: str, reason: str, action: str,
                         message: str, component: str = SCHEDULER) -> None:
        """An events.k8s.io event (the scheduler's and the controllers' recorder)."""
        assert self._store is not None
        involved = _pod_ref(pod)
        event = self._event(pod.namespace, pod.name, involved, level, reason, message)
        event.update({"source": {}, "firstTimestamp": None, "lastTimestamp": None,
                      "eventTime": _micro_time(), "action": action,
                      "reportingComponent": component,
                      "reportingInstance": f"{component}-sim"})
        self._store.create(event, _fields(event, involved, component, ""))

    def _record(self, namespace: str, about: str, involved: Json, level: str, reason: str,
                message: str, component: str, host: str) -> None:
        store = self._store
        assert store is not None
        key = (component, host, involved["uid"], involved.get("fieldPath", ""), level, reason,
               message)
        recent = self._recent
        known = recent.get(key)
        if known is not None:
            recent.move_to_end(key)
            stamp = now_rfc3339()

            def repeat(event: Json) -> None:
                event["count"] = int(event.get("count") or 1) + 1
                event["lastTimestamp"] = stamp

            if store.update(known[0], known[1], repeat) is not None:
                return
        event = self._event(namespace, about, involved, level, reason, message)
        stamp = now_rfc3339()
        event.update({"source": {"component": component, "host": host} if host else
                      {"component": component},
                      "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
                      "eventTime": None, "reportingComponent": component,
                      "reportingInstance": host})
        store.create(event, _fields(event, involved, component, component))
        recent[key] = (namespace, event["metadata"]["name"])
        if len(recent) > _CORRELATION_ENTRIES:
            recent.popitem(last=False)

    def _event(self, namespace: str, about: str, involved: Json, level: str, reason: str,
               message: str) -> Json:
        # Named as client-go names them: the object's name and the time in hex nanoseconds.
        suffix = max(self._last_suffix + 1, time.time_ns())
        self._last_suffix = suffix
        return {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {"name": f"{about}.{suffix:x}", "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": level,
        }
