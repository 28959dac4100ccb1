"""deploy/kubernetes: schema-valid objects, least-privilege RBAC, scrapeable workers.

Validated without a cluster: every object is parsed by the official client's models (the
Kubernetes OpenAPI schema: unknown fields and wrong types are errors), `kubectl kustomize`
builds the set, and `kubectl create --dry-run=client` accepts each file against a
discovery-only stub server.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_checks import ROOT, load_all, require_tool
from discovery_stub import DiscoveryStub

MANIFESTS = ROOT / "deploy" / "kubernetes"
FILES = sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
MODELS = {"Namespace": "V1Namespace", "ServiceAccount": "V1ServiceAccount", "Role": "V1Role",
          "RoleBinding": "V1RoleBinding", "ConfigMap": "V1ConfigMap",
          "Deployment": "V1Deployment", "Service": "V1Service"}


def _objects() -> list[dict[str, Any]]:
    return [doc for path in FILES for doc in load_all(path)]


def _one(kind: str) -> dict[str, Any]:
    found = [doc for doc in _objects() if doc["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


@pytest.fixture
def stub_kubeconfig(tmp_path: Path) -> Iterator[Path]:
    stub = DiscoveryStub()
    path = tmp_path / "kubeconfig"
    path.write_text(stub.kubeconfig())
    yield path
    stub.close()


@pytest.mark.parametrize("doc", [d for d in _objects() if d["kind"] in MODELS],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_object_matches_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    from kubernetes import client

    getattr(client, MODELS[doc["kind"]]).model_validate(doc)


def test_schema_check_rejects_an_unknown_field() -> None:
    # The check above must be able to fail: a misspelt field is an error
    from kubernetes import client

    deployment = _one("Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 3}}
    with pytest.raises(ValueError):
        client.V1Deployment.model_validate(broken)


def test_role_grants_exactly_the_pod_verbs_podfleet_uses() -> None:
    role = _one("Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                              "verbs": ["create", "get", "list", "watch", "delete", "patch"]}]
    assert not [doc for doc in _objects() if doc["kind"] in ("ClusterRole",
                                                             "ClusterRoleBinding")]


def test_rolebinding_gives_the_role_to_the_workers_service_account() -> None:
    binding, role, account = _one("RoleBinding"), _one("Role"), _one("ServiceAccount")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]


def test_workers_take_the_signing_key_from_a_secret_and_settings_from_the_configmap() -> None:
    container = _one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["PODFLEET_SIGNING_KEY"]["valueFrom"]["secretKeyRef"]["name"]
    assert "value" not in env["PODFLEET_SIGNING_KEY"]
    config = _one("ConfigMap")
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert "PODFLEET_SIGNING_KEY" not in config["data"]
    assert config["data"]["PODFLEET_IN_CLUSTER"] == "true"


def test_workers_run_as_non_root() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_workers_are_scrapeable_by_annotation_and_service_monitor() -> None:
    deployment, service, monitor = _one("Deployment"), _one("Service"), _one("ServiceMonitor")
    template = deployment["spec"]["template"]
    port = template["spec"]["containers"][0]["ports"][0]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    # The Service selects the worker pods and names the metrics port the monitor scrapes
    labels = template["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"][
        "labels"].items()
    service_ports = {p["name"] for p in service["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= service_ports
    # The multiprocess directory is a private emptyDir, mounted where the settings say
    mounts = {m["name"]: m["mountPath"] for m in template["spec"]["containers"][0][
        "volumeMounts"]}
    assert mounts["metrics"] == _one("ConfigMap")["data"]["PODFLEET_METRICS_DIR"]


def test_kustomize_builds_every_manifest() -> None:
    result = subprocess.run([require_tool("kubectl"), "kustomize", str(MANIFESTS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    kinds = sorted(doc["kind"] for doc in load_all_text(result.stdout))
    assert kinds == sorted(doc["kind"] for doc in _objects())


def load_all_text(text: str) -> list[dict[str, Any]]:
    import yaml

    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_kubectl_client_dry_run_accepts_the_file(path: Path, stub_kubeconfig: Path) -> None:
    result = subprocess.run(
        [require_tool("kubectl"), "--kubeconfig", str(stub_kubeconfig), "create",
         "--dry-run=client", "--validate=false", "-o", "json", "-f", str(path)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
