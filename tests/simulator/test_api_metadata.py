"""`as=PartialObjectMetadata(List)`: metadata-only answers, as the DynamicClient asks for them."""

from __future__ import annotations

from typing import Any
from typing import Any as Raw  # the Raw fixture of conftest.py

import orjson
import pytest
from kubernetes import client, dynamic

LIST_V1 = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
OBJECT_V1 = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def _pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def test_a_list_answers_partial_object_metadata_list(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p", labels={"app": "x"}))

    status, body = raw.request("GET", _pods(namespace), headers={"Accept": LIST_V1})

    assert (status, body["kind"], body["apiVersion"]) == (
        200,
        "PartialObjectMetadataList",
        "meta.k8s.io/v1",
    )
    assert body["metadata"]["resourceVersion"]
    [item] = body["items"]
    assert set(item) == {"kind", "apiVersion", "metadata"}
    assert (item["kind"], item["metadata"]["name"], item["metadata"]["labels"]) == (
        "PartialObjectMetadata",
        "p",
        {"app": "x"},
    )


def test_v1beta1_is_answered_in_v1beta1(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    _, body = raw.request(
        "GET", _pods(namespace), headers={"Accept": LIST_V1.replace("v=v1", "v=v1beta1")}
    )

    assert body["apiVersion"] == "meta.k8s.io/v1beta1"


def test_a_get_answers_partial_object_metadata(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    status, body = raw.request("GET", _pods(namespace) + "/p", headers={"Accept": OBJECT_V1})

    assert (status, body["kind"], set(body)) == (
        200,
        "PartialObjectMetadata",
        {"kind", "apiVersion", "metadata"},
    )


def test_paging_keeps_the_continue_token(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    for name in ("a", "b", "c"):
        core.create_namespaced_pod(namespace, make_pod(name))

    _, first = raw.request("GET", _pods(namespace) + "?limit=2", headers={"Accept": LIST_V1})
    token = first["metadata"]["continue"]
    _, second = raw.request(
        "GET", _pods(namespace) + f"?limit=2&continue={token}", headers={"Accept": LIST_V1}
    )

    names = [i["metadata"]["name"] for i in first["items"] + second["items"]]
    assert names == ["a", "b", "c"]


def test_the_first_acceptable_alternative_wins(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    _, metadata = raw.request(
        "GET", _pods(namespace), headers={"Accept": f"{LIST_V1},application/json"}
    )
    _, full = raw.request(
        "GET", _pods(namespace), headers={"Accept": f"application/json,{LIST_V1}"}
    )

    assert (metadata["kind"], full["kind"]) == ("PartialObjectMetadataList", "PodList")


def test_a_list_asked_only_for_a_single_object_is_not_acceptable(
    raw: Raw, namespace: str
) -> None:
    status, body = raw.request("GET", _pods(namespace), headers={"Accept": OBJECT_V1})

    assert (status, body["reason"]) == (406, "NotAcceptable")


def test_a_watch_sends_partial_object_metadata_events(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    response = raw.pool.request(
        "GET",
        raw.url + _pods(namespace) + "?watch=1&timeoutSeconds=1",
        headers={**raw.pool.headers, "Accept": OBJECT_V1},
        retries=False,
    )
    events = [orjson.loads(line) for line in response.data.splitlines() if line.strip()]

    assert response.status == 200, response.data
    assert events and {e["object"]["kind"] for e in events} == {"PartialObjectMetadata"}
    assert "spec" not in events[0]["object"]


def test_the_dynamic_client_lists_pod_metadata_as_airflow_adoption_does(
    api_client: client.ApiClient, namespace: str, core: client.CoreV1Api, make_pod: Any
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p", labels={"airflow-worker": "1"}))
    pods = dynamic.DynamicClient(api_client).resources.get(api_version="v1", kind="Pod")

    listed = pods.get(
        namespace=namespace,
        label_selector="airflow-worker",
        header_params={"Accept": LIST_V1},
    )

    assert listed.kind == "PartialObjectMetadataList"
    assert [item.metadata.name for item in listed.items] == ["p"]
    assert "spec" not in listed.items[0].to_dict()


@pytest.mark.parametrize("accept", ["application/json", "*/*"])
def test_plain_json_still_gets_full_objects(
    raw: Raw, namespace: str, core: client.CoreV1Api, make_pod: Any, accept: str
) -> None:
    core.create_namespaced_pod(namespace, make_pod("p"))

    _, body = raw.request("GET", _pods(namespace), headers={"Accept": accept})

    assert body["kind"] == "PodList" and "spec" in body["items"][0]
