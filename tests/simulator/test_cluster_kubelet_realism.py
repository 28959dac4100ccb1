"""What a real kubelet does that clients rely on: refusing image names it cannot parse
(InvalidImageName) and filling a terminated container's message from its
terminationMessagePath, or from its log with FallbackToLogsOnError."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import fast_simulator, unique, wait_for
from kubernetes import client

from podfleet.simulator.cluster.fate import DURATION, EXIT_CODE, LOG, MESSAGE
from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    # Local mode: pods with a command really run it; pods without one are simulated.
    with fast_simulator(local_mode=True, default_run_time_s=0.05) as simulator:
        yield simulator


def _pod(name: str, image: str = "busybox:1.36", annotations: dict[str, str] | None = None,
         **container: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": image, **container}]}}


def _state(api: client.CoreV1Api, name: str, key: str) -> Any:
    def probe() -> Any:
        statuses = api.read_namespaced_pod(name, NS).status.container_statuses
        return getattr(statuses[0].state, key) if statuses else None

    return wait_for(probe, what=f"{name} to be {key}")


@pytest.mark.parametrize("image, error", [
    ("bad image name", "invalid reference format"),
    ("Busybox:1.36", "invalid reference format: repository name (library/Busybox) must be "
                     "lowercase"),
    ("busybox:", "invalid reference format"),
])
def test_an_image_name_a_kubelet_cannot_parse_waits_in_invalid_image_name(
    api: client.CoreV1Api, image: str, error: str
) -> None:
    name = unique("badimage")
    api.create_namespaced_pod(NS, _pod(name, image))

    waiting = _state(api, name, "waiting")
    while waiting.reason == "ContainerCreating":
        waiting = _state(api, name, "waiting")

    assert waiting.reason == "InvalidImageName"
    assert waiting.message == (
        f'Failed to apply default image tag "{image}": couldn\'t parse image name "{image}": '
        f"{error}")
    assert api.read_namespaced_pod(name, NS).status.phase == "Pending"


@pytest.mark.parametrize("image", ["busybox", "registry.k8s.io/pause:3.9",
                                   "localhost:5000/team/app@sha256:" + "a" * 64])
def test_valid_image_names_start(api: client.CoreV1Api, image: str) -> None:
    name = unique("goodimage")
    api.create_namespaced_pod(NS, _pod(name, image))

    assert _state(api, name, "terminated").reason == "Completed"


def test_a_local_process_writes_its_termination_message(
    api: client.CoreV1Api, tmp_path: Path
) -> None:
    name = unique("msg")
    path = tmp_path / "termination-log"
    api.create_namespaced_pod(NS, _pod(
        name, command=["sh", "-c", f"echo 'disk full' > {path}; exit 3"],
        terminationMessagePath=str(path)))

    terminated = _state(api, name, "terminated")

    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert terminated.message == "disk full\n"


def test_a_message_file_left_by_an_earlier_run_is_not_this_runs_message(
    api: client.CoreV1Api, tmp_path: Path
) -> None:
    name = unique("stale")
    path = tmp_path / "termination-log"
    path.write_text("from before")
    os.utime(path, (0, 0))
    api.create_namespaced_pod(NS, _pod(name, command=["sh", "-c", "exit 4"],
                                       terminationMessagePath=str(path)))

    assert _state(api, name, "terminated").message is None


def test_fallback_to_logs_on_error_gives_the_tail_of_a_failed_processs_log(
    api: client.CoreV1Api
) -> None:
    name = unique("fallback")
    script = "for i in $(seq 1 100); do echo line $i; done; exit 2"
    api.create_namespaced_pod(NS, _pod(name, command=["sh", "-c", script],
                                       terminationMessagePolicy="FallbackToLogsOnError"))

    message = _state(api, name, "terminated").message

    assert message.splitlines() == [f"line {i}" for i in range(21, 101)]


def test_fallback_to_logs_keeps_at_most_2_kib(api: client.CoreV1Api) -> None:
    name = unique("long")
    script = "for i in $(seq 1 60); do printf '%099d\\n' $i; done; exit 1"
    api.create_namespaced_pod(NS, _pod(name, command=["sh", "-c", script],
                                       terminationMessagePolicy="FallbackToLogsOnError"))

    message = _state(api, name, "terminated").message

    assert len(message.encode()) == 2048
    assert message.endswith(f"{60:099d}\n")


def test_fallback_to_logs_gives_nothing_to_a_container_that_succeeded(
    api: client.CoreV1Api
) -> None:
    name = unique("fine")
    api.create_namespaced_pod(NS, _pod(name, command=["sh", "-c", "echo all good"],
                                       terminationMessagePolicy="FallbackToLogsOnError"))

    terminated = _state(api, name, "terminated")

    assert (terminated.reason, terminated.message) == ("Completed", None)


def test_a_simulated_container_falls_back_to_its_log_annotation(
    api: client.CoreV1Api
) -> None:
    name = unique("simlog")
    api.create_namespaced_pod(NS, _pod(
        name, annotations={EXIT_CODE: "1", DURATION: "0.01", LOG: "starting\nboom: no such key"},
        terminationMessagePolicy="FallbackToLogsOnError"))

    assert _state(api, name, "terminated").message == "starting\nboom: no such key\n"


def test_a_simulated_container_takes_its_message_from_the_annotation(
    api: client.CoreV1Api
) -> None:
    name = unique("simmsg")
    api.create_namespaced_pod(NS, _pod(
        name, annotations={EXIT_CODE: "5", DURATION: "0.01", MESSAGE: "quota exceeded"}))

    assert _state(api, name, "terminated").message == "quota exceeded"
