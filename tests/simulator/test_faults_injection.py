"""Fault injection, set through the admin API and seen through the official client."""

from __future__ import annotations

import contextlib
import http.client
import time
from collections.abc import Iterator

import orjson
import pytest
import urllib3
from cluster_support import fast_simulator, pod_body, unique, wait_for
from kubernetes import client, watch

from podfleet.simulator.admin import AdminClient
from podfleet.simulator.cluster import fate
from podfleet.simulator.faults import FaultConfig, VerbFaults
from podfleet.simulator.server import RunningSimulator

NS = "default"


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with fast_simulator() as simulator:
        yield simulator


@pytest.fixture
def admin(sim: RunningSimulator) -> Iterator[AdminClient]:
    sim.admin.clear_faults()
    sim.admin.reset_stats()
    yield sim.admin
    sim.admin.clear_faults()


def _create_error(api: client.CoreV1Api, name: str) -> client.ApiException:
    with pytest.raises(client.ApiException) as caught:
        api.create_namespaced_pod(NS, pod_body(name))
    return caught.value


def test_429_carries_retry_after(admin: AdminClient, api: client.CoreV1Api) -> None:
    admin.set_faults(verbs={"create": {"error_429": 1.0}}, retry_after_s=7)

    error = _create_error(api, unique("limited"))

    assert error.status == 429
    assert error.headers["Retry-After"] == "7"
    assert '"reason":"TooManyRequests"' in error.body


def test_500_and_503_are_status_objects(admin: AdminClient, api: client.CoreV1Api) -> None:
    # Retry-After 0: urllib3 (inside the official client) retries a GET's 503 after it.
    admin.set_faults(verbs={"get": {"error_500": 1.0}, "list": {"error_503": 1.0}},
                     retry_after_s=0)

    with pytest.raises(client.ApiException) as got:
        api.read_namespaced_pod("anything", NS)
    with pytest.raises(client.ApiException) as listed:
        api.list_namespaced_pod(NS)

    assert (got.value.status, listed.value.status) == (500, 503)
    assert '"reason":"InternalError"' in got.value.body
    assert '"reason":"ServiceUnavailable"' in listed.value.body


def test_faults_apply_only_to_their_verb(admin: AdminClient, api: client.CoreV1Api) -> None:
    admin.set_faults(verbs={"delete": {"error_500": 1.0}})

    api.create_namespaced_pod(NS, pod_body(unique("fine")))

    assert admin.stats().creates.accepted == 1


