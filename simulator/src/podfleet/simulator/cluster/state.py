"""What the simulated cluster remembers about each pod between two of its steps."""

from __future__ import annotations

import enum
from typing import Any

from podfleet.simulator.cluster.fate import DEFAULT_FATE, PodFate
from podfleet.simulator.cluster.resources import NO_REQUESTS, Requests


class Stage(enum.IntEnum):
    """Where a pod is in its life, from the kubelet's and scheduler's point of view."""

    WAITING_SCHEDULE = 0  # created, not yet tried by the scheduler
    UNSCHEDULABLE = 1  # tried, nothing fits; waiting for capacity
    BOUND = 2  # spec.nodeName set; the kubelet has not acknowledged it yet
    CREATING = 3  # Pending, ContainerCreating (or stuck in a waiting reason)
    RUNNING = 4
    TERMINATED = 5  # Succeeded or Failed
    GONE = 6  # removed from the store


class PodRecord:
    """One pod's simulation state. ``generation`` invalidates timers set for an older step."""

    __slots__ = (
        "active_deadline_s",
        "command",
        "containers",
        "counted",
        "deleting",
        "disruption",
        "fate",
        "generation",
        "grace_s",
        "host_ip",
        "image_error",
        "last_exit",
        "local",
        "log_lines",
        "may_preempt",
        "message_source",
        "name",
        "namespace",
        "node",
        "nominated_node",
        "pod_ip",
        "previous_local",
        "priority",
        "pull_always",
        "pulling",
        "qos",
        "requests",
        "restart_count",
        "restart_policy",
        "running_since",
        "scheduled_at",
        "stage",
        "started_at",
        "tolerations",
        "uid",
    )

    def __init__(self, uid: str, namespace: str, name: str) -> None:
        self.uid = uid
        self.namespace = namespace
        self.name = name
        self.requests: Requests = NO_REQUESTS
        self.fate: PodFate = DEFAULT_FATE
        self.node: str | None = None
        self.stage = Stage.WAITING_SCHEDULE
        self.generation = 0
        self.counted = False  # its requests are counted against its node
        self.deleting = False
        self.grace_s: float = 30.0
        self.restart_policy = "Always"
        self.restart_count = 0
        self.containers: tuple[tuple[str, str], ...] = ()  # (name, image)
        #: Per container: imagePullPolicy is Always (pull at every start).
        self.pull_always: tuple[bool, ...] = ()
        #: Per container: this start pulls the image (set when the kubelet takes the pod).
        self.pulling: tuple[bool, ...] = ()
        #: Simulated log lines, kept only for FallbackToLogsOnError's message.
        self.log_lines: tuple[str, ...] = ()
        #: (container, the kubelet's InvalidImageName message) for the first image it refuses.
        self.image_error: tuple[str, str] | None = None
        #: First container's (terminationMessagePath, terminationMessagePolicy).
        self.message_source: tuple[str, str] = ("/dev/termination-log", "File")
        #: First container's command + args and env, for local mode.
        self.command: tuple[list[str], dict[str, str]] | None = None
        self.qos = "BestEffort"
        self.scheduled_at: str | None = None
        self.started_at: str | None = None  # status.startTime
        self.running_since: str | None = None  # the current container run's startedAt
        #: (exitCode, reason, startedAt, finishedAt) of the previous run, after a restart.
        self.last_exit: tuple[int, str, str, str] | None = None
        self.pod_ip: str | None = None
        self.host_ip: str | None = None
        self.local: Any = None  # LocalContainer in local mode
        self.previous_local: Any = None  # the run before a restart, for ``logs --previous``
        #: spec.priority, and whether it may preempt (preemptionPolicy is not Never).
        self.priority = 0
        self.may_preempt = True
        #: The node preemption made room on, while the pod waits for its victims to go.
        self.nominated_node: str | None = None
        self.tolerations: tuple[dict[str, Any], ...] = ()
        #: spec.activeDeadlineSeconds.
        self.active_deadline_s: float | None = None
        #: The DisruptionTarget condition the pod got when it was preempted or evicted; the
        #: kubelet keeps it in every status it writes afterwards.
        self.disruption: dict[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name), the store's key."""
        return self.namespace, self.name

    def next_generation(self) -> int:
        """Invalidate every timer set so far and return the token for the next one."""
        self.generation += 1
        return self.generation
