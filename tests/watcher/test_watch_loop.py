"""The watch loop against the simulator: phase mappings end to end, missed events, 410, faults.

Each test runs its own thread-mode simulator (pods live for tens of milliseconds) and a
watcher loop in a thread, and reads the executor's Redis stream like the executor does.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from kubernetes import client as k8s
from prometheus_client import REGISTRY
from watcher_support import (
    EXECUTOR,
    RunningWatcher,
    fast_simulator,
    new_key,
    options,
    per_launch,
    start_watcher,
    stream_events,
    task_pod,
    wait_for,
)

from podfleet.contracts import judgement
from podfleet.contracts.events import EventKind, TaskEvent
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.kube.client import KubeClient
from podfleet.settings import DeletePolicy
from podfleet.simulator.cluster import fate
from podfleet.simulator.faults import VerbFaults
from podfleet.simulator.kubeconfig import write_kubeconfig
from podfleet.simulator.server import RunningSimulator
from podfleet.workers.watcher.loop import WatchOptions

TERMINAL = {"success", "failed", "requeue"}


class Harness:
    """A simulator, a Redis and watchers started and stopped at will."""

    def __init__(self, sim: RunningSimulator, kube: KubeClient, client: redis.Redis,
                 redis_url: str, keys: RedisKeys) -> None:
        self.sim, self.kube, self.client, self.url, self.keys = sim, kube, client, redis_url, keys
        self.watchers: list[RunningWatcher] = []

    def start(self, opts: WatchOptions | None = None,
              kubeconfig: str | None = None) -> RunningWatcher:
        watcher = start_watcher(self.sim, self.url, self.keys, opts or options(),
                                kubeconfig=kubeconfig)
        self.watchers.append(watcher)
        return watcher

    def create(self, fates: list[dict[str, str]], namespace: str = "default") -> list[str]:
        """Create one pod per fate; return their launch ids."""
        launches = []
        for f in fates:
            pod = task_pod(new_key(), fate=f, namespace=namespace)
            self.kube.create_pod(namespace, pod)
            launches.append(pod["metadata"]["labels"]["podfleet.io/launch-id"])
        return launches

    def events(self) -> list[TaskEvent]:
        return stream_events(self.client, self.keys)

    def terminal_events(self, launches: list[str]) -> dict[str, TaskEvent]:
        """Wait until each launch has a terminal event; return them by launch id."""
        def done() -> dict[str, TaskEvent] | None:
            found = {e.launch_id: e for e in self.events()
                     if e.kind is EventKind.REQUEUE or (e.state and e.state.is_terminal)}
            return found if all(launch in found for launch in launches) else None
        return wait_for(done, what="a terminal event per launch")

    def close(self) -> None:
        for watcher in self.watchers:
            watcher.close()


@pytest.fixture
def harness(sim: RunningSimulator, kube: KubeClient, client: redis.Redis, redis_url: str,
            keys: RedisKeys) -> Iterator[Harness]:
    h = Harness(sim, kube, client, redis_url, keys)
    yield h
    h.close()


def assert_once_each(events: list[TaskEvent]) -> None:
    counts = per_launch(events)
    repeated = {k: n for k, n in counts.items() if n > 1}
    assert not repeated, f"published more than once: {repeated}"
    terminal: dict[str, int] = {}
    for (launch, state), n in counts.items():
        if state in TERMINAL:
            terminal[launch] = terminal.get(launch, 0) + n
    assert all(n == 1 for n in terminal.values()), terminal


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- phase mappings through the simulator -------------------------------------------------

@pytest.mark.parametrize(("pod_fate", "state", "reason"), [
    ({}, TaskState.SUCCESS, None),
    ({fate.EXIT_CODE: "3"}, TaskState.FAILED, "Error"),
    ({fate.OOM: "true"}, TaskState.FAILED, "OOMKilled"),
    ({fate.IMAGE_PULL_ERROR: "ErrImagePull"}, TaskState.FAILED, "ErrImagePull"),
    ({fate.IMAGE_PULL_ERROR: "InvalidImageName"}, TaskState.FAILED, "InvalidImageName"),
    ({fate.IMAGE_PULL_ERROR: "CreateContainerConfigError"}, TaskState.FAILED,
     "CreateContainerConfigError"),
])
def test_pod_fate_becomes_task_event(harness: Harness, pod_fate: dict[str, str],
                                     state: TaskState, reason: str | None) -> None:
    # Given a watcher, when a pod with this fate runs its course
    harness.start()
    (launch,) = harness.create([pod_fate])
    # Then its task gets the matching terminal event, once
    event = harness.terminal_events([launch])[launch]
    assert (event.state, event.reason) == (state, reason)
    assert event.executor_id == EXECUTOR and event.pod_name
    assert_once_each(harness.events())


def test_running_then_success_with_exit_code_and_node(harness: Harness) -> None:
    harness.start()
    (launch,) = harness.create([{fate.DURATION: "0.3"}])
    harness.terminal_events([launch])
    states = [e.state for e in harness.events()]
    assert states == [TaskState.RUNNING, TaskState.SUCCESS]
    success = harness.events()[-1]
    assert success.detail["exit_code"] == 0 and success.detail["node"].startswith("sim-node-")


# A kubelet's node-pressure eviction marks the pod DisruptionTarget/TerminationByKubelet (as
# Kubernetes does): a disruption, which the executor relaunches without spending a retry.
@pytest.mark.parametrize(("mode", "reason"), [("fail", "NodeLost"),
                                              ("evict", "TerminationByKubelet"),
                                              ("vanish", judgement.POD_DELETED)])
def test_node_failure_fails_running_tasks(harness: Harness, mode: str, reason: str) -> None:
    # Given long-running pods on a node
    harness.start()
    launches = harness.create([{fate.DURATION: "60"}] * 2)
    wait_for(lambda: sum(e.state is TaskState.RUNNING for e in harness.events()) == 2,
             what="both running")
    # When their nodes fail
    for node in harness.sim.admin.nodes():
        harness.sim.admin.fail_node(node, mode)
    # Then each task fails with the node's reason
    events = harness.terminal_events(launches)
    assert {e.reason for e in events.values()} == {reason}
    assert_once_each(harness.events())


def test_pending_pod_deleted_is_requeued(harness: Harness) -> None:
    harness.start()
    pod = task_pod(new_key(), fate={fate.START_DELAY: "60"})
    harness.kube.create_pod("default", pod)
    launch = pod["metadata"]["labels"]["podfleet.io/launch-id"]
    wait_for(lambda: harness.client.hlen(f"{harness.keys.prefix}:watcher:pods:default"),
             what="the pod recorded")
    harness.kube.delete_pod("default", pod["metadata"]["name"])
    event = harness.terminal_events([launch])[launch]
    assert event.kind is EventKind.REQUEUE and event.reason == judgement.DELETED_BEFORE_START


def test_running_pod_deleted_fails(harness: Harness) -> None:
    harness.start()
    pod = task_pod(new_key(), fate={fate.DURATION: "60"})
    harness.kube.create_pod("default", pod)
    launch = pod["metadata"]["labels"]["podfleet.io/launch-id"]
    wait_for(lambda: harness.events(), what="RUNNING")
    harness.kube.delete_pod("default", pod["metadata"]["name"])
    event = harness.terminal_events([launch])[launch]
    assert (event.state, event.reason) == (TaskState.FAILED, judgement.POD_DELETED)
    assert_once_each(harness.events())


# --- restarts, missed events, 410 ---------------------------------------------------------

def test_changes_missed_while_nobody_watched_are_published_once(harness: Harness) -> None:
    # Given a watcher that saw some pods start, then stopped
    first = harness.start()
    launches = harness.create([{fate.DURATION: "0.5"}] * 5)
    wait_for(lambda: len(harness.events()) >= 5, what="RUNNING events")
    first.close()
    # When those pods finish, and others come and go, while no watcher runs
    more = harness.create([{}] * 5)
    wait_for(lambda: harness.sim.admin.stats().pods.by_phase.get("Succeeded", 0) == 10,
             what="all pods finished")
    # Then a new watcher publishes every missed outcome, none twice
    harness.start()
    harness.terminal_events(launches + more)
    assert_once_each(harness.events())


def test_pods_deleted_while_nobody_watched_are_reported(harness: Harness) -> None:
    # Given a watcher that recorded a running and a pending pod, then stopped
    first = harness.start()
    running_pod = task_pod(new_key(), fate={fate.DURATION: "60"})
    pending_pod = task_pod(new_key(), fate={fate.START_DELAY: "60"})
    for pod in (running_pod, pending_pod):
        harness.kube.create_pod("default", pod)
    wait_for(lambda: harness.events(), what="RUNNING")
    wait_for(lambda: harness.client.hlen(f"{harness.keys.prefix}:watcher:pods:default") == 2,
             what="both recorded")
    first.close()
    # When both are deleted unwatched, and the API's history no longer has the deletions
    for pod in (running_pod, pending_pod):
        harness.kube.delete_pod("default", pod["metadata"]["name"], grace_period_seconds=0)
    harness.sim.admin.set_faults(history_events=2)
    harness.create([{}] * 3)
    # Then the next watcher's relist fails the one and requeues the other
    harness.start()
    launches = [p["metadata"]["labels"]["podfleet.io/launch-id"]
                for p in (running_pod, pending_pod)]
    events = harness.terminal_events(launches)
    assert events[launches[0]].reason == judgement.POD_VANISHED
    assert events[launches[1]].kind is EventKind.REQUEUE


def test_410_relists_and_loses_nothing(harness: Harness) -> None:
    # Given a watcher that stored a resourceVersion, then stopped
    first = harness.start()
    launches = harness.create([{}] * 3)
    harness.terminal_events(launches)
    first.close()
    # When the API keeps only a short history and much happens meanwhile
    harness.sim.admin.set_faults(history_events=5)
    launches += harness.create([{}] * 10)
    wait_for(lambda: harness.sim.admin.stats().pods.by_phase.get("Succeeded", 0) == 13,
             what="all pods finished")
    expired = metric("podfleet_watch_restarts_total", reason="expired")
    # Then the new watcher's watch gets 410, relists, and every outcome appears once
    harness.start()
    harness.terminal_events(launches)
    assert metric("podfleet_watch_restarts_total", reason="expired") > expired
    assert_once_each(harness.events())


def test_watch_drops_lose_nothing(sim: RunningSimulator, harness: Harness) -> None:
    # Given an API server that cuts every watch after 0.2 s
    sim.admin.set_faults(watch_drop_s=0.2)
    harness.start()
    # When pods run across many reconnects
    launches = []
    for _ in range(5):
        launches += harness.create([{fate.DURATION: "0.1"}] * 4)
        threading.Event().wait(0.15)
    # Then every outcome appears once
    harness.terminal_events(launches)
    assert_once_each(harness.events())


def test_api_errors_are_retried(sim: RunningSimulator, harness: Harness) -> None:
    # Given an API server failing half of the lists and watches with 500/503
    errors = before = metric("podfleet_watch_restarts_total", reason="error")
    sim.admin.set_faults(verbs={"list": VerbFaults(error_500=0.5),
                                "watch": VerbFaults(error_503=0.5)}, seed=7)
    harness.start(options(read_timeout_seconds=1.0))
    launches = harness.create([{}] * 8)
    # Then the watcher gets through and publishes every outcome once
    harness.terminal_events(launches)
    assert_once_each(harness.events())
    errors = metric("podfleet_watch_restarts_total", reason="error")
    assert errors > before


def test_all_namespaces_and_several_namespaces(redis_url: str, client: redis.Redis,
                                               keys: RedisKeys) -> None:
    simulator = fast_simulator(namespaces=["team-a", "team-b", "team-c"])
    kube = KubeClient(simulator.api_client(), timeout_seconds=5)
    h = Harness(simulator, kube, client, redis_url, keys)
    try:
        # Given a watcher of two namespaces out of three
        h.start(options(namespaces=("team-a", "team-b")))
        a = h.create([{}], "team-a")
        b = h.create([{}], "team-b")
        c = h.create([{}], "team-c")
        # Then pods of both are reported, the third namespace's not
        h.terminal_events(a + b)
        assert not any(e.launch_id in c for e in h.events())
        h.close()
        # And a watcher of all namespaces reports the third's too
        h.watchers = []
        h.start(options(namespaces=("*",)))
        h.terminal_events(c)
    finally:
        h.close()
        kube.close()
        simulator.stop()


# --- deleting finished pods ---------------------------------------------------------------

@pytest.mark.parametrize(("policy", "left"), [
    (DeletePolicy.ALWAYS, set()),
    (DeletePolicy.ON_SUCCESS, {"failed"}),
    (DeletePolicy.ON_FAILURE, {"ok"}),
    (DeletePolicy.NEVER, {"ok", "failed"}),
])
def test_delete_policy(harness: Harness, policy: DeletePolicy, left: set[str]) -> None:
    # Given a watcher with this policy, one succeeding and one failing pod
    harness.start(options(delete_policy=policy))
    ok = task_pod(new_key(), fate={})
    failed = task_pod(new_key(), fate={fate.EXIT_CODE: "1"})
    names = {"ok": ok["metadata"]["name"], "failed": failed["metadata"]["name"]}
    for pod in (ok, failed):
        harness.kube.create_pod("default", pod)
    launches = [p["metadata"]["labels"]["podfleet.io/launch-id"] for p in (ok, failed)]
    harness.terminal_events(launches)

    # Then exactly the pods the policy deletes go, in one DeleteCollection per batch (one or
    # two here, as the pods finish together or apart) and none one by one
    def remaining() -> set[str]:
        return {k for k, n in names.items() if harness.kube.get_pod("default", n) is not None}
    wait_for(lambda: remaining() == left, what=f"pods left {left}")
    threading.Event().wait(0.5)  # any second delete would have been sent by now
    assert _pod_requests(harness.sim, "delete") == 0
    assert (_pod_requests(harness.sim, "deletecollection") > 0) == (len(left) < 2)
    assert _pod_requests(harness.sim, "deletecollection") <= 2 - len(left)


def test_finished_pods_found_together_go_in_one_request(harness: Harness) -> None:
    # Given ten pods that finished while no watcher ran
    pods = [task_pod(new_key()) for _ in range(10)]
    for pod in pods:
        harness.kube.create_pod("default", pod)
    wait_for(lambda: all((harness.kube.get_pod("default", p["metadata"]["name"]) or {})
                         .get("status", {}).get("phase") == "Succeeded" for p in pods),
             what="every pod Succeeded")
    # When a watcher deleting finished pods starts and finds them in its first list
    harness.start(options(delete_policy=DeletePolicy.ALWAYS))
    # Then they are all deleted by one request, which names exactly them
    wait_for(lambda: not harness.kube.list_pods("default").items, what="every pod deleted")
    threading.Event().wait(0.5)
    assert (_pod_requests(harness.sim, "deletecollection"),
            _pod_requests(harness.sim, "delete")) == (1, 0)


def test_a_role_without_deletecollection_deletes_pod_by_pod(harness: Harness,
                                                            tmp_path: Path) -> None:
    # Given a watcher whose Role grants delete on pods but not deletecollection (a Role from
    # before the watcher deleted in batches)
    kubeconfig = _service_account(harness, tmp_path, ["get", "list", "watch", "delete"])
    harness.start(options(delete_policy=DeletePolicy.ALWAYS), kubeconfig=kubeconfig)
    # When pods finish
    launches = harness.create([{}] * 3)
    harness.terminal_events(launches)
    # Then every pod is still deleted, each by a delete of its own after the one refusal
    wait_for(lambda: not harness.kube.list_pods("default").items, what="every pod deleted")
    threading.Event().wait(0.5)
    assert _pod_requests(harness.sim, "deletecollection", code=403) == 1
    assert _pod_requests(harness.sim, "delete") == 3


def _service_account(harness: Harness, workdir: Path, verbs: list[str]) -> str:
    """A ServiceAccount in ``default`` whose Role grants ``verbs`` on pods; its kubeconfig."""
    api = harness.sim.api_client()
    try:
        rbac = k8s.RbacAuthorizationV1Api(api)
        name = f"watcher-{uuid.uuid4().hex[:6]}"
        k8s.CoreV1Api(api).create_namespaced_service_account(
            "default", {"metadata": {"name": name}})
        rbac.create_namespaced_role("default", {
            "metadata": {"name": name},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]})
        rbac.create_namespaced_role_binding("default", {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": "default"}]})
        token = k8s.CoreV1Api(api).create_namespaced_service_account_token(
            name, "default", {"spec": {"audiences": []}}).status.token
    finally:
        api.close()
    ca_data = harness.sim.config.tls.ca_data() if harness.sim.tls else None
    return str(write_kubeconfig(workdir / f"{name}.kubeconfig", harness.sim.url, token=token,
                                name=name, ca_data=ca_data))


def test_delete_delay_keeps_finished_pods_a_while(harness: Harness) -> None:
    # 3 s: a loaded machine may take a second between the event and the check below
    harness.start(options(delete_policy=DeletePolicy.ALWAYS, delete_delay_seconds=3.0))
    pod = task_pod(new_key())
    harness.kube.create_pod("default", pod)
    launch = pod["metadata"]["labels"]["podfleet.io/launch-id"]
    harness.terminal_events([launch])
    assert harness.kube.get_pod("default", pod["metadata"]["name"]) is not None
    wait_for(lambda: harness.kube.get_pod("default", pod["metadata"]["name"]) is None,
             what="deleted after the delay")


def _requests(sim: RunningSimulator) -> dict[tuple[str, str, int], int]:
    runtime: Any = getattr(sim, "runtime", None)
    assert runtime is not None, "thread-mode simulator expected"
    return dict(runtime.stats.requests)


def _pod_requests(sim: RunningSimulator, verb: str, code: int | None = None) -> int:
    """How many requests of ``verb`` on pods the simulator answered (with ``code``, if given)."""
    return sum(n for (v, resource, status), n in _requests(sim).items()
               if v == verb and resource == "pods" and code in (None, status))


def test_bookmarks_advance_the_stored_resource_version(redis_url: str, client: redis.Redis,
                                                       keys: RedisKeys) -> None:
    simulator = fast_simulator(namespaces=["quiet"])
    kube = KubeClient(simulator.api_client(), timeout_seconds=5)
    h = Harness(simulator, kube, client, redis_url, keys)
    try:
        # Given a watcher of a namespace where nothing happens
        h.start(options(namespaces=("quiet",)))
        rv_key = keys.watcher_resource_version("quiet")
        start = int(wait_for(lambda: client.get(rv_key), what="a stored RV"))
        # When the cluster moves on elsewhere
        h.create([{}] * 3, "default")
        # Then bookmarks carry the watcher's stored RV forward without any event
        wait_for(lambda: int(client.get(rv_key) or 0) > start + 3, what="the RV to advance")
        assert h.events() == []
    finally:
        h.close()
        kube.close()
        simulator.stop()


def test_watcher_survives_a_redis_restart(private_redis: Any, sim: RunningSimulator,
                                          kube: KubeClient) -> None:
    from podfleet.settings import Settings
    from podfleet.workers.watcher.actor import WatcherSupervisor

    # Given a supervisor (as in every worker process) watching through a private Redis
    prefix = f"t{uuid.uuid4().hex[:8]}"
    keys = RedisKeys(prefix)
    kubeconfig = sim.write_kubeconfig(f"/tmp/{prefix}-kubeconfig")
    settings = Settings.from_env({"PODFLEET_REDIS_URL": private_redis.url,
                                  "PODFLEET_REDIS_PREFIX": prefix,
                                  "PODFLEET_KUBECONFIG": str(kubeconfig),
                                  "PODFLEET_WATCHER_LEASE_SECONDS": "1",
                                  "PODFLEET_DELETE_POLICY": "never"})
    stop = threading.Event()
    thread = threading.Thread(target=WatcherSupervisor(settings).run, args=(stop,),
                              daemon=True)
    thread.start()
    client = redis.Redis.from_url(private_redis.url)
    h = Harness(sim, kube, client, private_redis.url, keys)
    try:
        h.terminal_events(h.create([{}] * 3))
        # When Redis restarts empty (lease, RV, records and streams gone)
        private_redis.restart()
        # Then a watcher comes back and later pods are reported
        later = h.create([{}] * 3)
        h.terminal_events(later)
    finally:
        stop.set()
        thread.join(10)
        client.close()
        kubeconfig.unlink()
