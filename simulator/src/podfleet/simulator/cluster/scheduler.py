"""A scheduler for the simulated cluster: binds Pending pods to nodes that have room.

Event-driven, never scanning all pods: a pod is tried once when it is created (after the
schedule delay); if nothing fits it joins an ordered queue with ``PodScheduled=False``,
``Unschedulable``, and the queue is retried only when capacity frees (a pod finishes or goes,
a node is added or recovers), in one coalesced pass that stops as soon as the cluster is full.
Placement spreads pods across nodes round-robin among those that fit, like the default
``LeastAllocated`` scoring does in effect for uniform pods.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.cluster.resources import Requests, byte_count, millicores
from podfleet.simulator.cluster.state import PodRecord, Stage
from podfleet.simulator.cluster.timeline import Timeline

#: Most pods one retry pass tries without binding any, before it waits for the next free-up.
RETRY_PASS_LIMIT = 2000

REASON_CPU = "Insufficient cpu"
REASON_MEMORY = "Insufficient memory"
REASON_PODS = "Too many pods"
REASON_NOT_READY = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
REASON_CORDONED = "node(s) were unschedulable"
REASON_SELECTOR = "node(s) didn't match Pod's node affinity/selector"


@dataclass(eq=False)
class SimNode:
    """One node: its allocatable capacity, what its pods use, and its pods."""

    name: str
    index: int
    cpu_m: int
    memory: int
    max_pods: int
    labels: dict[str, str] = field(default_factory=dict)
    used_cpu_m: int = 0
    used_memory: int = 0
    ready: bool = True
    schedulable: bool = True
    pods: dict[str, PodRecord] = field(default_factory=dict)  # uid → pod counted here
    _next_ip: int = 0
    address: str = ""
    #: Capacity as it was given (``"32"``, ``"128Gi"``), for the Node object.
    cpu_text: str = ""
    memory_text: str = ""

    def __post_init__(self) -> None:
        self.address = str(ipaddress.IPv4Address("172.18.0.2") + self.index)
        self.cpu_text = self.cpu_text or f"{self.cpu_m}m"
        self.memory_text = self.memory_text or str(self.memory)

    @property
    def used_pods(self) -> int:
        return len(self.pods)

    @property
    def host_ip(self) -> str:
        """The node's stable InternalIP (172.18.x.y)."""
        return self.address

    def allocate_pod_ip(self) -> str:
        """The next pod IP from the node's podCIDR 10.{index}.0.0/16 (wraps after 65,534)."""
        self._next_ip = self._next_ip % 65534 + 1
        return f"10.{self.index % 256}.{self._next_ip >> 8}.{self._next_ip & 255}"

    def misfit(self, requests: Requests, selector: dict[str, str] | None) -> Iterator[str]:
        """Why a pod with ``requests`` does not fit here (nothing → it fits)."""
        if not self.ready:
            yield REASON_NOT_READY
            return
        if not self.schedulable:
            yield REASON_CORDONED
            return
        if selector and any(self.labels.get(k) != v for k, v in selector.items()):
            yield REASON_SELECTOR
            return
        if len(self.pods) >= self.max_pods:
            yield REASON_PODS
        if requests.cpu_m and self.used_cpu_m + requests.cpu_m > self.cpu_m:
            yield REASON_CPU
        if requests.memory and self.used_memory + requests.memory > self.memory:
            yield REASON_MEMORY

    def fits(self, requests: Requests, selector: dict[str, str] | None) -> bool:
        return (
            self.ready
            and self.schedulable
            and len(self.pods) < self.max_pods
            and self.used_cpu_m + requests.cpu_m <= self.cpu_m
            and self.used_memory + requests.memory <= self.memory
            and (not selector or all(self.labels.get(k) == v for k, v in selector.items()))
        )

    def count(self, pod: PodRecord) -> None:
        if pod.counted:
            return
        pod.counted = True
        self.pods[pod.uid] = pod
        self.used_cpu_m += pod.requests.cpu_m
        self.used_memory += pod.requests.memory

    def uncount(self, pod: PodRecord) -> bool:
        if not pod.counted or self.pods.pop(pod.uid, None) is None:
            return False
        pod.counted = False
        self.used_cpu_m -= pod.requests.cpu_m
        self.used_memory -= pod.requests.memory
        return True


BindCallback = Callable[[PodRecord, SimNode], None]
UnschedulableCallback = Callable[[PodRecord, str], None]


