"""RBAC in the simulator: ServiceAccount tokens are authorised by Roles, ClusterRoles and
their bindings as a real API server authorises them; the admin token stays unrestricted."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import Raw, pod_body
from kubernetes import client

from podfleet.simulator.kubeconfig import write_kubeconfig
from podfleet.simulator.server import ThreadSimulator

RBAC = "/apis/rbac.authorization.k8s.io/v1"


def rule(resources: list[str], verbs: list[str], **more: Any) -> dict[str, Any]:
    return {"apiGroups": [""], "resources": resources, "verbs": verbs, **more}


def service_account(raw: Raw, namespace: str, name: str = "robot") -> str:
    """A new ServiceAccount's token (minted through the TokenRequest subresource)."""
    code, _ = raw.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts",
                          {"metadata": {"name": name}})
    assert code == 201
    code, answer = raw.request(
        "POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", {})
    assert code == 201, answer
    token: str = answer["status"]["token"]
    return token


def grant(raw: Raw, namespace: str, rules: list[dict[str, Any]], *, cluster: bool = False,
          account: str = "robot", name: str = "grant") -> None:
    """A Role (or ClusterRole) with `rules`, bound in `namespace` to the ServiceAccount."""
    role_kind = "ClusterRole" if cluster else "Role"
    role_name = f"{name}-{namespace}" if cluster else name
    roles = f"{RBAC}/clusterroles" if cluster else f"{RBAC}/namespaces/{namespace}/roles"
    code, answer = raw.request("POST", roles, {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": role_kind,
        "metadata": {"name": role_name}, "rules": rules})
    assert code == 201, answer
    code, answer = raw.request("POST", f"{RBAC}/namespaces/{namespace}/rolebindings", {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                    "name": role_name},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
    })
    assert code == 201, answer


def as_user(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_role_allows_the_verbs_it_names(raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods"], ["create", "list"])])

    created, _ = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod_body("p"),
                             headers=as_user(token))
    listed, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                            headers=as_user(token))

    assert (created, listed) == (201, 200)


def test_a_verb_the_role_lacks_is_forbidden_with_the_api_servers_message(
        raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods"], ["list"])])

    code, status = raw.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/p",
                               headers=as_user(token))

    assert code == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        f'pods "p" is forbidden: User "system:serviceaccount:{namespace}:robot" cannot '
        f'delete resource "pods" in API group "" in the namespace "{namespace}"')
    assert status["details"] == {"name": "p", "kind": "pods"}


def test_a_subresource_needs_a_rule_of_its_own(raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods"], ["get", "create"])])
    raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod_body("p"))

    got, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/p",
                         headers=as_user(token))
    code, status = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/p/log",
                               headers=as_user(token))

    assert got == 200
    assert code == 403
    assert status["message"] == (
        f'pods "p" is forbidden: User "system:serviceaccount:{namespace}:robot" cannot get '
        f'resource "pods/log" in API group "" in the namespace "{namespace}"')


def test_a_pods_log_rule_allows_reading_the_log(raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods/log"], ["get"])])
    raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod_body("p"))

    code, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/p/log",
                          headers=as_user(token))

    # 200 with the log, or 400 while the container is still being created: not 403
    assert code in (200, 400)


def test_resource_names_limit_a_rule_to_the_objects_named(raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods"], ["get", "list"], resourceNames=["mine"])])
    for name in ("mine", "other"):
        raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod_body(name))

    mine, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/mine",
                          headers=as_user(token))
    other, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/other",
                           headers=as_user(token))
    listed, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                            headers=as_user(token))

    assert (mine, other, listed) == (200, 403, 403)


def test_a_clusterrole_bound_by_a_rolebinding_grants_in_that_namespace_only(
        raw: Raw, namespace: str, core: client.CoreV1Api) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods"], ["list"])], cluster=True)
    elsewhere = f"{namespace}-b"
    core.create_namespace({"metadata": {"name": elsewhere}})

    here, _ = raw.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                          headers=as_user(token))
    there, _ = raw.request("GET", f"/api/v1/namespaces/{elsewhere}/pods",
                           headers=as_user(token))
    everywhere, status = raw.request("GET", "/api/v1/pods", headers=as_user(token))

    assert (here, there, everywhere) == (200, 403, 403)
    assert status["message"].endswith('cannot list resource "pods" in API group "" at the '
                                      "cluster scope")


