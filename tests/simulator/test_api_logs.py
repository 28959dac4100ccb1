"""`pods/{name}/log`: kubectl logs and read_namespaced_pod_log, as a real cluster answers them."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_support import asyncio_core_api, fast_simulator, pod_body, unique, wait_for
from kubernetes import client
from kubernetes.client.rest import ApiException

from podfleet.simulator.apiserver.podlogs import simulated_lines
from podfleet.simulator.cluster.fate import IMAGE_PULL_ERROR, LOG, START_DELAY
from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    # Local mode: pods with a command really run it; pods without one are simulated.
    with fast_simulator(local_mode=True, default_run_time_s=0.3) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def kubeconfig(sim: RunningSimulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sim.write_kubeconfig(tmp_path_factory.mktemp("logs") / "kubeconfig")


def _kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = "kubectl"
    return subprocess.run(
        [kubectl, "--kubeconfig", str(kubeconfig), "-n", NS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _phase(api: client.CoreV1Api, name: str, *phases: str) -> Any:
    def probe() -> Any:
        pod = api.read_namespaced_pod(name, NS)
        return pod if pod.status.phase in phases else None

    return wait_for(probe, what=f"{name} to be {phases}")


def _error(call: Any) -> tuple[int, str]:
    with pytest.raises(ApiException) as caught:
        call()
    import orjson

    body = orjson.loads(caught.value.body)
    return caught.value.status, f"{body['reason']}: {body['message']}"


SCRIPT = "echo one; echo two >&2; echo three"


def _succeeded(api: client.CoreV1Api, prefix: str, script: str = SCRIPT) -> str:
    """The name of a new pod that ran ``sh -c script`` and Succeeded."""
    name = unique(prefix)
    api.create_namespaced_pod(NS, pod_body(name, command=["sh", "-c", script]))
    _phase(api, name, "Succeeded")
    return name


def test_local_mode_log_is_the_process_stdout_and_stderr(api: client.CoreV1Api) -> None:
    name = _succeeded(api, "out")

    assert api.read_namespaced_pod_log(name, NS) == "one\ntwo\nthree\n"


def test_tail_lines_keeps_the_last_lines(api: client.CoreV1Api) -> None:
    name = _succeeded(api, "tail")

    assert api.read_namespaced_pod_log(name, NS, tail_lines=2) == "two\nthree\n"


def test_timestamps_prefix_each_line_with_rfc3339_nanoseconds(api: client.CoreV1Api) -> None:
    name = _succeeded(api, "ts")

    lines = api.read_namespaced_pod_log(name, NS, timestamps=True).splitlines()

    stamps = [line.split(" ", 1)[0] for line in lines]
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two", "three"]
    for stamp in stamps:
        assert time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S") and stamp.endswith("Z")
        assert len(stamp.split(".")[1]) == 10  # nine digits and the Z


def test_since_seconds_leaves_out_older_lines(api: client.CoreV1Api) -> None:
    name = _succeeded(api, "since", "echo early; sleep 2.5; echo late")

    assert api.read_namespaced_pod_log(name, NS, since_seconds=2) == "late\n"


def test_limit_bytes_cuts_the_log(api: client.CoreV1Api) -> None:
    name = _succeeded(api, "limit")

    assert api.read_namespaced_pod_log(name, NS, limit_bytes=6) == "one\ntw"


def test_follow_streams_lines_as_they_are_written_and_ends_with_the_process(
    api: client.CoreV1Api,
) -> None:
    name = unique("follow")
    api.create_namespaced_pod(
        NS, pod_body(name, command=["sh", "-c", "echo first; sleep 0.5; echo second"])
    )
    _phase(api, name, "Running", "Succeeded")

    response = api.read_namespaced_pod_log(name, NS, follow=True, _preload_content=False)
    chunks = [chunk for chunk in response.stream(1024) if chunk]
    response.release_conn()

    assert b"".join(chunks) == b"first\nsecond\n"
    assert len(chunks) >= 2  # "second" came later, in a chunk of its own


def test_a_simulated_pod_logs_its_command_annotation_and_exit(api: client.CoreV1Api) -> None:
    # No command: local mode simulates it.
    name = unique("simlog")
    api.create_namespaced_pod(NS, pod_body(name, {LOG: "loading rows\n42 rows loaded"}))
    _phase(api, name, "Succeeded")

    assert api.read_namespaced_pod_log(name, NS) == (
        "+ busybox:1.36 (image entrypoint)\nloading rows\n42 rows loaded\n"
        "sim: exited with code 0 (Completed)\n"
    )


def test_a_simulated_log_starts_with_the_command_and_args_as_a_shell_would_trace_them() -> None:
    pod = pod_body("p", command=["airflow", "tasks", "run"])
    pod["spec"]["containers"][0]["args"] = ["etl", "load one"]
    run = {"startedAt": "2026-01-01T00:00:00Z"}

    lines = simulated_lines(pod, "main", run)

    assert lines == [(1767225600.0, b"+ airflow tasks run etl 'load one'\n")]


def test_a_pod_waiting_to_start_answers_400_as_the_kubelet_words_it(
    api: client.CoreV1Api,
) -> None:
    name = unique("creating")
    api.create_namespaced_pod(NS, pod_body(name, {START_DELAY: "30"}))
    wait_for(
        lambda: api.read_namespaced_pod(name, NS).spec.node_name, what=f"{name} to be bound"
    )

    assert _error(lambda: api.read_namespaced_pod_log(name, NS)) == (
        400,
        f'BadRequest: container "main" in pod "{name}" is waiting to start: ContainerCreating',
    )


def test_a_pod_failing_to_pull_its_image_answers_trying_and_failing(
    api: client.CoreV1Api,
) -> None:
    name = unique("pull")
    api.create_namespaced_pod(NS, pod_body(name, {IMAGE_PULL_ERROR: "true"}))

    def backoff() -> Any:
        status = api.read_namespaced_pod(name, NS).status
        waiting = status.container_statuses and status.container_statuses[0].state.waiting
        return waiting and waiting.reason == "ImagePullBackOff"

    wait_for(backoff, what=f"{name} in ImagePullBackOff")

    assert _error(lambda: api.read_namespaced_pod_log(name, NS)) == (
        400,
        f'BadRequest: container "main" in pod "{name}" is waiting to start: '
        "trying and failing to pull image",
    )


def test_an_unknown_container_is_a_bad_request(api: client.CoreV1Api) -> None:
    name = unique("nocontainer")
    api.create_namespaced_pod(NS, pod_body(name, command=["true"]))

    assert _error(lambda: api.read_namespaced_pod_log(name, NS, container="sidecar")) == (
        400,
        f"BadRequest: container sidecar is not valid for pod {name}",
    )


def test_two_containers_need_a_container_name(api: client.CoreV1Api) -> None:
    name = unique("two")
    body = pod_body(name)
    body["spec"]["containers"].append({"name": "sidecar", "image": "busybox"})
    api.create_namespaced_pod(NS, body)
    _phase(api, name, "Running", "Succeeded")

    assert _error(lambda: api.read_namespaced_pod_log(name, NS)) == (
        400,
        f"BadRequest: a container name must be specified for pod {name}, "
        "choose one of: [main sidecar]",
    )
    assert api.read_namespaced_pod_log(name, NS, container="sidecar").startswith("+ busybox")


def test_previous_without_a_restart_is_not_found(api: client.CoreV1Api) -> None:
    name = unique("noprev")
    api.create_namespaced_pod(NS, pod_body(name, command=["true"]))
    _phase(api, name, "Succeeded")

    assert _error(lambda: api.read_namespaced_pod_log(name, NS, previous=True)) == (
        400,
        f'BadRequest: previous terminated container "main" in pod "{name}" not found',
    )


def test_previous_gives_the_run_before_a_restart(api: client.CoreV1Api) -> None:
    name = unique("prev")
    script = "echo run; exit 1"
    api.create_namespaced_pod(
        NS, pod_body(name, command=["sh", "-c", script], restart_policy="OnFailure")
    )
    wait_for(
        lambda: (api.read_namespaced_pod(name, NS).status.container_statuses or [None])[0]
        and api.read_namespaced_pod(name, NS).status.container_statuses[0].restart_count >= 1,
        what=f"{name} to restart",
    )

    assert api.read_namespaced_pod_log(name, NS, previous=True) == "run\n"


def test_a_pod_not_on_a_node_has_an_empty_log(api: client.CoreV1Api) -> None:
    name = unique("unbound")
    body = pod_body(name, node_selector={"no-such": "node"})
    api.create_namespaced_pod(NS, body)

    assert api.read_namespaced_pod_log(name, NS) == ""


def test_a_missing_pod_is_not_found(api: client.CoreV1Api) -> None:
    assert _error(lambda: api.read_namespaced_pod_log("no-such-pod", NS)) == (
        404,
        'NotFound: pods "no-such-pod" not found',
    )


def test_negative_tail_lines_is_invalid(api: client.CoreV1Api) -> None:
    name = unique("badtail")
    api.create_namespaced_pod(NS, pod_body(name, command=["true"]))

    status, message = _error(lambda: api.read_namespaced_pod_log(name, NS, tail_lines=-1))

    assert status == 422 and "tailLines" in message


def test_kubectl_logs_with_tail_timestamps_and_container(
    api: client.CoreV1Api, kubeconfig: Path
) -> None:
    name = _succeeded(api, "kubectl")

    plain = _kubectl(kubeconfig, "logs", name)
    tail = _kubectl(kubeconfig, "logs", name, "--tail=1", "-c", "main")
    stamped = _kubectl(kubeconfig, "logs", name, "--timestamps", "--since=1h")

    assert (plain.returncode, plain.stdout) == (0, "one\ntwo\nthree\n")
    assert tail.stdout == "three\n"
    assert [line.split(" ", 1)[1] for line in stamped.stdout.splitlines()] == [
        "one",
        "two",
        "three",
    ]


def test_kubectl_logs_follow_ends_when_the_container_does(
    api: client.CoreV1Api, kubeconfig: Path
) -> None:
    name = unique("kfollow")
    api.create_namespaced_pod(
        NS, pod_body(name, command=["sh", "-c", "echo a; sleep 0.5; echo b"])
    )
    _phase(api, name, "Running", "Succeeded")

    followed = _kubectl(kubeconfig, "logs", "-f", name)

    assert (followed.returncode, followed.stdout) == (0, "a\nb\n")


def test_kubectl_logs_of_a_waiting_pod_prints_the_servers_reason(
    api: client.CoreV1Api, kubeconfig: Path
) -> None:
    name = unique("kwait")
    api.create_namespaced_pod(NS, pod_body(name, {START_DELAY: "30"}))
    wait_for(
        lambda: api.read_namespaced_pod(name, NS).spec.node_name, what=f"{name} to be bound"
    )

    result = _kubectl(kubeconfig, "logs", name)

    assert result.returncode != 0
    assert result.stderr.strip() == (
        f'Error from server (BadRequest): container "main" in pod "{name}" is waiting to '
        "start: ContainerCreating"
    )


def test_kubernetes_asyncio_reads_a_log(api: client.CoreV1Api, sim: RunningSimulator,
                                        tmp_path: Path) -> None:
    pytest.importorskip("kubernetes_asyncio")
    name = _succeeded(api, "async")

    async def read() -> str:
        # Its own kubeconfig loading: the CA and the token, as a user's program does
        async with asyncio_core_api(sim, tmp_path) as core:
            text: str = await core.read_namespaced_pod_log(name, NS, tail_lines=1)
            return text

    assert asyncio.run(read()) == "three\n"
