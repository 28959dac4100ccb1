"""Local mode: the kubelet runs a pod's command as a real subprocess."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import fast_simulator, pod_body, unique, wait_for
from kubernetes import client

from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with fast_simulator(local_mode=True) as simulator:
        yield simulator


def _ended(api: client.CoreV1Api, name: str) -> Any:
    def probe() -> Any:
        pod = api.read_namespaced_pod(name, NS)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    return wait_for(probe, what=f"{name} to end")


def test_a_command_exiting_3_fails_the_pod_with_exit_code_3(api: client.CoreV1Api) -> None:
    name = unique("exit3")
    api.create_namespaced_pod(NS, pod_body(name, command=["sh", "-c", "exit 3"]))

    pod = _ended(api, name)

    terminated = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, terminated.reason, terminated.exit_code) == ("Failed", "Error", 3)


def test_a_succeeding_command_gets_its_env_and_its_output_kept(
    api: client.CoreV1Api, sim: RunningSimulator
) -> None:
    name = unique("echo")
    api.create_namespaced_pod(NS, pod_body(
        name, command=["sh", "-c", 'echo "hello $WHO"'], env={"WHO": "podfleet"}))

    pod = _ended(api, name)

    assert pod.status.phase == "Succeeded"
    assert sim.admin.logs(NS, name) == b"hello podfleet\n"


def test_the_pod_is_running_while_the_process_runs(
    api: client.CoreV1Api, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    name = unique("sleeper")
    api.create_namespaced_pod(NS, pod_body(
        name, command=["sh", "-c", f"touch {marker}; sleep 30"], grace_s=1))

    wait_for(marker.exists, what="the process to start")
    wait_for(lambda: api.read_namespaced_pod(name, NS).status.phase == "Running",
             what="Running")

    api.delete_namespaced_pod(name, NS)
    wait_for(lambda: name not in [p.metadata.name for p in api.list_namespaced_pod(NS).items],
             what="the pod to be removed")


def test_deleting_the_pod_kills_its_process(api: client.CoreV1Api, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    name = unique("victim")
    api.create_namespaced_pod(NS, pod_body(
        name, command=["sh", "-c", f"echo $$ > {pid_file}; exec sleep 30"], grace_s=1))
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), what="pid")
    pid = int(pid_file.read_text())

    api.delete_namespaced_pod(name, NS)

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(gone, what="the process to die")


def test_a_missing_executable_fails_the_pod_with_start_error(api: client.CoreV1Api) -> None:
    name = unique("missing")
    api.create_namespaced_pod(NS, pod_body(name, command=["/nonexistent/binary"]))

    pod = _ended(api, name)

    terminated = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, terminated.reason, terminated.exit_code) == (
        "Failed", "StartError", 128)