def test_a_clusterrolebinding_grants_in_every_namespace(raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)
    role = f"lister-{namespace}"
    raw.request("POST", f"{RBAC}/clusterroles",
                {"metadata": {"name": role}, "rules": [rule(["pods"], ["list"])]})
    code, _ = raw.request("POST", f"{RBAC}/clusterrolebindings", {
        "metadata": {"name": role},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": namespace}]})
    assert code == 201

    everywhere, _ = raw.request("GET", "/api/v1/pods", headers=as_user(token))

    assert everywhere == 200


def test_discovery_is_open_to_every_service_account(raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)

    answers = [raw.request("GET", path, headers=as_user(token))[0]
               for path in ("/version", "/api", "/api/v1", "/apis", RBAC)]
    forbidden, status = raw.request("GET", "/metrics", headers=as_user(token))

    assert answers == [200] * 5
    assert forbidden == 403
    assert status["message"] == (
        f'forbidden: User "system:serviceaccount:{namespace}:robot" cannot get path "/metrics"')


def test_a_deleted_service_accounts_token_is_unauthorized(raw: Raw, namespace: str) -> None:
    token = service_account(raw, namespace)
    raw.request("DELETE", f"/api/v1/namespaces/{namespace}/serviceaccounts/robot")

    code, status = raw.request("GET", "/version", headers=as_user(token))

    assert (code, status["reason"]) == (401, "Unauthorized")


def test_the_admin_token_is_not_restricted(raw: Raw, namespace: str) -> None:
    service_account(raw, namespace)

    code, _ = raw.request("GET", "/api/v1/pods")

    assert code == 200


def test_a_binding_cannot_change_its_role(raw: Raw, namespace: str) -> None:
    service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods"], ["list"])])
    path = f"{RBAC}/namespaces/{namespace}/rolebindings/grant"

    code, status = raw.request(
        "PATCH", path, {"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                    "name": "other"}},
        content_type="application/merge-patch+json")

    assert code == 422
    assert "cannot change roleRef" in status["message"]


def test_the_audit_counts_each_decision(raw: Raw, namespace: str,
                                        sim: ThreadSimulator) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods"], ["list"])])
    user = f"system:serviceaccount:{namespace}:robot"

    for _ in range(2):
        raw.request("GET", f"/api/v1/namespaces/{namespace}/pods", headers=as_user(token))
    raw.request("GET", f"/api/v1/namespaces/{namespace}/pods/x/log", headers=as_user(token))

    mine = {(d.request.verb, d.request.resource_name, d.allowed): d.count
            for d in sim.admin.authorization() if d.request.user == user}
    assert mine == {("list", "pods", True): 2, ("get", "pods/log", False): 1}


@pytest.mark.parametrize(("args", "answer"), [
    (["get", "pods", "--subresource=log"], "yes"),
    (["delete", "pods"], "no"),
])
def test_kubectl_auth_can_i_answers_for_a_service_account(
        raw: Raw, namespace: str, sim: ThreadSimulator, kubectl_bin: str, tmp_path: Path,
        args: list[str], answer: str) -> None:
    token = service_account(raw, namespace)
    grant(raw, namespace, [rule(["pods/log"], ["get"])])
    ca_data = sim.config.tls.ca_data() if sim.tls else None
    kubeconfig = write_kubeconfig(tmp_path / "robot", sim.url, token=token, ca_data=ca_data)

    result = subprocess.run(
        [kubectl_bin, "--kubeconfig", str(kubeconfig), "auth", "can-i", *args,
         "-n", namespace], capture_output=True, text=True, timeout=60, check=False)

    assert result.stdout.strip() == answer, result.stderr
    assert result.returncode == (0 if answer == "yes" else 1)
