"""The simulated cluster the simulator and watcher tests run on: every latency in milliseconds,
so a pod's whole life takes a few tens of milliseconds."""

from __future__ import annotations

from podfleet.simulator.cluster.config import ClusterConfig

FAST_CLUSTER = ClusterConfig(
    nodes=2,
    schedule_delay_s=0.002,
    container_start_delay_s=0.01,
    default_run_time_s=0.03,
    image_pull_backoff_s=0.02,
    termination_delay_s=0.01,
    reschedule_delay_s=0.005,
)
