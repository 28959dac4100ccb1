"""The simulated cluster as one object: nodes, scheduler and kubelet wired to the store.

It listens to the store's events (ADDED, MODIFIED, DELETED for pods) and turns them into
scheduler and kubelet work; everything it does to pods goes back through the store, so every
client sees it as ordinary watch events.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from podfleet.simulator.cluster import status as statuses
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.cluster.disruption import (
    DELETION_BY_TAINT_MANAGER,
    PREEMPTION_BY_SCHEDULER,
    add_disruption_condition,
    delete_gracefully,
    disruption_condition,
)
from podfleet.simulator.cluster.events import EventRecorder
from podfleet.simulator.cluster.fate import LOG, fate_from_annotations
from podfleet.simulator.cluster.images import invalid_image_message
from podfleet.simulator.cluster.kubelet import Kubelet
from podfleet.simulator.cluster.local import container_command, container_env
from podfleet.simulator.cluster.placement import NO_EXECUTE, Placement, tolerates
from podfleet.simulator.cluster.podlog import ContainerLog
from podfleet.simulator.cluster.resources import pod_requests, qos_class
from podfleet.simulator.cluster.scheduler import Scheduler, SimNode
from podfleet.simulator.cluster.state import PodRecord, Stage
from podfleet.simulator.cluster.termination import FALLBACK_TO_LOGS, MAX_LOG_LINES
from podfleet.simulator.cluster.timeline import Timeline
from podfleet.simulator.store import now_rfc3339

if TYPE_CHECKING:
    from podfleet.simulator.runtime import SimulatorRuntime
    from podfleet.simulator.store import ObjectStore, Record, StoreEvent

log = logging.getLogger(__name__)

Json = dict[str, Any]

SCHEDULER_NAME = "default-scheduler"

#: How a failing node ends its pods (``POST /_sim/nodes/{name}/fail``, ``mode``).
NODE_FAIL_MODES = ("fail", "evict", "vanish")
#: Taints the simulator itself puts on nodes (readiness, cordon), not the user's.
_SYSTEM_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready",
                  "node.kubernetes.io/unschedulable")


class UnknownNodeError(KeyError):
    """No node of that name."""


class SimulatedCluster:
    """Nodes, scheduler and kubelet of one simulator, driven by the store's events."""

    def __init__(self, config: ClusterConfig, store: ObjectStore, timeline: Timeline,
                 events: EventRecorder | None = None) -> None:
        self.config = config
        self.events = events or EventRecorder(None)
        self.store = store
        self.timeline = timeline
        timeline.on_error = lambda error: log.error("cluster step failed", exc_info=error)
        self.pods: dict[str, PodRecord] = {}  # uid → record
        self._by_key: dict[tuple[str, str], PodRecord] = {}  # (namespace, name) → record
        self.scheduler = Scheduler(config, timeline, self._bound, self._unschedulable,
                                   self._preempted)
        self.kubelet = Kubelet(config, timeline, store, self._terminal, self.events)
        self._remove_listener: Callable[[], None] | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Register the configured nodes and start following the store."""
        for node in self.scheduler.add_default_nodes():
            self._publish_node(node)
        self._remove_listener = self.store.add_listener(self._on_event)
        for record in self.store.list("pods"):
            self._added(record)

    async def stop(self) -> None:
        """Stop following the store, drop timers, kill local processes."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        self.timeline.close()
        await self.kubelet.stop()

    # -- nodes ---------------------------------------------------------------------------
    def _publish_node(self, node: SimNode) -> None:
        self.store.put_node(statuses.node_object(
            node.name, node.index, node.cpu_text, node.memory_text, node.max_pods,
            dict(node.labels), node.host_ip, ready=node.ready, unschedulable=not node.schedulable,
            taints=node.taints,
        ))

    def add_node(self, name: str, cpu: str | None = None, memory: str | None = None,
                 pods: int | None = None, labels: dict[str, str] | None = None,
                 taints: list[dict[str, str]] | None = None) -> SimNode:
        """Add a node at run time; waiting pods that now fit get bound."""
        node = self.scheduler.add_node(name, cpu, memory, pods, labels, taints)
        self._publish_node(node)
        return node

    def _node_changed(self, record: Record) -> None:
        """A Node object was written (``kubectl cordon``, ``kubectl taint``, a label): the
        scheduler follows its spec.unschedulable, taints and labels."""
        node = self.scheduler.nodes.get(record.name)
        if node is None:
            return
        obj = record.object()
        spec = obj.get("spec") or {}
        schedulable = not spec.get("unschedulable")
        taints = [t for t in spec.get("taints") or () if isinstance(t, dict)
                  and t.get("key") not in _SYSTEM_TAINTS]
        labels = (obj.get("metadata") or {}).get("labels") or {}
        if node.schedulable != schedulable:
            self.scheduler.set_node_schedulable(node.name, schedulable)
        if self.scheduler.set_node_spec(node.name, dict(labels), taints):
            self._enforce_no_execute(node)

    # -- NoExecute taints (the taint-eviction controller) -------------------------------------
    def _enforce_no_execute(self, node: SimNode) -> None:
        """Evict the node's pods that do not tolerate one of its NoExecute taints: at once, or
        after the shortest tolerationSeconds of the tolerations that match."""
        if not any(t.get("effect") == NO_EXECUTE for t in node.taints):
            return
        for pod in list(node.pods.values()):
            self._check_no_execute(pod, node)

    def _check_no_execute(self, pod: PodRecord, node: SimNode) -> None:
        if pod.deleting or pod.stage in (Stage.TERMINATED, Stage.GONE) or pod.node != node.name:
            return
        rules = Placement.of_spec({"tolerations": pod.tolerations})
        taints = [t for t in node.taints if t.get("effect") == NO_EXECUTE]
        if not taints:
            return
        if rules.untolerated(taints, (NO_EXECUTE,)) is not None:
            self._evict_for_taint(pod)
            return
        limits = [float(t["tolerationSeconds"]) for t in pod.tolerations
                  if t.get("tolerationSeconds") is not None and any(
                      tolerates(t, taint) for taint in taints)]
        if limits:
            self.timeline.call_later(max(0.0, min(limits)), self._check_no_execute_later,
                                     pod, node.name)

    def _check_no_execute_later(self, pod: PodRecord, node_name: str) -> None:
        node = self.scheduler.nodes.get(node_name)
        if node is None or pod.deleting or pod.stage in (Stage.TERMINATED, Stage.GONE):
            return
        taints = [t for t in node.taints if t.get("effect") == NO_EXECUTE]
        if any(any(tolerates(t, taint) for t in pod.tolerations) for taint in taints):
            self._evict_for_taint(pod)  # tolerated for a while only, and the while is over

    def _evict_for_taint(self, pod: PodRecord) -> None:
        self.events.taint_eviction(pod)
        self._disrupt(pod, disruption_condition(
            DELETION_BY_TAINT_MANAGER, "Taint manager: deleting due to NoExecute taint"))

    def _disrupt(self, pod: PodRecord, condition: Json) -> None:
        """DisruptionTarget, then a graceful delete with the pod's own grace period."""
        pod.disruption = condition
        if add_disruption_condition(self.store, pod.namespace, pod.name, condition):
            delete_gracefully(self.store, pod.namespace, pod.name, int(pod.grace_s))

    def _node(self, name: str) -> SimNode:
        node = self.scheduler.nodes.get(name)
        if node is None:
            raise UnknownNodeError(name)
        return node

    def fail_node(self, name: str, mode: str = "fail") -> int:
        """Take a node down: NotReady, and its pods Failed (NodeLost/Evicted) or removed.

        Returns how many pods it ended.
        """
        if mode not in NODE_FAIL_MODES:
            raise ValueError(f"mode must be one of {', '.join(NODE_FAIL_MODES)}")
        node = self._node(name)
        self.scheduler.set_node_ready(name, False)
        self._publish_node(node)
        victims = [p for p in self.pods.values()
                   if p.node == name and p.stage not in (Stage.TERMINATED, Stage.GONE)]
        for pod in victims:
            if mode == "vanish":
                self.store.delete_pod(pod.namespace, pod.name)
            elif mode == "evict":
                self.events.evicted(pod, "The node was low on resource: memory. ")
                self.kubelet.fail(pod, "Evicted", "The node was low on resource: memory. ",
                                  evicted=True)
            else:
                self.events.node_not_ready(pod)
                self.kubelet.fail(pod, "NodeLost",
                                  f"Node {name} which was running pod {pod.name} is unresponsive",
                                  evicted=False)
        return len(victims)

    def recover_node(self, name: str) -> None:
        """Bring a failed node back to Ready; waiting pods may be bound to it."""
        node = self._node(name)
        self.scheduler.set_node_ready(name, True)
        self._publish_node(node)

    def logs(self, namespace: str, name: str) -> bytes | None:
        """Output of a local-mode pod's process, if it ran one."""
        pod = self._by_key.get((namespace, name))
        return self.kubelet.logs(pod) if pod is not None else None

    def container_log(self, namespace: str, name: str, uid: str,
                      previous: bool = False) -> ContainerLog | None:
        """A local-mode pod's first container output (this run or the one before), if any."""
        pod = self._by_key.get((namespace, name))
        if pod is None or pod.uid != uid:
            return None
        return self.kubelet.container_log(pod, previous)

    def stats(self) -> Json:
        """Nodes' usage and the cluster's queues, for ``GET /_sim/stats``."""
        return {
            "nodes": {
                node.name: {
                    "ready": node.ready,
                    "pods": node.used_pods,
                    "max_pods": node.max_pods,
                    "cpu_used_m": node.used_cpu_m,
                    "cpu_m": node.cpu_m,
                    "memory_used": node.used_memory,
                    "memory": node.memory,
                }
                for node in self.scheduler.nodes.values()
            },
            "unschedulable_pods": self.scheduler.unschedulable_count,
            "tracked_pods": len(self.pods),
            "pending_timers": len(self.timeline),
            "timer_lateness_max_ms": round(self.timeline.max_lateness_s * 1000, 3),
            "timer_late_wakeups": self.timeline.late_wakeups,
        }

    # -- store events --------------------------------------------------------------------
    def _on_event(self, event: StoreEvent) -> None:
        record = event.record
        if record.resource == "nodes":
            if event.type == "MODIFIED":
                self._node_changed(record)
            return
        if record.resource != "pods":
            return
        if event.type == "ADDED":
            self._added(record)
        elif event.type == "MODIFIED":
            pod = self.pods.get(record.uid)
            if pod is None:
                return
            prev = event.prev
            if record.deleting and not (prev is not None and prev.deleting):
                if pod.disruption is None:
                    pod.disruption = _disruption_of(record)
                self.kubelet.delete_requested(pod)
            elif record.node_name and pod.stage < Stage.BOUND:
                # Bound by someone else (the binding subresource, a patch of spec.nodeName).
                self.scheduler.release(pod)
                self.kubelet.accept(pod, self.scheduler.adopt(pod, record.node_name))
        elif event.type == "DELETED":
            pod = self.pods.pop(record.uid, None)
            if pod is not None:
                if self._by_key.get(pod.key) is pod:
                    del self._by_key[pod.key]
                self.kubelet.removed(pod)
                self.scheduler.release(pod)

    def _added(self, record: Record) -> None:
        obj = record.object()
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        pod = PodRecord(record.uid, record.namespace, record.name)
        pod.requests = pod_requests(spec)
        pod.fate = fate_from_annotations(meta.get("annotations"))
        containers = spec.get("containers") or []
        pod.containers = tuple((str(c.get("name", "")), str(c.get("image", "")))
                               for c in containers)
        pod.pull_always = tuple(c.get("imagePullPolicy") == "Always" for c in containers)
        for name, image in pod.containers:
            refused = invalid_image_message(image)
            if refused is not None:
                pod.image_error = (name, refused)
                pod.fate = dataclasses.replace(pod.fate, pending_reason="InvalidImageName")
                break
        if containers:
            first = containers[0]
            pod.message_source = (str(first.get("terminationMessagePath") or ""),
                                  str(first.get("terminationMessagePolicy") or "File"))
            if pod.message_source[1] == FALLBACK_TO_LOGS:
                text = (meta.get("annotations") or {}).get(LOG)
                if isinstance(text, str):
                    pod.log_lines = tuple(text.splitlines()[-MAX_LOG_LINES:])
        pod.restart_policy = spec.get("restartPolicy") or "Always"
        grace = spec.get("terminationGracePeriodSeconds")
        pod.grace_s = float(grace) if isinstance(grace, int | float) else 30.0
        pod.qos = (obj.get("status") or {}).get("qosClass") or qos_class(spec)
        pod.priority = int(spec.get("priority") or 0)
        pod.may_preempt = spec.get("preemptionPolicy") != "Never"
        pod.tolerations = tuple(spec.get("tolerations") or ())
        deadline = spec.get("activeDeadlineSeconds")
        if isinstance(deadline, int | float) and not isinstance(deadline, bool):
            pod.active_deadline_s = float(deadline)
        if self.config.local_mode and containers:
            pod.command = (container_command(containers[0]), container_env(containers[0]))
        self.pods[pod.uid] = pod
        self._by_key[pod.key] = pod
        if record.phase in ("Succeeded", "Failed"):
            pod.stage = Stage.TERMINATED
            return
        if record.node_name:
            self.kubelet.accept(pod, self.scheduler.adopt(pod, record.node_name))
        else:
            self.scheduler.submit(pod, Placement.of_spec(spec))

    # -- scheduler and kubelet callbacks -------------------------------------------------
    def _bound(self, pod: PodRecord, node: SimNode) -> None:
        if any(t.get("effect") == NO_EXECUTE for t in node.taints):
            # Tolerated for tolerationSeconds at most.
            self.timeline.call_later(0, self._check_no_execute, pod, node)
        pod.scheduled_at = now_rfc3339()
        self.events.scheduled(pod, node.name)
        combined = self.config.kubelet_ack_delay_s <= 0
        if combined:
            status = self.kubelet.accept_with_binding(pod, node)
        else:
            status = {"phase": "Pending", "qosClass": pod.qos,
                      "conditions": [statuses.scheduled_condition(pod.scheduled_at)]}
        if self.store.bind_pod_with_status(pod.namespace, pod.name, node.name, status) is None:
            return
        if combined:
            self.kubelet.acknowledged(pod)
        else:
            self.kubelet.accept(pod, node)

    def _unschedulable(self, pod: PodRecord, message: str) -> None:
        status = statuses.unschedulable_status(pod, message, pod.qos)
        if pod.nominated_node:
            status["nominatedNodeName"] = pod.nominated_node
        self.store.set_pod_status(pod.namespace, pod.name, status)
        self.events.failed_scheduling(pod, message)

    def _preempted(self, victims: list[PodRecord], preemptor: PodRecord, node: SimNode) -> None:
        """Preemption chose ``node`` for ``preemptor``: its victims go, gracefully."""
        for victim in victims:
            self.events.preempted(victim, preemptor, node.name)
            self._disrupt(victim, disruption_condition(
                PREEMPTION_BY_SCHEDULER,
                f"{SCHEDULER_NAME}: preempting to accommodate a higher priority pod"))

    def _terminal(self, pod: PodRecord) -> None:
        self.scheduler.release(pod)


def _disruption_of(record: Record) -> Json | None:
    """The pod's DisruptionTarget condition, if an eviction or preemption set one."""
    for condition in (record.object().get("status") or {}).get("conditions") or ():
        if condition.get("type") == "DisruptionTarget":
            return dict(condition)
    return None


async def install_cluster(runtime: SimulatorRuntime) -> SimulatedCluster:
    """Create the simulated cluster for a running simulator (called on app startup)."""
    timeline = Timeline(runtime.loop, runtime.config.cluster.timer_batch)
    events = EventRecorder(runtime.events if runtime.config.record_events else None)
    cluster = SimulatedCluster(runtime.config.cluster, runtime.store, timeline, events)
    cluster.start()
    return cluster
