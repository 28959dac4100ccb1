"""OpenAPI documents and server-side field validation: kubectl create/apply with validation on.

kubectl (no --validate=false) reads /openapi/v3, sees that PATCH operations take
`fieldValidation`, and sends `fieldValidation=Strict`; the simulator then refuses unknown
fields as a real API server does. Client-side `kubectl apply` computes its strategic merge
patch from the documents' patch extensions; `--server-side` sends an apply patch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from podfleet.simulator.apiserver.schema import TYPES, unknown_fields


def run_kubectl(kubectl_bin: str, kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl_bin, "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pod_yaml(path: Path, name: str, namespace: str, *, extra: str = "", labels: str = "") -> Path:
    path.write_text(
        f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: {namespace}\n"
        f"{labels}"
        "spec:\n  terminationGracePeriodSeconds: 1\n"
        "  containers:\n  - name: main\n    image: busybox:1.36\n"
        "    env:\n    - name: A\n      value: a\n"
        f"{extra}"
    )
    return path


# ------------------------------------------------------------------ the documents


def test_v3_root_points_at_the_core_group_document(raw) -> None:
    code, root = raw.request("GET", "/openapi/v3")

    assert code == 200
    url = root["paths"]["api/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/api/v1?hash=")
    code, document = raw.request("GET", url)
    assert code == 200
    assert document["openapi"].startswith("3.")


def test_v3_describes_the_served_kinds_with_their_group_version_kind(raw) -> None:
    _, document = raw.request("GET", "/openapi/v3/api/v1")
    schemas = document["components"]["schemas"]

    for kind in ("Pod", "Node", "Namespace", "Event"):
        schema = schemas[f"io.k8s.api.core.v1.{kind}"]
        assert schema["x-kubernetes-group-version-kind"] == [
            {"group": "", "kind": kind, "version": "v1"}
        ]
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "io.k8s.apimachinery.pkg.apis.meta.v1.Status" in schemas


def test_v3_containers_merge_by_name(raw) -> None:
    _, document = raw.request("GET", "/openapi/v3/api/v1")

    containers = document["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"][
        "containers"
    ]

    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}


def test_v3_pod_patch_takes_field_validation_and_strategic_merge(raw) -> None:
    _, document = raw.request("GET", "/openapi/v3/api/v1")

    patch = document["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"]

    assert patch[
        "x-kubernetes-group-version-kind"
    ] == {"group": "", "version": "v1", "kind": "Pod"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    assert "application/strategic-merge-patch+json" in patch["requestBody"]["content"]


def test_every_ref_in_v3_resolves(raw) -> None:
    _, document = raw.request("GET", "/openapi/v3/api/v1")
    schemas = document["components"]["schemas"]
    refs: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if "$ref" in value:
                refs.append(value["$ref"])
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(document)

    assert refs
    assert all(ref.removeprefix("#/components/schemas/") in schemas for ref in refs)


def test_v2_is_served_as_json(raw) -> None:
    code, document = raw.request("GET", "/openapi/v2", headers={"Accept": "application/json"})

    assert code == 200
    assert document["swagger"] == "2.0"
    assert "io.k8s.api.core.v1.Pod" in document["definitions"]
    create = document["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"]
    assert create["parameters"][-1]["schema"] == {"$ref": "#/definitions/io.k8s.api.core.v1.Pod"}


def test_v2_as_protobuf_only_is_406(raw) -> None:
    code, body = raw.request(
        "GET",
        "/openapi/v2",
        headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"},
    )

    assert code == 406
    assert body["kind"] == "Status"


# ------------------------------------------------------------------ field validation


def test_strict_field_validation_refuses_an_unknown_field(raw, namespace: str, make_pod) -> None:
    pod = make_pod("strict")
    pod["spec"]["containers"][0]["bogus"] = 1
    pod["spec"]["nonsense"] = True

    code, body = raw.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods?fieldValidation=Strict", pod
    )

    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
        'unknown field "spec.containers[0].bogus", unknown field "spec.nonsense"'
    )


def test_warn_is_the_default_and_drops_the_field(raw, namespace: str, make_pod) -> None:
    pod = make_pod("warned")
    pod["spec"]["nonsense"] = True
    response = raw.pool.request(
        "POST",
        f"{raw.url}/api/v1/namespaces/{namespace}/pods",
        body=__import__("orjson").dumps(pod),
        headers={**raw.pool.headers, "Content-Type": "application/json"},
    )

    assert response.status == 201
    assert response.headers.get("Warning") == '299 - "unknown field \\"spec.nonsense\\""'
    assert "nonsense" not in response.json()["spec"]


def test_ignore_drops_the_field_silently(raw, namespace: str, make_pod) -> None:
    pod = make_pod("ignored")
    pod["metadata"]["nonsense"] = "x"

    code, body = raw.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods?fieldValidation=Ignore", pod
    )

    assert code == 201
    assert "nonsense" not in body["metadata"]


def test_an_unknown_directive_is_400(raw, namespace: str, make_pod) -> None:
    code, body = raw.request(
        "POST", f"/api/v1/namespaces/{namespace}/pods?fieldValidation=Loose", make_pod("x")
    )

    assert code == 400
    assert "fieldValidation must be one of" in body["message"]


def test_strict_applies_to_patches_too(raw, namespace: str, make_pod, core) -> None:
    core.create_namespaced_pod(namespace, make_pod("patched"))

    code, body = raw.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/patched?fieldValidation=Strict",
        {"metadata": {"labelz": {"a": "b"}}},
        content_type="application/merge-patch+json",
    )

    assert code == 400
    assert 'unknown field "metadata.labelz"' in body["message"]


def test_every_field_the_official_client_models_is_known() -> None:
    # The schema must never refuse a valid pod: compare with the official client's models.
    pairs = [
        ("Pod", client.V1Pod),
        ("PodSpec", client.V1PodSpec),
        ("Container", client.V1Container),
        ("PodStatus", client.V1PodStatus),
        ("ContainerStatus", client.V1ContainerStatus),
        ("ObjectMeta", client.V1ObjectMeta),
        ("Volume", client.V1Volume),
        ("Event", client.CoreV1Event),
        ("NodeStatus", client.V1NodeStatus),
        ("NodeSpec", client.V1NodeSpec),
        ("PodCondition", client.V1PodCondition),
        ("VolumeMount", client.V1VolumeMount),
        ("EnvVar", client.V1EnvVar),
        ("ContainerPort", client.V1ContainerPort),
        ("ResourceRequirements", client.V1ResourceRequirements),
        ("ContainerStateTerminated", client.V1ContainerStateTerminated),
        ("OwnerReference", client.V1OwnerReference),
        ("DeleteOptions", client.V1DeleteOptions),
        ("ListMeta", client.V1ListMeta),
    ]
    missing = {
        name: sorted(set(model.attribute_map.values()) - set(TYPES[name]))
        for name, model in pairs
    }

    assert missing == {name: [] for name, _ in pairs}


def test_a_pod_the_official_client_serialises_has_no_unknown_fields() -> None:
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p", labels={"a": "b"}),
        spec=client.V1PodSpec(
            containers=[
                client.V1Container(
                    name="c",
                    image="i",
                    env=[client.V1EnvVar(name="A", value="1")],
                    resources=client.V1ResourceRequirements(requests={"cpu": "1"}),
                    volume_mounts=[client.V1VolumeMount(name="v", mount_path="/v")],
                )
            ],
            volumes=[client.V1Volume(name="v", empty_dir=client.V1EmptyDirVolumeSource())],
            tolerations=[client.V1Toleration(key="k", operator="Exists")],
        ),
    )
    body = client.ApiClient().sanitize_for_serialization(pod)

    assert unknown_fields("Pod", body) == []


# ------------------------------------------------------------------ kubectl


def test_kubectl_create_validates_without_validate_false(
    kubectl_bin: str, kubeconfig: Path, tmp_path: Path, namespace: str, core
) -> None:
    path = pod_yaml(tmp_path / "pod.yaml", "validated", namespace)

    result = run_kubectl(kubectl_bin, kubeconfig, "create", "-f", str(path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pod/validated created"
    assert core.read_namespaced_pod("validated", namespace).spec.containers[0].image == (
        "busybox:1.36"
    )


def test_kubectl_create_refuses_an_unknown_field(
    kubectl_bin: str, kubeconfig: Path, tmp_path: Path, namespace: str, core
) -> None:
    typo = "    imagePullPolicyy: Always\n"
    path = pod_yaml(tmp_path / "pod.yaml", "typo", namespace, extra=typo)

    result = run_kubectl(kubectl_bin, kubeconfig, "create", "-f", str(path))

    assert result.returncode != 0
    assert "Error from server (BadRequest)" in result.stderr
    assert 'unknown field "spec.containers[0].imagePullPolicyy"' in result.stderr
    with pytest.raises(client.ApiException):
        core.read_namespaced_pod("typo", namespace)


def test_kubectl_apply_creates_then_patches_by_strategic_merge(
    kubectl_bin: str, kubeconfig: Path, tmp_path: Path, namespace: str, core
) -> None:
    path = pod_yaml(tmp_path / "pod.yaml", "applied", namespace)
    first = run_kubectl(kubectl_bin, kubeconfig, "apply", "-f", str(path))
    pod_yaml(path, "applied", namespace, labels="  labels:\n    tier: web\n")

    second = run_kubectl(kubectl_bin, kubeconfig, "apply", "-f", str(path))

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "pod/applied created"
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "pod/applied configured"
    pod = core.read_namespaced_pod("applied", namespace)
    assert pod.metadata.labels == {"tier": "web"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in pod.metadata.annotations
    assert [(e.name, e.value) for e in pod.spec.containers[0].env] == [("A", "a")]


def test_kubectl_apply_server_side_creates_and_updates(
    kubectl_bin: str, kubeconfig: Path, tmp_path: Path, namespace: str, core
) -> None:
    path = pod_yaml(tmp_path / "pod.yaml", "ssa", namespace)
    first = run_kubectl(kubectl_bin, kubeconfig, "apply", "--server-side", "-f", str(path))
    pod_yaml(path, "ssa", namespace, labels="  labels:\n    tier: db\n")

    second = run_kubectl(kubectl_bin, kubeconfig, "apply", "--server-side", "-f", str(path))

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "pod/ssa serverside-applied"
    assert second.returncode == 0, second.stderr
    assert core.read_namespaced_pod("ssa", namespace).metadata.labels == {"tier": "db"}


def test_kubectl_apply_server_side_refuses_an_unknown_field(
    kubectl_bin: str, kubeconfig: Path, tmp_path: Path, namespace: str
) -> None:
    path = pod_yaml(tmp_path / "pod.yaml", "ssa-typo", namespace, extra="    portz: []\n")

    result = run_kubectl(kubectl_bin, kubeconfig, "apply", "--server-side", "-f", str(path))

    assert result.returncode != 0
    assert 'unknown field "spec.containers[0].portz"' in result.stderr


def test_an_apply_patch_without_a_field_manager_is_refused(raw, namespace: str, make_pod) -> None:
    code, body = raw.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/nomanager",
        make_pod("nomanager"),
        content_type="application/apply-patch+yaml",
    )

    assert code == 422
    assert "fieldManager" in body["message"]


def test_kubectl_explain_reads_the_v3_document(kubectl_bin: str, kubeconfig: Path) -> None:
    result = run_kubectl(kubectl_bin, kubeconfig, "explain", "pod.spec.containers.env")

    assert result.returncode == 0, result.stderr
    assert "FIELD: env <[]EnvVar>" in result.stdout
    assert "valueFrom" in result.stdout