def test_a_held_timeout_outlasts_the_client_timeout(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    admin.set_faults(verbs={"list": {"timeout": 1.0}}, timeout_hold_s=1.0)

    # urllib3 retries a GET that timed out; either way the caller gets a timeout.
    with pytest.raises((urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.MaxRetryError)):
        api.list_namespaced_pod(NS, _request_timeout=0.2)


def test_a_held_timeout_ends_in_504(admin: AdminClient, api: client.CoreV1Api) -> None:
    admin.set_faults(verbs={"list": {"timeout": 1.0}}, timeout_hold_s=0.05)

    with pytest.raises(client.ApiException) as caught:
        api.list_namespaced_pod(NS)

    assert caught.value.status == 504
    assert '"reason":"Timeout"' in caught.value.body


def test_pod_quota_forbids_creates_past_the_limit(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    admin.set_faults(pod_quota=0)
    name = unique("over-quota")

    error = _create_error(api, name)

    assert error.status == 403
    assert '"reason":"Forbidden"' in error.body
    assert "exceeded quota: pods-quota, requested: pods=1, used: pods=" in error.body
    assert "limited: pods=0" in error.body


def test_pod_quota_counts_only_pods_still_running(
    admin: AdminClient, api: client.CoreV1Api, sim: RunningSimulator
) -> None:
    namespace = "quota-test"
    api.create_namespace({"metadata": {"name": namespace}})
    admin.set_faults(pod_quota=1)
    first = unique("q")
    api.create_namespaced_pod(namespace, pod_body(first, {fate.DURATION: "0.2"}))
    with pytest.raises(client.ApiException) as caught:
        api.create_namespaced_pod(namespace, pod_body(unique("q")))
    assert caught.value.status == 403

    wait_for(lambda: api.read_namespaced_pod(first, namespace).status.phase == "Succeeded")

    api.create_namespaced_pod(namespace, pod_body(unique("q")))


def test_pod_quota_is_exact_under_concurrent_creates(
    admin: AdminClient, api: client.CoreV1Api, sim: RunningSimulator
) -> None:
    namespace = unique("quota-race")
    api.create_namespace({"metadata": {"name": namespace}})
    admin.set_faults(pod_quota=5)
    path = f"/api/v1/namespaces/{namespace}/pods"
    url = urllib3.util.parse_url(sim.url)
    connections = [
        http.client.HTTPSConnection(url.host, url.port, timeout=10, context=sim.ssl_context())
        for _ in range(20)
    ]
    bodies = [orjson.dumps(pod_body(unique("racer"), {fate.DURATION: "60"}))
              for _ in connections]
    try:
        # Every request's headers first, then every body: all twenty creates are in flight
        # (past any check made before the body is read) before the first one is stored.
        for connection, body in zip(connections, bodies, strict=True):
            connection.putrequest("POST", path)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Authorization", f"Bearer {sim.token}")
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders()
        time.sleep(0.2)  # lets the server start reading every request (no assertion on time)
        for connection, body in zip(connections, bodies, strict=True):
            connection.send(body)
        codes = [connection.getresponse().status for connection in connections]
    finally:
        for connection in connections:
            connection.close()
        api.delete_namespace(namespace)

    assert sorted(codes) == [201] * 5 + [403] * 15
    assert admin.stats().creates.rejected["Forbidden"] == 15


def test_rate_limit_answers_429_past_the_rate(admin: AdminClient, api: client.CoreV1Api) -> None:
    admin.set_faults(rate_limit_rps=1, rate_limit_burst=2, retry_after_s=1)
    codes = []

    # Creates: urllib3 does not retry a POST by itself, so every 429 reaches the caller.
    for _ in range(4):
        try:
            api.create_namespaced_pod(NS, pod_body(unique("rated")))
            codes.append(201)
        except client.ApiException as error:
            codes.append(error.status)

    assert codes[:2] == [201, 201] and 429 in codes[2:]
    assert admin.stats().faults_injected["rate_limit"] >= 1


def test_watch_connections_are_cut_after_the_drop_interval(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    admin.set_faults(watch_drop_s=0.2)
    started = time.monotonic()

    with pytest.raises(urllib3.exceptions.ProtocolError):
        for _ in watch.Watch().stream(api.list_namespaced_pod, NS, timeout_seconds=30):
            pass

    assert time.monotonic() - started < 25  # cut long before the watch's own timeout


def test_a_drop_set_while_a_watch_is_open_cuts_that_watch_too(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    import threading

    # Given a watch that has been open for a while, with no drop configured
    admin.clear_faults()
    cut = threading.Event()

    def watch_until_cut() -> None:
        try:
            for _ in watch.Watch().stream(api.list_namespaced_pod, NS, timeout_seconds=30):
                pass
        except urllib3.exceptions.ProtocolError:
            cut.set()

    reader = threading.Thread(target=watch_until_cut, daemon=True)
    reader.start()
    time.sleep(0.5)
    assert not cut.is_set()
    # When watches older than 0.2 s are to be dropped
    admin.set_faults(watch_drop_s=0.2)
    # Then the open one is cut within about a second, long before its own timeout
    assert cut.wait(5)
    admin.clear_faults()


def resumed_watch_status(api: client.CoreV1Api, rv: str, timeout_s: int) -> int:
    """The status of a watch of the namespace's pods resumed from ``rv`` (200 when it ran to
    its timeout)."""
    try:
        for _ in watch.Watch().stream(api.list_namespaced_pod, NS, resource_version=rv,
                                      timeout_seconds=timeout_s):
            pass
    except client.ApiException as error:
        return int(error.status)
    return 200


def test_expire_watches_answers_the_next_resumes_410_once_each(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    rv = api.list_namespaced_pod(NS).metadata.resource_version
    # Given one forced expiry
    admin.set_faults(expire_watches=1)
    # Then the next resume from a resourceVersion is Gone, the one after it is not
    assert resumed_watch_status(api, rv, 1) == 410
    assert resumed_watch_status(api, rv, 1) == 200
    assert admin.stats().faults_injected["watch_410"] == 1
    admin.clear_faults()


def test_short_history_makes_an_old_watch_expire_with_410(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    old_rv = api.list_namespaced_pod(NS).metadata.resource_version
    admin.set_faults(history_events=3)
    for _ in range(3):
        api.create_namespaced_pod(NS, pod_body(unique("churn")))
    wait_for(lambda: admin.stats().resource_version > int(old_rv) + 6, what="history to move")

    assert resumed_watch_status(api, old_rv, 5) == 410


@pytest.mark.parametrize(("mode", "reason"), [("fail", "NodeLost"), ("evict", "Evicted")])
def test_a_failed_node_fails_its_pods(
    admin: AdminClient, api: client.CoreV1Api, sim: RunningSimulator, mode: str, reason: str
) -> None:
    name = unique(mode)
    api.create_namespaced_pod(NS, pod_body(name, {fate.DURATION: "30"}))
    node = wait_for(lambda: (p := api.read_namespaced_pod(name, NS)).status.phase == "Running"
                    and p.spec.node_name, what="Running")

    ended = admin.fail_node(node, mode)

    pod = api.read_namespaced_pod(name, NS)
    assert ended >= 1
    assert (pod.status.phase, pod.status.reason) == ("Failed", reason)
    ready = {c.type: c.status for c in api.read_node(node).status.conditions}["Ready"]
    assert ready == "Unknown"
    admin.recover_node(node)


def test_a_vanishing_node_takes_its_pods_away(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    name = unique("vanish")
    api.create_namespaced_pod(NS, pod_body(name, {fate.DURATION: "30"}))
    node = wait_for(lambda: api.read_namespaced_pod(name, NS).spec.node_name, what="bound")

    admin.fail_node(node, "vanish")

    with pytest.raises(client.ApiException) as caught:
        api.read_namespaced_pod(name, NS)
    assert caught.value.status == 404
    admin.recover_node(node)


def test_pods_are_not_bound_to_a_failed_node(admin: AdminClient, api: client.CoreV1Api) -> None:
    admin.fail_node("sim-node-0")
    try:
        names = [unique("avoid") for _ in range(4)]
        for name in names:
            api.create_namespaced_pod(NS, pod_body(name, {fate.DURATION: "30"}))

        nodes = {wait_for(lambda n=name: api.read_namespaced_pod(n, NS).spec.node_name)
                 for name in names}
    finally:
        admin.recover_node("sim-node-0")

    assert nodes == {"sim-node-1"}


def test_create_counters_add_up(admin: AdminClient, api: client.CoreV1Api) -> None:
    admin.set_faults(verbs={"create": {"error_429": 0.3, "error_500": 0.2}}, seed=7)
    for _ in range(30):
        with contextlib.suppress(client.ApiException):
            api.create_namespaced_pod(NS, pod_body(unique("counted")))
    admin.clear_faults()
    existing = unique("twice")
    api.create_namespaced_pod(NS, pod_body(existing))
    with pytest.raises(client.ApiException):
        api.create_namespaced_pod(NS, pod_body(existing))

    stats = admin.stats()

    assert stats.creates.attempted == 32
    assert stats.creates.accepted + sum(stats.creates.rejected.values()) == 32
    assert stats.creates.rejected["AlreadyExists"] == 1
    assert stats.creates.rejected["TooManyRequests"] == stats.faults_injected["429"]
    assert stats.creates.rejected["InternalError"] == stats.faults_injected["500"]
    assert stats.requests["create"][201] == stats.creates.accepted


def test_faults_set_at_start_apply_from_the_first_request() -> None:
    faults = FaultConfig(verbs={"list": VerbFaults(error_503=1.0)}, retry_after_s=0)

    with fast_simulator(faults) as simulator:
        api_client = simulator.api_client()
        try:
            with pytest.raises(client.ApiException) as caught:
                client.CoreV1Api(api_client).list_namespaced_pod(NS)
        finally:
            api_client.close()

    assert caught.value.status == 503


def test_a_closed_timeout_drops_the_connection_without_an_answer(
    admin: AdminClient, api: client.CoreV1Api
) -> None:
    admin.set_faults(verbs={"create": {"timeout": 1.0}}, timeout_mode="close")

    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError)):
        api.create_namespaced_pod(NS, pod_body(unique("dropped")))

    admin.clear_faults()
    api.create_namespaced_pod(NS, pod_body(unique("after-drop")))  # the server still serves
