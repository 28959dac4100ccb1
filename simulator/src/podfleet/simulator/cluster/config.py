"""Settings of the simulated cluster: its nodes, and how long each step of a pod's life takes.

The defaults make the demo look like a real (fast) cluster; tests set every latency to a few
milliseconds. All durations are in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NodeConfig:
    """One node declared by name, beyond the uniform ``nodes`` (unset fields: the defaults)."""

    name: str
    cpu: str | None = None
    memory: str | None = None
    pods: int | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: Node taints: ``{"key": ..., "value": ..., "effect": "NoSchedule"}``.
    taints: list[dict[str, str]] = field(default_factory=list)


@dataclass
class ClusterConfig:
    """Nodes, latencies and the kubelet's mode of the simulated cluster."""

    #: How many nodes the cluster starts with, named ``{node_name_prefix}{index}``.
    nodes: int = 20
    node_name_prefix: str = "sim-node-"
    #: Allocatable capacity of each node, as Kubernetes quantities.
    node_cpu: str = "32"
    node_memory: str = "128Gi"
    node_pods: int = 110
    #: Nodes declared one by one (labels, taints, their own capacity), after the uniform ones.
    node_list: list[NodeConfig] = field(default_factory=list)

    #: Created → bound to a node (PodScheduled=True).
    schedule_delay_s: float = 0.05
    #: Bound → ContainerCreating acknowledged by the kubelet (hostIP, startTime). At 0 the
    #: binding and ContainerCreating are one write (one MODIFIED event); above 0, two.
    kubelet_ack_delay_s: float = 0.0
    #: ContainerCreating → Running. A pod's ``sim.podfleet.io/start-delay`` overrides it.
    container_start_delay_s: float = 0.5
    #: Running → terminated. A pod's ``sim.podfleet.io/duration`` overrides it.
    #: Pods with ``restartPolicy: Always`` and no duration annotation run until deleted.
    default_run_time_s: float = 2.0
    #: ErrImagePull → ImagePullBackOff.
    image_pull_backoff_s: float = 1.0
    #: How long a running container takes to stop after SIGTERM when its pod is deleted
    #: (capped by the pod's grace period). ``sim.podfleet.io/termination-delay`` overrides it.
    termination_delay_s: float = 0.1
    #: Delay before unschedulable pods are tried again once capacity frees (coalesces retries).
    reschedule_delay_s: float = 0.02

    #: Run each pod's container command as a local subprocess instead of simulating it.
    local_mode: bool = False
    #: Bytes of each local container's output kept for logs.
    local_log_bytes: int = 64 * 1024

    #: Most timers the kubelet fires in one turn of the event loop before it lets requests run.
    timer_batch: int = 256
