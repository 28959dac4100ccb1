"""A scheduler for the simulated cluster: binds Pending pods to nodes that have room.

Event-driven, never scanning all pods: a pod is tried once when it is created (after the
schedule delay); if nothing fits it joins an ordered queue with ``PodScheduled=False``,
``Unschedulable``, and the queue is retried only when capacity frees (a pod finishes or goes,
a node is added or recovers), in one coalesced pass that stops as soon as the cluster is full.
Placement spreads pods across nodes round-robin among those that fit, like the default
``LeastAllocated`` scoring does in effect for uniform pods.

Filters run per node in kube-scheduler's order, the first that fails naming the node's
reason: cordon (``spec.unschedulable``), readiness, untolerated ``NoSchedule``/``NoExecute``
taints, nodeSelector and required node affinity (``placement.py``), then room (pods, cpu,
memory, counting what is reserved for pods nominated to the node with at least the pod's
priority). The queue is retried highest priority first. A pod that fits nowhere and may
preempt (``preemptionPolicy`` not ``Never``) looks for the node where evicting the fewest,
lowest-priority pods below its own priority makes room; it is nominated there and the
victims are handed to ``on_preempt``.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.cluster.placement import NO_PLACEMENT, Placement, taint_text
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
REASON_TAINT = "node(s) had untolerated taint {taint}"
#: The reasons preemption cannot help with (UnschedulableAndUnresolvable).
UNRESOLVABLE_PREFIXES = ("node(s)",)
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."


@dataclass(eq=False)
class SimNode:
    """One node: its allocatable capacity, what its pods use, and its pods."""

    name: str
    index: int
    cpu_m: int
    memory: int
    max_pods: int
    labels: dict[str, str] = field(default_factory=dict)
    #: Taints set on the Node object (cordon and readiness are kept apart, below).
    taints: list[dict[str, str]] = field(default_factory=list)
    used_cpu_m: int = 0
    used_memory: int = 0
    ready: bool = True
    schedulable: bool = True
    pods: dict[str, PodRecord] = field(default_factory=dict)  # uid → pod counted here
    #: Pods nominated here by preemption, waiting for their victims to go (uid → pod).
    nominated: dict[str, PodRecord] = field(default_factory=dict)
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

    def placement_misfit(self, placement: Placement) -> str | None:
        """Why the pod may not run here whatever room there is (None: it may)."""
        if not self.schedulable:
            return REASON_CORDONED
        if not self.ready:
            return REASON_NOT_READY
        if self.taints:
            taint = placement.untolerated(self.taints)
            if taint is not None:
                return REASON_TAINT.format(taint=taint_text(taint))
        if (placement.node_selector or placement.affinity_terms) and not \
                placement.matches_node(self.name, self.labels):
            return REASON_SELECTOR
        return None

    def _reserved(self, pod: PodRecord | None) -> tuple[int, int, int]:
        """cpu, memory and pods held for nominated pods that ``pod`` may not overtake."""
        if not self.nominated:
            return 0, 0, 0
        cpu = memory = count = 0
        priority = pod.priority if pod is not None else 0
        for other in self.nominated.values():
            if other is not pod and other.priority >= priority:
                cpu += other.requests.cpu_m
                memory += other.requests.memory
                count += 1
        return cpu, memory, count

    def room_misfit(self, requests: Requests, pod: PodRecord | None = None) -> list[str]:
        """What the node lacks for ``requests`` (empty: it has room)."""
        cpu, memory, count = self._reserved(pod)
        reasons = []
        if len(self.pods) + count >= self.max_pods:
            reasons.append(REASON_PODS)
        if requests.cpu_m and self.used_cpu_m + cpu + requests.cpu_m > self.cpu_m:
            reasons.append(REASON_CPU)
        if requests.memory and self.used_memory + memory + requests.memory > self.memory:
            reasons.append(REASON_MEMORY)
        return reasons

    def misfit(self, requests: Requests, placement: Placement | dict[str, str] | None = None,
               pod: PodRecord | None = None) -> Iterator[str]:
        """Why a pod with ``requests`` does not fit here (nothing → it fits)."""
        reason = self.placement_misfit(_placement(placement))
        if reason is not None:
            yield reason
            return
        yield from self.room_misfit(requests, pod)

    def fits(self, requests: Requests, placement: Placement | dict[str, str] | None = None,
             pod: PodRecord | None = None) -> bool:
        if not (self.ready and self.schedulable):
            return False
        if self.nominated:
            cpu, memory, count = self._reserved(pod)
        else:
            cpu = memory = count = 0
        if not (len(self.pods) + count < self.max_pods
                and self.used_cpu_m + cpu + requests.cpu_m <= self.cpu_m
                and self.used_memory + memory + requests.memory <= self.memory):
            return False
        if placement is None or placement is NO_PLACEMENT:
            return not self.taints or self.placement_misfit(NO_PLACEMENT) is None
        return self.placement_misfit(_placement(placement)) is None

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


def _placement(placement: Placement | dict[str, str] | None) -> Placement:
    if placement is None:
        return NO_PLACEMENT
    if isinstance(placement, Placement):
        return placement
    return Placement(node_selector=placement)


BindCallback = Callable[[PodRecord, SimNode], None]
UnschedulableCallback = Callable[[PodRecord, str], None]
#: (victims, the preempting pod, the node): evict the victims (they are still counted).
PreemptCallback = Callable[[list[PodRecord], PodRecord, SimNode], None]


class Scheduler:
    """Binds pods to nodes; owns the nodes' accounting and the unschedulable queue."""

    def __init__(
        self,
        config: ClusterConfig,
        timeline: Timeline,
        on_bind: BindCallback,
        on_unschedulable: UnschedulableCallback,
        on_preempt: PreemptCallback | None = None,
    ) -> None:
        self._config = config
        self._timeline = timeline
        self._on_bind = on_bind
        self._on_unschedulable = on_unschedulable
        self._on_preempt = on_preempt
        self.nodes: dict[str, SimNode] = {}
        self._node_list: list[SimNode] = []
        self._cursor = 0
        self._placements: dict[str, Placement] = {}  # uid → placement, when one is set
        #: Unschedulable pods by priority, each oldest first.
        self._queue: dict[int, dict[str, PodRecord]] = {}
        self._queued = 0
        self._retry_armed = False

    # -- nodes -------------------------------------------------------------------------
    def add_node(
        self,
        name: str,
        cpu: str | int | None = None,
        memory: str | int | None = None,
        pods: int | None = None,
        labels: dict[str, str] | None = None,
        taints: list[dict[str, str]] | None = None,
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
            taints=[dict(t) for t in taints or ()],
        )
        self.nodes[name] = node
        self._node_list.append(node)
        self._capacity_freed()
        return node

    def add_default_nodes(self) -> list[SimNode]:
        """The cluster's configured nodes: ``{prefix}0`` … ``{prefix}{n-1}``, then the ones
        the config declares one by one."""
        prefix = self._config.node_name_prefix
        nodes = [self.add_node(f"{prefix}{i}") for i in range(self._config.nodes)]
        for declared in self._config.node_list:
            nodes.append(self.add_node(declared.name, declared.cpu, declared.memory,
                                       declared.pods, declared.labels, declared.taints))
        return nodes

    def set_node_ready(self, name: str, ready: bool) -> None:
        node = self.nodes[name]
        if node.ready != ready:
            node.ready = ready
            if ready:
                self._capacity_freed()

    def set_node_schedulable(self, name: str, schedulable: bool) -> None:
        node = self.nodes[name]
        if node.schedulable != schedulable:
            node.schedulable = schedulable
            if schedulable:
                self._capacity_freed()

    def set_node_spec(self, name: str, labels: dict[str, str],
                      taints: list[dict[str, str]]) -> bool:
        """A Node object's labels or taints changed; returns whether anything did."""
        node = self.nodes[name]
        if node.labels == labels and node.taints == taints:
            return False
        node.labels = dict(labels)
        node.taints = [dict(t) for t in taints]
        self._capacity_freed()  # a removed taint or a new label may let pods in
        return True

    # -- pods --------------------------------------------------------------------------
    def submit(self, pod: PodRecord, placement: Placement | dict[str, str] | None = None) -> None:
        """A new unbound pod: try it after the schedule delay."""
        rules = _placement(placement)
        if rules != NO_PLACEMENT:
            self._placements[pod.uid] = rules
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

    def placement(self, pod: PodRecord) -> Placement:
        return self._placements.get(pod.uid, NO_PLACEMENT)

    def _unqueue(self, pod: PodRecord) -> bool:
        bucket = self._queue.get(pod.priority)
        if bucket is None or bucket.pop(pod.uid, None) is None:
            return False
        self._queued -= 1
        if not bucket:
            del self._queue[pod.priority]
        return True

    def _unnominate(self, pod: PodRecord) -> None:
        if pod.nominated_node is not None:
            node = self.nodes.get(pod.nominated_node)
            if node is not None:
                node.nominated.pop(pod.uid, None)
            pod.nominated_node = None

    def release(self, pod: PodRecord) -> None:
        """The pod no longer uses its node (terminated or removed): free its share."""
        self._placements.pop(pod.uid, None)
        self._unnominate(pod)
        if self._unqueue(pod):
            return
        node = self.nodes.get(pod.node) if pod.node else None
        if node is not None and node.uncount(pod):
            self._capacity_freed()

    @property
    def unschedulable_count(self) -> int:
        return self._queued

    def _histogram(self, reasons: Counter[str]) -> str:
        # The real scheduler sorts the "count reason" strings themselves.
        return ", ".join(sorted(f"{count} {reason}" for reason, count in reasons.items()))

    def unschedulable_message(self, requests: Requests,
                              placement: Placement | dict[str, str] | None,
                              pod: PodRecord | None = None) -> str:
        """What the filters said: ``0/N nodes are available: …`` (without preemption's part)."""
        reasons: Counter[str] = Counter()
        for node in self._node_list:
            reasons.update(node.misfit(requests, placement, pod))
        total = len(self._node_list)
        if not reasons:
            return f"0/{total} nodes are available."
        return f"0/{total} nodes are available: {self._histogram(reasons)}."

    def _find_node(self, pod: PodRecord) -> SimNode | None:
        nodes = self._node_list
        count = len(nodes)
        start = self._cursor
        requests = pod.requests
        placement = self._placements.get(pod.uid, NO_PLACEMENT)
        for offset in range(count):
            node = nodes[(start + offset) % count]
            if node.fits(requests, placement, pod):
                self._cursor = (start + offset + 1) % count
                return node
        return None

    # -- preemption ----------------------------------------------------------------------
    def _victims_on(self, node: SimNode, pod: PodRecord) -> list[PodRecord] | None:
        """The fewest lower-priority pods whose eviction makes room for ``pod`` (None: none do).

        All lower-priority pods are removed, then taken back highest priority first while the
        pod still fits (the real scheduler's reprieve).
        """
        lower = [p for p in node.pods.values() if p.priority < pod.priority and not p.deleting]
        cpu, memory, count = node._reserved(pod)
        free_cpu = node.cpu_m - node.used_cpu_m - cpu + sum(p.requests.cpu_m for p in lower)
        free_memory = node.memory - node.used_memory - memory + sum(
            p.requests.memory for p in lower)
        free_pods = node.max_pods - len(node.pods) - count + len(lower)
        need = pod.requests
        if free_cpu < need.cpu_m or free_memory < need.memory or free_pods < 1:
            return None
        free_cpu -= need.cpu_m
        free_memory -= need.memory
        free_pods -= 1
        victims = []
        for other in sorted(lower, key=lambda p: -p.priority):
            if (other.requests.cpu_m <= free_cpu and other.requests.memory <= free_memory
                    and free_pods >= 1):
                free_cpu -= other.requests.cpu_m
                free_memory -= other.requests.memory
                free_pods -= 1
            else:
                victims.append(other)
        return victims if victims else None

    def _preempt(self, pod: PodRecord) -> str:
        """Try to make room for ``pod`` by preemption; "" when it nominated a node, else the
        ``preemption: …`` part of the FailedScheduling message."""
        if not pod.may_preempt:
            return f"preemption: {NOT_ELIGIBLE_NEVER}"
        nominated = self.nodes.get(pod.nominated_node) if pod.nominated_node else None
        if nominated is not None and any(
                p.deleting and p.priority < pod.priority for p in nominated.pods.values()):
            return f"preemption: {NOT_ELIGIBLE_TERMINATING}"
        placement = self._placements.get(pod.uid, NO_PLACEMENT)
        reasons: Counter[str] = Counter()
        best: tuple[tuple[int, int, int, int], SimNode, list[PodRecord]] | None = None
        for node in self._node_list:
            if node.placement_misfit(placement) is not None:
                reasons[PREEMPTION_NOT_HELPFUL] += 1
                continue
            victims = self._victims_on(node, pod)
            if victims is None:
                reasons[NO_VICTIMS] += 1
                continue
            rank = (max(v.priority for v in victims), sum(v.priority for v in victims),
                    len(victims), node.index)
            if best is None or rank < best[0]:
                best = (rank, node, victims)
        if best is None:
            return (f"preemption: 0/{len(self._node_list)} nodes are available: "
                    f"{self._histogram(reasons)}.")
        _, node, victims = best
        self._unnominate(pod)
        pod.nominated_node = node.name
        node.nominated[pod.uid] = pod
        if self._on_preempt is not None:
            self._on_preempt(victims, pod, node)
        return ""

    # -- attempts ------------------------------------------------------------------------
    def _attempt(self, pod: PodRecord, token: int) -> None:
        if pod.generation != token or pod.stage != Stage.WAITING_SCHEDULE or pod.deleting:
            return
        node = self._find_node(pod)
        if node is not None:
            self._bind(pod, node)
            return
        pod.stage = Stage.UNSCHEDULABLE
        self._queue.setdefault(pod.priority, {})[pod.uid] = pod
        self._queued += 1
        self._unschedulable(pod)

    def _unschedulable(self, pod: PodRecord) -> None:
        message = self.unschedulable_message(pod.requests, self.placement(pod), pod)
        post = self._preempt(pod)
        self._on_unschedulable(pod, f"{message} {post}" if post else message)

    def _bind(self, pod: PodRecord, node: SimNode) -> None:
        self._placements.pop(pod.uid, None)
        self._unnominate(pod)
        pod.node = node.name
        pod.stage = Stage.BOUND
        node.count(pod)
        self._on_bind(pod, node)

    def _capacity_freed(self) -> None:
        if self._queued and not self._retry_armed:
            self._retry_armed = True
            self._timeline.call_later(self._config.reschedule_delay_s, self._retry_pass)

    def _has_room(self) -> bool:
        return any(n.ready and n.schedulable and len(n.pods) < n.max_pods for n in self._node_list)

    def _retry_pass(self) -> None:
        """Try the queue, highest priority first, until too many fail or the cluster is full."""
        self._retry_armed = False
        failures = 0
        free_slots = sum(
            n.max_pods - len(n.pods) for n in self._node_list if n.ready and n.schedulable
        )
        budget = max(0, free_slots) + RETRY_PASS_LIMIT
        for priority in sorted(self._queue, reverse=True):
            bucket = self._queue.get(priority)
            if bucket is None:
                continue
            for pod in list(itertools.islice(bucket.values(), budget)):
                budget -= 1
                if failures >= RETRY_PASS_LIMIT or not self._has_room():
                    return
                node = self._find_node(pod)
                if node is None:
                    failures += 1
                    if pod.nominated_node is None and priority > 0:
                        # Capacity changed: a pod that may preempt tries again.
                        self._unschedulable(pod)
                    continue
                self._unqueue(pod)
                self._bind(pod, node)
            if budget <= 0:
                return
