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
ALL_NAMESPACES = ROOT / "deploy" / "all-namespaces"
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


def _named(kind: str, name: str, docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    found = [d for d in (docs if docs is not None else _objects())
             if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


#: Kubernetes authorises a pod's log (pods/log) apart from the pod: both read logs.
LOG_RULE = {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}
# The workers also list resourcequotas: a launch parked on a full quota waits for room.
WORKER_RULES = [{"apiGroups": [""], "resources": ["pods"],
                 "verbs": ["create", "get", "list", "watch", "deletecollection"]}, LOG_RULE,
                {"apiGroups": [""], "resources": ["resourcequotas"], "verbs": ["list"]}]
EXECUTOR_RULES = [{"apiGroups": [""], "resources": ["pods"],
                   "verbs": ["get", "list", "patch", "delete"]}, LOG_RULE]


def test_workers_role_grants_exactly_the_pod_verbs_workers_use() -> None:
    # No patch: only the executor relabels pods (adoption)
    assert _named("Role", "podfleet-worker")["rules"] == WORKER_RULES


def test_executor_role_grants_exactly_the_pod_verbs_the_executor_uses() -> None:
    # No create and no watch: the workers launch and watch
    assert _named("Role", "podfleet-executor")["rules"] == EXECUTOR_RULES


def test_the_base_grants_nothing_cluster_wide() -> None:
    assert not [doc for doc in _objects() if doc["kind"] in ("ClusterRole",
                                                             "ClusterRoleBinding")]


@pytest.mark.parametrize("component", ["worker", "executor"])
def test_each_rolebinding_gives_its_role_to_its_own_service_account(component: str) -> None:
    name = f"podfleet-{component}"
    binding, account = _named("RoleBinding", name), _named("ServiceAccount", name)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": _named("Role", name)["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name,
                                    "namespace": account["metadata"]["namespace"]}]


def test_the_workers_deployment_runs_as_the_workers_service_account() -> None:
    pod = _one("Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "podfleet-worker"


def _build(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([require_tool("kubectl"), "kustomize", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return load_all_text(result.stdout)


def test_all_namespaces_overlay_grants_the_same_pod_rights_cluster_wide() -> None:
    docs = _build(ALL_NAMESPACES)
    assert _named("ClusterRole", "podfleet-worker", docs)["rules"] == WORKER_RULES
    assert _named("ClusterRole", "podfleet-executor", docs)["rules"] == EXECUTOR_RULES
    for component in ("worker", "executor"):
        binding = _named("ClusterRoleBinding", f"podfleet-{component}", docs)
        assert binding["roleRef"]["kind"] == "ClusterRole"
        assert binding["subjects"] == [{"kind": "ServiceAccount",
                                        "name": f"podfleet-{component}",
                                        "namespace": "podfleet"}]


def test_all_namespaces_overlay_makes_the_watcher_watch_every_namespace() -> None:
    config = _named("ConfigMap", "podfleet-settings", _build(ALL_NAMESPACES))
    assert config["data"]["PODFLEET_WATCH_NAMESPACES"] == "*"


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
    kinds = sorted(doc["kind"] for doc in _build(MANIFESTS))
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
