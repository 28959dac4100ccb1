"""deploy/second-cluster: the worker pool reaching a second cluster. The overlay builds, its
clusters file loads as podfleet's settings, the second cluster's kubeconfig Secret is mounted
into the workers alone, and the second cluster grants each home component exactly the rules
it has at home."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from deploy_checks import ROOT, load_all, require_tool

OVERLAY = ROOT / "deploy" / "second-cluster"
REMOTE = OVERLAY / "remote"


def _build(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([require_tool("kubectl"), "kustomize", str(path)],
                            capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _named(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}"
    return found[0]


def test_the_overlay_mounts_the_second_clusters_kubeconfig_into_the_workers_only() -> None:
    docs = _build(OVERLAY)
    secret_users = [d["metadata"]["name"] for d in docs
                    if any(v.get("secret", {}).get("secretName") == "podfleet-cluster-gpu-east"
                           for v in (d.get("spec", {}).get("template", {}).get("spec", {})
                                     .get("volumes") or []))]
    assert secret_users == ["podfleet-worker"]
    worker = _named(docs, "Deployment", "podfleet-worker")
    container = worker["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PODFLEET_CLUSTERS_FILE"] == "/etc/podfleet/clusters.yaml"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/podfleet/clusters/gpu-east"]["readOnly"] is True
    # the base's settings and signing key still reach the workers
    assert container["envFrom"][0]["configMapRef"]["name"] == "podfleet-settings"


def test_the_clusters_file_loads_as_podfleets_clusters(tmp_path: Path) -> None:
    from podfleet.settings import Settings

    # Given the overlay's clusters file, with gpu-east's kubeconfig where it is mounted
    clusters = _named(_build(OVERLAY), "ConfigMap", "podfleet-clusters")
    document = yaml.safe_load(clusters["data"]["clusters.yaml"])
    gpu_east = next(c for c in document["clusters"] if c["name"] == "gpu-east")
    kubeconfig = tmp_path / "gpu-east.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gpu-east",
        "clusters": [{"name": "gpu-east", "cluster": {"server": "https://gpu-east:6443"}}],
        "users": [{"name": "podfleet", "user": {"token": "t"}}],
        "contexts": [{"name": "gpu-east",
                      "context": {"cluster": "gpu-east", "user": "podfleet"}}]}))
    gpu_east["kubeconfig"] = str(kubeconfig)
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump(document))
    # When podfleet reads it
    settings = Settings.from_env({"PODFLEET_CLUSTERS_FILE": str(path),
                                  "PODFLEET_SIGNING_KEY": "k" * 32})
    # Then both clusters are configured with their own budgets and labels
    assert settings.clusters.names == ("default", "gpu-east")
    spec = settings.clusters.named("gpu-east")
    assert (spec.launch_rate, spec.max_pending_pods) == (20, 200)
    assert dict(spec.labels) == {"region": "us-east", "gpu": "true"}
    assert settings.clusters.named("default").in_cluster


def test_the_second_cluster_grants_each_component_its_home_rules() -> None:
    remote = _build(REMOTE)
    home_worker = load_all(ROOT / "deploy" / "kubernetes" / "role.yaml")[0]
    home_executor = load_all(ROOT / "deploy" / "kubernetes" / "executor-role.yaml")[0]
    assert _named(remote, "Role", "podfleet-remote-worker")["rules"] == home_worker["rules"]
    assert (_named(remote, "Role", "podfleet-remote-executor")["rules"]
            == home_executor["rules"])
    for component in ("worker", "executor"):
        binding = _named(remote, "RoleBinding", f"podfleet-remote-{component}")
        assert binding["roleRef"]["name"] == f"podfleet-remote-{component}"
        assert binding["subjects"] == [{"kind": "ServiceAccount",
                                        "name": f"podfleet-remote-{component}",
                                        "namespace": "podfleet"}]
        token = _named(remote, "Secret", f"podfleet-remote-{component}-token")
        assert token["type"] == "kubernetes.io/service-account-token"
    assert not [d for d in remote if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
