"""The real kubectl against the simulator: get, create, label, describe, delete, get -w."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kubernetes import client


def kubectl(kubectl_bin: str, kubeconfig: Path, *args: str, timeout: float = 30) -> str:
    result = subprocess.run(
        [kubectl_bin, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def pod_file(tmp_path: Path, namespace: str) -> Path:
    path = tmp_path / "pod.yaml"
    path.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: from-kubectl\n"
        f"  namespace: {namespace}\n  labels:\n    app: demo\n"
        "spec:\n  terminationGracePeriodSeconds: 1\n"
        "  containers:\n  - name: main\n    image: busybox:1.36\n"
    )
    return path


def test_kubectl_get_nodes(kubectl_bin: str, kubeconfig: Path) -> None:
    out = kubectl(kubectl_bin, kubeconfig, "get", "nodes")

    assert out.splitlines()[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert len(out.splitlines()) == 4
    assert "Ready" in out


def test_kubectl_create_then_get_pods_all_namespaces(
    kubectl_bin: str, kubeconfig: Path, pod_file: Path, namespace: str
) -> None:
    created = kubectl(kubectl_bin, kubeconfig, "create", "-f", str(pod_file))
    listing = kubectl(kubectl_bin, kubeconfig, "get", "pods", "-A")

    assert created.strip() == "pod/from-kubectl created"
    header, *rows = listing.splitlines()
    assert header.split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert any(row.split()[:2] == [namespace, "from-kubectl"] for row in rows)


def test_kubectl_label_pod(
    kubectl_bin: str, kubeconfig: Path, pod_file: Path, namespace: str, core: client.CoreV1Api
) -> None:
    kubectl(kubectl_bin, kubeconfig, "create", "-f", str(pod_file))

    out = kubectl(kubectl_bin, kubeconfig, "-n", namespace, "label", "pod", "from-kubectl", "a=b")

    assert out.strip() == "pod/from-kubectl labeled"
    assert core.read_namespaced_pod("from-kubectl", namespace).metadata.labels == {
        "app": "demo",
        "a": "b",
    }


def test_kubectl_describe_pod(
    kubectl_bin: str, kubeconfig: Path, pod_file: Path, namespace: str
) -> None:
    kubectl(kubectl_bin, kubeconfig, "create", "-f", str(pod_file))

    out = kubectl(kubectl_bin, kubeconfig, "-n", namespace, "describe", "pod", "from-kubectl")

    assert "Name:" in out and "from-kubectl" in out
    assert "Namespace:" in out and namespace in out
    assert "busybox:1.36" in out


def test_kubectl_delete_pod(
    kubectl_bin: str, kubeconfig: Path, pod_file: Path, namespace: str, core: client.CoreV1Api
) -> None:
    kubectl(kubectl_bin, kubeconfig, "create", "-f", str(pod_file))

    out = kubectl(kubectl_bin, kubeconfig, "-n", namespace, "delete", "pod", "from-kubectl")

    assert out.strip() == 'pod "from-kubectl" deleted'
    assert core.list_namespaced_pod(namespace).items == []


def test_kubectl_get_pods_watch_prints_changes(
    kubectl_bin: str, kubeconfig: Path, namespace: str, core: client.CoreV1Api, make_pod
) -> None:
    process = subprocess.Popen(
        [
            kubectl_bin,
            "--kubeconfig",
            str(kubeconfig),
            "-n",
            namespace,
            "get",
            "pods",
            "-w",
            "--request-timeout=20s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    rows: list[list[str]] = []
    try:
        core.create_namespaced_pod(namespace, make_pod("watched"))
        # kubectl lists, then watches from the list's version: the pod shows up either way.
        # Read until it is Running; --request-timeout ends the stream (EOF) if it never is.
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("watched"):
                rows.append(line.split())
                if rows[-1][2] == "Running":
                    break
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)

    assert rows, err
    assert rows[0][0] == "watched"
    assert rows[-1][2] == "Running"


def test_kubectl_create_namespace_sends_protobuf_and_works(
    kubectl_bin: str, kubeconfig: Path, core: client.CoreV1Api, namespace: str
) -> None:
    name = namespace + "-k"

    out = kubectl(kubectl_bin, kubeconfig, "create", "namespace", name)

    assert out.strip() == f"namespace/{name} created"
    assert core.read_namespace(name).status.phase == "Active"
