"""Every error a real API server sends for bad input, and that bad input hurts no one else."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from podfleet.simulator.config import SimulatorConfig
from podfleet.simulator.server import start_simulator


def _status(exc: ApiException) -> dict:
    import json

    return json.loads(exc.body)


def test_missing_image_is_422_with_a_cause(core: client.CoreV1Api, namespace: str) -> None:
    body = {"metadata": {"name": "noimage"}, "spec": {"containers": [{"name": "main"}]}}

    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, body)

    status = _status(info.value)
    assert info.value.status == 422
    assert status["kind"] == "Status"
    assert status["apiVersion"] == "v1"
    assert status["status"] == "Failure"
    assert status["reason"] == "Invalid"
    assert status["message"] == 'Pod "noimage" is invalid: spec.containers[0].image: Required value'
    assert status["details"] == {
        "name": "noimage",
        "kind": "Pod",
        "causes": [
            {
                "reason": "FieldValueRequired",
                "message": "Required value",
                "field": "spec.containers[0].image",
            }
        ],
    }
    assert status["code"] == 422


def test_several_problems_are_listed_in_brackets(core: client.CoreV1Api, namespace: str) -> None:
    body = {
        "metadata": {"name": "Bad_Name", "labels": {"ok": "not valid!"}},
        "spec": {"containers": []},
    }

    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, body)

    status = _status(info.value)
    fields = [c["field"] for c in status["details"]["causes"]]
    assert info.value.status == 422
    assert status["message"].startswith('Pod "Bad_Name" is invalid: [metadata.name: Invalid value')
    assert fields == ["metadata.name", "metadata.labels", "spec.containers"]


def test_name_longer_than_253_is_invalid(core: client.CoreV1Api, namespace: str, make_pod) -> None:
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, make_pod("a" * 254))

    assert info.value.status == 422
    assert "must be no more than 253 characters" in _status(info.value)["message"]


def test_label_value_longer_than_63_is_invalid(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, make_pod("p", labels={"k": "v" * 64}))

    cause = _status(info.value)["details"]["causes"][0]
    assert info.value.status == 422
    assert cause["field"] == "metadata.labels"
    assert "must be no more than 63 characters" in cause["message"]


def test_bad_quantity_is_invalid(core: client.CoreV1Api, namespace: str, make_pod) -> None:
    body = make_pod("q")
    body["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "lots"}}

    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, body)

    cause = _status(info.value)["details"]["causes"][0]
    assert info.value.status == 422
    assert cause["field"] == "spec.containers[0].resources.requests[cpu]"
    assert "quantities must match the regular expression" in cause["message"]


def test_container_name_must_be_a_dns_label(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    body = make_pod("cn")
    body["spec"]["containers"][0]["name"] = "Main_Container"

    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, body)

    cause = _status(info.value)["details"]["causes"][0]
    assert cause["field"] == "spec.containers[0].name"
    assert cause["reason"] == "FieldValueInvalid"


def test_missing_name_and_generate_name_is_invalid(raw, namespace: str, make_pod) -> None:
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", make_pod())

    assert code == 422
    assert body["details"]["causes"][0] == {
        "reason": "FieldValueRequired",
        "message": "Required value: name or generateName is required",
        "field": "metadata.name",
    }


def test_existing_name_is_409_already_exists(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    core.create_namespaced_pod(namespace, make_pod("twice"))

    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, make_pod("twice"))

    status = _status(info.value)
    assert info.value.status == 409
    assert status["reason"] == "AlreadyExists"
    assert status["message"] == 'pods "twice" already exists'
    assert status["details"] == {"name": "twice", "kind": "pods"}


def test_missing_pod_is_404_not_found(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as info:
        core.read_namespaced_pod("ghost", namespace)

    status = _status(info.value)
    assert info.value.status == 404
    assert status["reason"] == "NotFound"
    assert status["message"] == 'pods "ghost" not found'
    assert status["details"] == {"name": "ghost", "kind": "pods"}


def test_create_in_unknown_namespace_is_404(core: client.CoreV1Api, make_pod) -> None:
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod("no-such-ns", make_pod("p"))

    status = _status(info.value)
    assert info.value.status == 404
    assert status["message"] == 'namespaces "no-such-ns" not found'
    assert status["details"] == {"name": "no-such-ns", "kind": "namespaces"}


def test_list_in_unknown_namespace_is_empty_like_a_real_server(core: client.CoreV1Api) -> None:
    pods = core.list_namespaced_pod("no-such-ns")

    assert pods.items == []


def test_malformed_json_is_400_bad_request(raw, namespace: str) -> None:
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", b'{"metadata": ')

    assert code == 400
    assert body["kind"] == "Status"
    assert body["reason"] == "BadRequest"
    assert "json parse error" in body["message"]


def test_body_that_is_not_an_object_is_400(raw, namespace: str) -> None:
    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", b"[1, 2]")

    assert code == 400
    assert body["reason"] == "BadRequest"


def test_wrong_kind_is_400(raw, namespace: str, make_pod) -> None:
    service = make_pod("svc")
    service["kind"] = "Service"

    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", service)

    assert code == 400
    assert body["reason"] == "BadRequest"
    assert "Service" in body["message"]


def test_wrong_api_version_is_400(raw, namespace: str, make_pod) -> None:
    pod = make_pod("apps")
    pod["apiVersion"] = "apps/v1"

    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    assert code == 400
    assert body["message"] == (
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    )


def test_body_over_3_mib_is_413(raw, namespace: str, make_pod) -> None:
    pod = make_pod("huge", annotations={"blob": "x" * (3 * 1024 * 1024 + 10)})

    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    assert code == 413
    assert body["reason"] == "RequestEntityTooLarge"
    assert body["message"] == "Request entity too large: limit is 3145728"


def test_annotations_over_256_kib_are_invalid(raw, namespace: str, make_pod) -> None:
    pod = make_pod("bigann", annotations={"blob": "x" * (256 * 1024 + 1)})

    code, body = raw.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)

    assert code == 422
    assert body["details"]["causes"][0]["reason"] == "FieldValueTooLong"


def test_invalid_label_selector_is_400(raw, namespace: str) -> None:
    code, body = raw.request(
        "GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=a%20in%20(b"
    )

    assert code == 400
    assert body["reason"] == "BadRequest"
    assert body["message"].startswith("unable to parse requirement")


def test_unsupported_field_selector_is_400(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(ApiException) as info:
        core.list_namespaced_pod(namespace, field_selector="spec.color=blue")

    assert info.value.status == 400
    assert _status(info.value)["message"] == "field label not supported: spec.color"


def test_stale_resource_version_on_update_is_409_conflict(
    core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    created = core.create_namespaced_pod(namespace, make_pod("stale"))
    core.patch_namespaced_pod("stale", namespace, {"metadata": {"labels": {"a": "1"}}})
    body = make_pod("stale", resourceVersion=created.metadata.resource_version)

    with pytest.raises(ApiException) as info:
        core.replace_namespaced_pod("stale", namespace, body)

    assert info.value.status == 409
    assert _status(info.value)["reason"] == "Conflict"


def test_server_keeps_serving_after_bad_input(
    raw, core: client.CoreV1Api, namespace: str, make_pod
) -> None:
    path = f"/api/v1/namespaces/{namespace}/pods"
    raw.request("POST", path, b"\x00\xff not json")
    raw.request("POST", path, b"{" * 10000)
    raw.request("GET", path + "?labelSelector=!!!")
    raw.request("DELETE", "/api/v1/nothing/here")

    created = core.create_namespaced_pod(namespace, make_pod("after"))

    assert created.metadata.name == "after"
    assert [p.metadata.name for p in core.list_namespaced_pod(namespace).items] == ["after"]


def test_token_is_required_when_configured(make_pod) -> None:
    with start_simulator(SimulatorConfig(token="s3cret")) as sim:
        import urllib3

        pool = urllib3.PoolManager(ca_certs=sim.ca_file)
        anonymous = pool.request("GET", sim.url + "/api/v1/pods")
        api = sim.api_client()
        try:
            pods = client.CoreV1Api(api).list_pod_for_all_namespaces()
        finally:
            api.close()

    assert anonymous.status == 401
    assert anonymous.json()["reason"] == "Unauthorized"
    assert pods.items == []


def test_protobuf_pod_body_is_415(raw, namespace: str) -> None:
    code, body = raw.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/pods",
        b"k8s\x00\n\t\n\x02v1\x12\x03Pod\x12\x00",
        content_type="application/vnd.kubernetes.protobuf",
    )

    assert code == 415
    assert body["reason"] == "UnsupportedMediaType"