class Scheduler:
    """Binds pods to nodes; owns the nodes' accounting and the unschedulable queue."""

    def __init__(
        self,
        config: ClusterConfig,
        timeline: Timeline,
        on_bind: BindCallback,
        on_unschedulable: UnschedulableCallback,
    ) -> None:
        self._config = config
        self._timeline = timeline
        self._on_bind = on_bind
        self._on_unschedulable = on_unschedulable
        self.nodes: dict[str, SimNode] = {}
        self._node_list: list[SimNode] = []
        self._cursor = 0
        self._selectors: dict[str, dict[str, str]] = {}  # uid → nodeSelector, when one is set
        self._queue: dict[str, PodRecord] = {}  # unschedulable pods, oldest first
        self._retry_armed = False

    # -- nodes -------------------------------------------------------------------------
    def add_node(
        self,
        name: str,
        cpu: str | int | None = None,
        memory: str | int | None = None,
        pods: int | None = None,
        labels: dict[str, str] | None = None,
    ) -> SimNode:
        """Add a node (or return the existing one) and retry waiting pods."""
        existing = self.nodes.get(name)
        if existing is not None:
            return existing
        cpu = cpu if cpu is not None else self._config.node_cpu
        memory = memory if memory is not None else self._config.node_memory
        node = SimNode(
            name=name,
            index=len(self._node_list),
            cpu_m=millicores(cpu),
            memory=byte_count(memory),
            cpu_text=str(cpu),
            memory_text=str(memory),
            max_pods=pods if pods is not None else self._config.node_pods,
            labels={"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})},
        )
        self.nodes[name] = node
        self._node_list.append(node)
        self._capacity_freed()
        return node

    def add_default_nodes(self) -> list[SimNode]:
        """The cluster's configured nodes: ``{prefix}0`` … ``{prefix}{n-1}``."""
        prefix = self._config.node_name_prefix
        return [self.add_node(f"{prefix}{i}") for i in range(self._config.nodes)]

    def set_node_ready(self, name: str, ready: bool) -> None:
        node = self.nodes[name]
        if node.ready != ready:
            node.ready = ready
            if ready:
                self._capacity_freed()

    # -- pods --------------------------------------------------------------------------
    def submit(self, pod: PodRecord, node_selector: dict[str, str] | None = None) -> None:
        """A new unbound pod: try it after the schedule delay."""
        if node_selector:
            self._selectors[pod.uid] = dict(node_selector)
        pod.stage = Stage.WAITING_SCHEDULE
        token = pod.next_generation()
        self._timeline.call_later(self._config.schedule_delay_s, self._attempt, pod, token)

    def adopt(self, pod: PodRecord, node_name: str) -> SimNode | None:
        """A pod created already bound (spec.nodeName set): count it on its node."""
        node = self.nodes.get(node_name)
        pod.node = node_name
        if node is not None:
            node.count(pod)
        return node

    def release(self, pod: PodRecord) -> None:
        """The pod no longer uses its node (terminated or removed): free its share."""
        self._selectors.pop(pod.uid, None)
        if self._queue.pop(pod.uid, None) is not None:
            return
        node = self.nodes.get(pod.node) if pod.node else None
        if node is not None and node.uncount(pod):
            self._capacity_freed()

    @property
    def unschedulable_count(self) -> int:
        return len(self._queue)

    def unschedulable_message(self, requests: Requests, selector: dict[str, str] | None) -> str:
        """The FailedScheduling message a real scheduler writes: ``0/N nodes are available: …``."""
        reasons: Counter[str] = Counter()
        for node in self._node_list:
            reasons.update(node.misfit(requests, selector))
        detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
        total = len(self._node_list)
        if not detail:
            return f"0/{total} nodes are available."
        return f"0/{total} nodes are available: {detail}."

    def _find_node(self, requests: Requests, selector: dict[str, str] | None) -> SimNode | None:
        nodes = self._node_list
        count = len(nodes)
        start = self._cursor
        for offset in range(count):
            node = nodes[(start + offset) % count]
            if node.fits(requests, selector):
                self._cursor = (start + offset + 1) % count
                return node
        return None

    def _attempt(self, pod: PodRecord, token: int) -> None:
        if pod.generation != token or pod.stage != Stage.WAITING_SCHEDULE or pod.deleting:
            return
        selector = self._selectors.get(pod.uid)
        node = self._find_node(pod.requests, selector)
        if node is not None:
            self._bind(pod, node)
            return
        pod.stage = Stage.UNSCHEDULABLE
        self._queue[pod.uid] = pod
        self._on_unschedulable(pod, self.unschedulable_message(pod.requests, selector))

    def _bind(self, pod: PodRecord, node: SimNode) -> None:
        self._selectors.pop(pod.uid, None)
        pod.node = node.name
        pod.stage = Stage.BOUND
        node.count(pod)
        self._on_bind(pod, node)

    def _capacity_freed(self) -> None:
        if self._queue and not self._retry_armed:
            self._retry_armed = True
            self._timeline.call_later(self._config.reschedule_delay_s, self._retry_pass)

    def _has_room(self) -> bool:
        return any(n.ready and n.schedulable and len(n.pods) < n.max_pods for n in self._node_list)

    def _retry_pass(self) -> None:
        self._retry_armed = False
        failures = 0
        free_slots = sum(
            n.max_pods - len(n.pods) for n in self._node_list if n.ready and n.schedulable
        )
        head = itertools.islice(self._queue.items(), max(0, free_slots) + RETRY_PASS_LIMIT)
        for uid, pod in list(head):
            if failures >= RETRY_PASS_LIMIT or not self._has_room():
                break
            node = self._find_node(pod.requests, self._selectors.get(uid))
            if node is None:
                failures += 1
                continue
            del self._queue[uid]
            self._bind(pod, node)
