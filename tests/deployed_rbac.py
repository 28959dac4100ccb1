"""deploy/'s RBAC on a simulator: the ServiceAccounts, Roles, ClusterRoles and bindings a
kustomization builds, applied as a cluster admin would, with a token and a kubeconfig per
ServiceAccount, and what each ServiceAccount's roles grant, to compare with what it used.

The objects are built by `kubectl kustomize` (overlays included) and moved to the test's
namespace as a kustomization's `namespace:` would; cluster-scoped objects get the namespace as
a name suffix (as `nameSuffix:` would) so tests sharing a simulator do not collide.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, utils
from service_checks import require_tool

from podfleet.simulator.admin import AccessDecision
from podfleet.simulator.kubeconfig import write_kubeconfig
from podfleet.simulator.server import RunningSimulator

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "deploy" / "kubernetes"
ALL_NAMESPACES = ROOT / "deploy" / "all-namespaces"
#: The namespace deploy/ puts everything in.
DEPLOY_NAMESPACE = "podfleet"
RBAC_KINDS = ("ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")
_CLUSTER_SCOPED = ("ClusterRole", "ClusterRoleBinding")


@dataclass(frozen=True, order=True)
class Grant:
    """One verb on one resource (`pods/log` for a subresource) in one API group."""

    verb: str
    api_group: str
    resource: str

    def __str__(self) -> str:
        group = self.api_group or "core"
        return f"{self.verb} {self.resource} ({group})"


@dataclass(frozen=True)
class Identity:
    """A ServiceAccount of deploy/, ready to run a component as."""

    name: str
    namespace: str
    token: str
    kubeconfig: Path
    grants: frozenset[Grant]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    def denied(self, decisions: list[AccessDecision]) -> list[AccessDecision]:
        """Its requests RBAC refused."""
        return [d for d in decisions if d.request.user == self.user and not d.allowed]

    def unused(self, decisions: list[AccessDecision]) -> list[Grant]:
        """What its roles grant that none of its allowed requests used: too broad."""
        used = {Grant(d.request.verb, d.request.api_group, d.request.resource_name)
                for d in decisions
                if d.request.user == self.user and d.allowed and not d.request.path}
        return sorted(self.grants - used)


def built(kustomization: Path) -> list[dict[str, Any]]:
    """The RBAC objects `kubectl kustomize` builds from a kustomization directory."""
    result = subprocess.run([require_tool("kubectl"), "kustomize", str(kustomization)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout)
            if doc and doc.get("kind") in RBAC_KINDS]


def moved(docs: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """`docs` in `namespace` instead of deploy/'s (cluster-scoped names suffixed with it)."""
    suffix = f"-{namespace}"
    out = []
    for doc in docs:
        doc = yaml.safe_load(yaml.safe_dump(doc))  # a deep copy
        meta = doc["metadata"]
        if doc["kind"] in _CLUSTER_SCOPED:
            meta["name"] += suffix
        else:
            meta["namespace"] = namespace
        ref = doc.get("roleRef")
        if ref and ref["kind"] == "ClusterRole":
            ref["name"] += suffix
        for subject in doc.get("subjects") or ():
            if subject.get("namespace") == DEPLOY_NAMESPACE:
                subject["namespace"] = namespace
        out.append(doc)
    return out


def grants_of(account: str, namespace: str, docs: list[dict[str, Any]]) -> frozenset[Grant]:
    """Every (verb, group, resource) the bindings in `docs` grant the ServiceAccount."""
    roles = {(d["kind"], d["metadata"]["name"]): d for d in docs
             if d["kind"] in ("Role", "ClusterRole")}
    found: set[Grant] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account
                   and s.get("namespace", namespace) == namespace
                   for s in binding.get("subjects") or ()):
            continue
        ref = binding["roleRef"]
        for rule in roles[(ref["kind"], ref["name"])].get("rules") or ():
            for part in ("verbs", "apiGroups", "resources"):
                assert "*" not in rule.get(part, ()), f"a wildcard in {ref['name']}: {rule}"
            found.update(Grant(verb, group, resource) for verb in rule["verbs"]
                         for group in rule["apiGroups"] for resource in rule["resources"])
    return frozenset(found)


def apply_deploy_rbac(sim: RunningSimulator, namespace: str, workdir: Path,
                      kustomization: Path = BASE) -> dict[str, Identity]:
    """Apply `kustomization`'s RBAC objects in `namespace` (which must exist) as the admin;
    returns each of its ServiceAccounts with a fresh token and a kubeconfig, by name."""
    docs = moved(built(kustomization), namespace)
    api = sim.api_client()
    try:
        for doc in docs:
            utils.create_from_dict(api, doc)
        core = client.CoreV1Api(api)
        identities = {}
        for doc in docs:
            if doc["kind"] != "ServiceAccount":
                continue
            name = doc["metadata"]["name"]
            answer = core.create_namespaced_service_account_token(
                name, namespace, {"spec": {"audiences": []}})
            token = answer.status.token
            ca_data = sim.config.tls.ca_data() if sim.tls else None
            path = write_kubeconfig(workdir / f"{name}.kubeconfig", sim.url, token=token,
                                    name=name, ca_data=ca_data)
            identities[name] = Identity(name, namespace, token, path,
                                        grants_of(name, namespace, docs))
        return identities
    finally:
        api.close()
