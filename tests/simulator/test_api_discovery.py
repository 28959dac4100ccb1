"""Discovery and non-resource paths, as kubectl and the official client read them."""

from __future__ import annotations

from kubernetes import client


def test_version_reports_a_kubernetes_version(api_client: client.ApiClient) -> None:
    info = client.VersionApi(api_client).get_code()

    assert info.git_version.startswith("v1.")
    assert info.major == "1"


def test_api_lists_v1(raw) -> None:
    code, body = raw.request("GET", "/api")

    assert code == 200
    assert body["kind"] == "APIVersions"
    assert body["versions"] == ["v1"]


def test_api_v1_describes_pods_with_verbs_and_short_names(raw) -> None:
    code, body = raw.request("GET", "/api/v1")

    resources = {r["name"]: r for r in body["resources"]}
    assert code == 200
    assert body["kind"] == "APIResourceList"
    assert resources["pods"]["namespaced"] is True
    assert resources["pods"]["shortNames"] == ["po"]
    assert {"create", "delete", "get", "list", "patch", "update", "watch"} <= set(
        resources["pods"]["verbs"]
    )
    assert resources["nodes"]["namespaced"] is False
    assert resources["namespaces"]["shortNames"] == ["ns"]
    assert "pods/status" in resources


def test_apis_lists_the_named_groups_served(raw) -> None:
    code, body = raw.request("GET", "/apis")

    assert code == 200
    assert body["kind"] == "APIGroupList"
    groups = {g["name"]: g["preferredVersion"]["version"] for g in body["groups"]}
    assert {"rbac.authorization.k8s.io": "v1", "authorization.k8s.io": "v1",
            "scheduling.k8s.io": "v1"}.items() <= (
        groups.items())


def test_health_endpoints_answer_ok(raw) -> None:
    assert raw.request("GET", "/healthz")[0] == 200
    assert raw.request("GET", "/readyz")[0] == 200


def test_unknown_path_is_a_404_status(raw) -> None:
    code, body = raw.request("GET", "/api/v1/widgets")

    assert code == 404
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["message"] == "the server could not find the requested resource"


def test_unknown_group_path_is_a_404_status(raw) -> None:
    code, body = raw.request("GET", "/apis/apps/v1/deployments")

    assert code == 404
    assert body["kind"] == "Status"


def test_a_write_to_an_unserved_group_is_a_404_naming_the_resource(raw) -> None:
    code, body = raw.request(
        "POST", "/apis/apps/v1/namespaces/default/deployments", {}
    )

    assert code == 404
    assert body["reason"] == "NotFound"
    assert body["details"] == {"group": "apps", "kind": "deployments"}


def test_an_unserved_core_resource_is_a_404_naming_it_and_the_object(raw) -> None:
    code, body = raw.request("DELETE", "/api/v1/namespaces/default/widgets/w1")

    assert code == 404
    assert body["details"] == {"group": "", "kind": "widgets", "name": "w1"}


def test_a_subresource_answers_only_its_own_verbs(raw) -> None:
    code, body = raw.request("GET", "/api/v1/namespaces/default/pods/any/binding")

    assert code == 405
    assert body["reason"] == "MethodNotAllowed"


def test_method_not_allowed_is_a_405_status(raw) -> None:
    code, body = raw.request("POST", "/version", {})

    assert code == 405
    assert body["reason"] == "MethodNotAllowed"
    assert body["code"] == 405
