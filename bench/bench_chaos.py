"""Chaos run: a fleet through the whole pipeline while its parts are killed, paused and fed
garbage; then count, from sources independent of podfleet's own bookkeeping, what went wrong.

    .venv/bin/python bench/bench_chaos.py            # 2,000 tasks, the full fault timeline
    .venv/bin/python bench/bench_chaos.py --quick    # 300 tasks, a shorter timeline (CI)
    .venv/bin/python bench/bench_chaos.py --sentinel # Redis behind Sentinel: a failover
                                                     # instead of a restart from the AOF
    .venv/bin/python bench/bench_chaos.py --clusters 2  # two clusters; the second one's API
                                                     # server SIGKILLed and restarted empty

Default settings throughout (delete policy ``always``, Redis with an append-only file as a
production Redis runs), except a launch rate low enough to keep launches in flight while
faults land, with burst 1 so that the rate is the bound of every 1 s window. The timeline:
a worker whose clock is 700 s ahead throughout (libfaketime: podfleet.local.skewed_clock),
a launcher SIGKILLed, a launcher SIGSTOPped for 5 s, the watcher's worker SIGKILLed, Redis
SIGKILLed and restarted from its AOF, the API answering 429/503 for a while, forged and
garbage launch-queue entries, every watch connection dropped after 1 s for a while, a
forced 410 Gone (watches dropped and the next resume from a resourceVersion answered 410
Expired, as after compaction, so the watcher must relist), a ResourceQuota created below
the namespace's current use (launches park on it) and raised 3 s later, the busiest node
drained (cordoned and each of its pods evicted through ``pods/eviction``: the executor
relaunches them without spending a retry), Redis refusing writes with OOM for 3 s
(``maxmemory`` just above its use, ``noeviction``), with ``--sentinel`` the killed primary
back as a replica and a ``SENTINEL FAILOVER`` (clients still on the demoted primary get
``READONLY``), the executor abandoned mid-run (as a SIGKILLed scheduler) and a new one
started under a new id. With ``--clusters 2`` the fleet has two clusters (a simulator each,
the tasks free to run on either) and the timeline adds the second cluster's API server
SIGKILLed mid-launch and restarted, empty, 3 s later: its launches wait or move to the first
cluster, and its tasks whose pods died with it end as the executor finds them (a pod gone
while running fails "PodVanished"; those are reported apart, not as wrong outcomes). Sources:

- the simulator's own record of every pod it stored (``GET /_sim/creates``: when, to the
  microsecond, and under which name; a name twice is a launch made twice: duplicate pods),
  which no watch drop can make it miss, and the peak creates in any sliding 1 s window (with
  two clusters, each simulator's record, the killed one's read just before its kill: a name
  in both is a launch made in two clusters; a name in both lives of the killed one is a pod
  its restart lost, made again there after a GET found none, and is reported apart);
- the metadata DB: tasks not terminal (lost), outcomes other than the fate asked (wrong);
- the event buffers the two executors filled: terminal reports per task (double terminal);
- the watcher lease: how long the takeover took after its worker was killed;
- the simulator's pods at the end: under the default delete policy none may be left;
- the executors' ``podfleet_task_relaunches_total{cause="disruption"}``: the drain's relaunches.

Prints the numbers and exits 1 unless lost, duplicate pods, double terminal, wrong outcomes,
forged-launched and pods left undeleted are all 0, the peak is within 1.05 × the rate, the
takeover within the lease time plus its supervisor interval, the forced 410 was met and
relisted, and the drain evicted at least one pod that had not finished.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import signal
import sys
import threading
import time
import uuid
from typing import Any

from bench_pipeline import database

from podfleet.contracts.naming import pod_name
from podfleet.local.skewed_clock import skewed_clock_env
from podfleet.local.waiting import WaitTimedOut, wait_for

NAMESPACE = "default"
SIGNING_KEY = "chaos-bench-signing-key-0123456789"
QUEUE = "podfleet.launch"
SKEW_S = 700.0  # how far the skewed worker's clock is ahead
SECOND = "c2"  # the second cluster of --clusters 2, whose API server is killed
# How long the run waits for every task to end after its timeline. With two clusters, also
# the resync period: a pod the killed cluster lost before any watcher saw it (its task
# LAUNCHED, no event to come) is found missing by the executor's periodic resync, which
# promises no sooner than that.
ALL_END_S = 180.0


class Scheduler:
    """An executor in a sync loop on a thread, recording every terminal report it reads."""

    def __init__(self, env: dict[str, str], executor_id: str,
                 submissions: list[Any] | None = None) -> None:
        from podfleet.executor import Executor
        from podfleet.settings import Settings

        self.executor = Executor(Settings.from_env({**env, "PODFLEET_EXECUTOR_ID": executor_id}))
        self.executor.start()
        if submissions:  # before the sync thread: an executor is driven from one thread
            self.executor.submit_many(submissions)
        self.terminal: collections.Counter[Any] = collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=executor_id)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.executor.sync()
            for key, (state, _info) in self.executor.get_event_buffer().items():
                if state.is_terminal:
                    self.terminal[key] += 1
            time.sleep(0.05)

    def abandon(self) -> None:
        """Stop syncing without terminating: to the fleet it looks like a SIGKILLed scheduler."""
        self._stop.set()
        self._thread.join(timeout=30)


def _resume(pid: int) -> None:
    """SIGCONT a paused worker's group, unless the timeline killed it meanwhile."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGCONT)


def _redis_ready(redis_client: Any) -> bool:
    """Redis answers and has finished loading its data (no BusyLoadingError)."""
    import redis

    try:
        return bool(redis_client.ping())
    except redis.RedisError:
        return False


def _watcher_pool(workers: Any, redis_client: Any, prefix: str) -> Any:
    """The worker pool whose dramatiq process holds the watcher lease, or None: the lease
    names a dramatiq process, and the fleet's pools are their parents' process groups."""
    pid = _holder_pid(redis_client, prefix)
    if pid is None:
        return None
    try:
        return workers.owner_of(pid)
    except (LookupError, ProcessLookupError):
        return None


def _holder_pid(redis_client: Any, prefix: str) -> int | None:
    from podfleet.contracts.redis_keys import RedisKeys
    from podfleet.workers.watcher.lease import current_holder

    holder = current_holder(redis_client, RedisKeys(prefix))
    return int(holder.holder.split(":")[1]) if holder else None


def _inject_queue_garbage(redis_client: Any, prefix: str, settings: Any) -> Any:
    """One undecodable entry and one forged launch (a real message signed with another key)."""
    from podfleet.broker import enqueue_envelopes, make_broker
    from podfleet.contracts.keys import TaskKey
    from podfleet.contracts.messages import LaunchBatch, LaunchRequest
    from podfleet.contracts.signing import MessageSigner

    queue_key = f"{prefix}:dramatiq:{QUEUE}"
    garbage_id = str(uuid.uuid4())
    redis_client.hset(queue_key + ".msgs", garbage_id, b"\xffnot a dramatiq message")
    redis_client.rpush(queue_key, garbage_id)
    forged_launch = uuid.uuid4().hex
    request = LaunchRequest(
        key=TaskKey("forged", "evil", "r", -1, 1), launch_id=forged_launch,
        command=("sh", "-c", "echo pwned"), executor_id="nobody", namespace=NAMESPACE,
        queued_at=time.time(), queue=None, executor_config={}, deadline=None)
    broker = make_broker(settings)
    envelope = LaunchBatch((request,)).seal(MessageSigner(b"not-the-fleets-signing-key-000"))
    enqueue_envelopes(broker, QUEUE, [envelope])
    broker.close()
    return pod_name(request.key, forged_launch)


def _fill_quota_then_raise(sim: Any, started: float) -> int:
    """A ResourceQuota created below what the namespace uses now (launches park on it), held
    for 3 s, then raised; returns the creates it refused."""
    from podfleet.kube.client import KubeClient

    kube = KubeClient(sim.api_client())
    path = f"/api/v1/namespaces/{NAMESPACE}/resourcequotas"
    try:
        live = sum(1 for pod in kube.list_pods(NAMESPACE).items
                   if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
        refused_before = sim.admin.stats().creates.rejected.get("Forbidden", 0)
        hard = max(1, live // 2)  # 0 would be a quota no pod can ever fit: they would fail
        print(f"t={time.monotonic() - started:5.1f}s quota pods={hard} below the "
              f"{live} live pods, for 3 s", flush=True)
        kube.request("POST", path, body={"metadata": {"name": "chaos-quota"},
                                         "spec": {"hard": {"pods": str(hard)}}})
        time.sleep(3)
        kube.request("PATCH", f"{path}/chaos-quota", body={"spec": {"hard": {"pods": "100000"}}},
                     content_type="application/merge-patch+json")
        print(f"t={time.monotonic() - started:5.1f}s quota raised", flush=True)
        return int(sim.admin.stats().creates.rejected.get("Forbidden", 0) - refused_before)
    finally:
        kube.close()


def _drain_a_busy_node(sim: Any, started: float,
                       within_s: float = 20.0) -> tuple[str | None, int, int]:
    """Drain the node with the most pods not finished as ``kubectl drain`` does: cordon it,
    then evict each of its pods through the ``pods/eviction`` subresource (policy/v1).

    A drain that evicts no live pod proves nothing, so the node is chosen from the pods of
    this moment, and if its pods all finished before their evictions (they run for a second
    or two), the next busiest is drained too, for up to ``within_s``. Returns the last node
    drained, the evictions the API accepted and how many of those pods had not finished."""
    from podfleet.kube.client import KubeClient
    from podfleet.kube.errors import KubeError

    kube = KubeClient(sim.api_client())
    deadline = time.monotonic() + within_s
    node: str | None = None
    evicted = 0
    live = 0
    try:
        while live == 0 and time.monotonic() < deadline:
            nodes = collections.Counter(
                (pod.get("spec") or {}).get("nodeName") for pod in kube.list_pods(NAMESPACE).items
                if (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
            nodes.pop(None, None)
            if not nodes:  # nothing runs this instant (launches waiting at a budget)
                time.sleep(0.1)
                continue
            node = str(nodes.most_common(1)[0][0])
            kube.request("PATCH", f"/api/v1/nodes/{node}", body={"spec": {"unschedulable": True}},
                         content_type="application/merge-patch+json")
            for pod in kube.list_pods(NAMESPACE, field_selector=f"spec.nodeName={node}").items:
                name = pod["metadata"]["name"]
                running = (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
                with contextlib.suppress(KubeError):  # gone meanwhile: nothing to evict
                    kube.request(
                        "POST", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/eviction",
                        body={"apiVersion": "policy/v1", "kind": "Eviction",
                              "metadata": {"name": name, "namespace": NAMESPACE}})
                    evicted += 1
                    live += running
            print(f"t={time.monotonic() - started:5.1f}s node {node} drained: cordoned, "
                  f"{evicted} pods evicted ({live} not finished)", flush=True)
        return node, evicted, live
    finally:
        kube.close()


def _refuse_writes_oom(address: tuple[str, int], started: float, hold_s: float = 3.0) -> int:
    """Redis refuses writes with OOM for ``hold_s``: ``maxmemory`` just above what it uses,
    under ``noeviction``, then lifted. Returns the writes it refused (its own count)."""
    import redis

    client = redis.Redis(host=address[0], port=address[1], socket_timeout=5)
    try:
        before = int(client.info("stats").get("total_error_replies", 0))
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "noeviction")
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory-policy", "noeviction")
        client.config_set("maxmemory", str(used + 64 * 1024))
        print(f"t={time.monotonic() - started:5.1f}s Redis maxmemory {used + 64 * 1024} "
              f"(used {used}), noeviction: writes refused OOM for {hold_s:g} s", flush=True)
        time.sleep(hold_s)
        client.config_set("maxmemory", "0")
        client.config_set("maxmemory-policy", policy)
        print(f"t={time.monotonic() - started:5.1f}s Redis maxmemory lifted", flush=True)
        # Error replies of any kind in the window; OOM is the only one it was made to answer.
        return int(client.info("stats").get("total_error_replies", 0)) - before
    finally:
        client.close()


def _disruption_relaunches() -> float:
    """Relaunches of pods that went away under their task (disrupted, or deleted before they
    started), from podfleet_task_relaunches_total of the executors in this process."""
    from prometheus_client import REGISTRY

    from podfleet.monitoring.metrics import RelaunchCause

    return sum(REGISTRY.get_sample_value("podfleet_task_relaunches_total", {"cause": cause})
               or 0.0 for cause in (RelaunchCause.DISRUPTION,
                                    RelaunchCause.DELETED_BEFORE_START))


def run(tasks: int, rate: float, quick: bool, sentinel: bool = False,
        clusters: int = 1) -> int:

    from podfleet.contracts.states import TaskState
    from podfleet.executor import TaskSubmission
    from podfleet.executor.db import TaskInstance, make_engine
    from podfleet.kube.client import KubeClient
    from podfleet.local.fleet import LocalCluster, LocalFleet
    from podfleet.local.redis_sentinel import SentinelGroup
    from podfleet.redis_client import connect as connect_redis
    from podfleet.simulator.admin import busiest_window
    from podfleet.simulator.cluster import fate
    from podfleet.simulator.cluster.config import ClusterConfig
    from podfleet.simulator.config import SimulatorConfig

    lease = 5.0
    with contextlib.ExitStack() as stack:
        group = stack.enter_context(SentinelGroup()) if sentinel else None
        database_url = stack.enter_context(database())
        prefix = f"chaos-{uuid.uuid4().hex[:6]}"
        # Redis keeps an append-only file, as a production Redis runs: its fault is a
        # SIGKILL and a restart from it.
        simulated = SimulatorConfig(cluster=ClusterConfig(nodes=10, node_pods=200))
        several = [LocalCluster("default", simulator=simulated),
                   LocalCluster(SECOND, simulator=simulated)] if clusters == 2 else []
        fleet = stack.enter_context(LocalFleet(
            simulator=None if several else simulated, clusters=several,
            redis_url=group.url if group is not None else None, redis_appendonly=True,
            database_url=database_url, redis_prefix=prefix, signing_key=SIGNING_KEY,
            namespace=NAMESPACE, env={
                "PODFLEET_LAUNCH_RATE": repr(rate),
                "PODFLEET_LAUNCH_BURST": "1",
                "PODFLEET_WATCHER_LEASE_SECONDS": str(lease),
                "PODFLEET_HEARTBEAT_SECONDS": "1",
                "PODFLEET_HEARTBEAT_TIMEOUT_SECONDS": "5",
            }))
        sim, env, workers = fleet.simulator, fleet.env, fleet.workers
        assert sim is not None
        redis_server = fleet.redis_server if group is None else group.primary
        assert redis_server is not None
        settings = fleet.settings()
        client = connect_redis(fleet.redis_url, socket_timeout=5)
        for _ in range(2):
            workers.start(threads=4)
        # One worker host whose clock is SKEW_S ahead, the whole run: deadlines and dramatiq's
        # heartbeats are judged on Redis' clock, so it launches like the others.
        print(f"worker {workers.start(threads=4, **skewed_clock_env(SKEW_S)).pid} runs with "
              f"its clock {SKEW_S:+.0f} s off", flush=True)
        wait_for(lambda: _holder_pid(client, prefix), 60, "a watcher")
        sim.admin.reset_stats()  # /_sim/creates from here on

        expected: dict[Any, TaskState] = {}
        submissions = []
        for n in range(tasks):
            failing = n % 10 == 0
            annotations = {fate.DURATION: f"{0.2 + (n % 7) * 0.3:.2f}"}
            if failing:
                annotations[fate.EXIT_CODE] = "3"
            key = ("chaos", f"t{n}", "r1", -1, 1)
            submissions.append(TaskSubmission(key, ["true"], None,
                                              {"annotations": annotations}, None))
            expected[key] = TaskState.FAILED if failing else TaskState.SUCCESS
        first = Scheduler(env, "chaos-a", submissions)
        started = time.monotonic()
        wall_start = time.time()
        span = tasks / rate  # how long launching takes at the rate
        step = span / (6 if quick else 8)
        schedulers = [first]
        takeover_s = float("nan")

        def at(fraction_steps: float) -> None:
            time.sleep(max(0.0, started + fraction_steps * step - time.monotonic()))

        at(1)
        victim = next(p for p in workers.alive() if p is not _watcher_pool(workers, client, prefix))
        print(f"t={time.monotonic() - started:5.1f}s SIGKILL launcher {victim.pid}", flush=True)
        workers.kill(victim)
        workers.start(threads=4)
        second_creates: list[Any] = []
        if several:
            # Mid-launch: the second cluster holds pending and running pods, and launches.
            at(1.5)
            print(f"t={time.monotonic() - started:5.1f}s SIGKILL cluster {SECOND}'s API "
                  "server; restart it, empty, in 3 s", flush=True)
            second_creates = fleet.simulators[SECOND].admin.creates()
            fleet.kill_cluster(SECOND)
            time.sleep(3)
            fleet.restart_cluster(SECOND)
        at(2)
        paused = next(p for p in workers.alive() if p is not _watcher_pool(workers, client, prefix))
        print(f"t={time.monotonic() - started:5.1f}s SIGSTOP launcher {paused.pid} for 5 s",
              flush=True)
        os.killpg(paused.pid, signal.SIGSTOP)
        threading.Timer(5.0, _resume, (paused.pid,)).start()
        at(2.5)
        # Mid-launch, so the busiest node has running pods to evict.
        relaunches_before = _disruption_relaunches()
        drained, evicted, evicted_live = _drain_a_busy_node(sim, started)
        at(3)
        # The watcher's pool is killed, so there must be one: after the pause and the drain,
        # a lease may be between holders for a moment.
        holder = wait_for(lambda: _holder_pid(client, prefix), 30, "a watcher to kill")
        if holder:
            print(f"t={time.monotonic() - started:5.1f}s SIGKILL the watcher's worker",
                  flush=True)
            killed_at = time.monotonic()
            workers.kill(workers.owner_of(holder))
            wait_for(lambda: (_holder_pid(client, prefix) or holder) != holder, 60, "a takeover")
            takeover_s = time.monotonic() - killed_at
            workers.start(threads=4)
        at(4)
        if group is None:
            print(f"t={time.monotonic() - started:5.1f}s SIGKILL Redis, restart from AOF in 2 s",
                  flush=True)
            redis_server.kill()
            time.sleep(2)
            redis_server.start()
            # The next steps write to Redis themselves: wait until it has loaded its AOF.
            wait_for(lambda: _redis_ready(client), 30, "Redis to load its AOF")
        else:
            print(f"t={time.monotonic() - started:5.1f}s SIGKILL the Redis primary; the "
                  "sentinels promote its replica", flush=True)
            failed_at = time.monotonic()
            group.kill_primary()
            group.wait_for_failover()
            print(f"t={time.monotonic() - started:5.1f}s promoted after "
                  f"{time.monotonic() - failed_at:.1f}s", flush=True)
        at(5)
        print(f"t={time.monotonic() - started:5.1f}s API 429/503 on creates for 3 s; garbage "
              "and a forged launch in the queue", flush=True)
        sim.admin.set_faults(verbs={"create": {"error_429": 0.3, "error_503": 0.2}},
                             retry_after_s=1)
        forged = _inject_queue_garbage(client, prefix, settings)
        time.sleep(3)
        sim.admin.set_faults()
        before = sim.admin.stats()
        print(f"t={time.monotonic() - started:5.1f}s every watch dropped after 1 s, for 3 s",
              flush=True)
        sim.admin.set_faults(watch_drop_s=1.0)
        time.sleep(3)
        print(f"t={time.monotonic() - started:5.1f}s forced 410 Gone: watches dropped and "
              "the next resume refused as too old", flush=True)
        # As after compaction: the watcher's resume from its resourceVersion is Gone, so it
        # must relist (once: its watch from the list's resourceVersion is served).
        sim.admin.set_faults(watch_drop_s=0.3, expire_watches=1)
        with contextlib.suppress(WaitTimedOut):
            wait_for(lambda: sim.admin.stats().faults_injected["watch_410"] >= 1, 10,
                 "the forced 410", interval=0.1)
        time.sleep(0.5)  # the relist it causes
        sim.admin.set_faults()
        after = sim.admin.stats()
        watches = after.watches.total - before.watches.total
        gone = after.faults_injected["watch_410"]
        relists = after.requests.get("list", {}).get(200, 0) - before.requests.get(
            "list", {}).get(200, 0)
        quota_refused = _fill_quota_then_raise(sim, started)
        primary = (redis_server.host, redis_server.port) if group is None \
            else group.primary_address()
        assert primary is not None
        oom_refused = _refuse_writes_oom(primary, started)
        demoted = None
        if group is not None:
            # The primary killed at step 4 comes back (the sentinels make it a replica), then
            # a deliberate failover demotes the current primary under its connected clients.
            group.primary.start()
            demoted = primary
            promoted = group.fail_over()
            print(f"t={time.monotonic() - started:5.1f}s SENTINEL FAILOVER: {demoted[1]} "
                  f"demoted (writes to it answer READONLY), {promoted[1]} promoted",
                  flush=True)
        if not quick:
            at(6)
            print(f"t={time.monotonic() - started:5.1f}s executor abandoned; a new one starts",
                  flush=True)
            first.abandon()
            schedulers.append(Scheduler(env, "chaos-b"))
        engine = make_engine(fleet.database_url)

        def all_terminal() -> bool:
            with engine.connect() as conn:
                import sqlalchemy as sa

                left = conn.execute(sa.select(sa.func.count()).select_from(TaskInstance)
                                    .where(TaskInstance.state.in_(
                                        ["queued", "launched", "running"]))).scalar_one()
            return left == 0

        with contextlib.suppress(WaitTimedOut):
            wait_for(all_terminal, ALL_END_S + (settings.watcher.resync_seconds
                                               if several else 0),
                     "every task to end", interval=0.5)
        elapsed = time.monotonic() - started
        time.sleep(2)  # the last reports reach the buffers
        relaunched = _disruption_relaunches() - relaunches_before
        # Delete policy "always": every finished pod is deleted; none may be left behind.
        kubes = [KubeClient(simulator.api_client())
                 for simulator in (fleet.simulators.values() if several else [sim])]
        try:
            def left_pods() -> int:
                return sum(len(kube.list_pods(NAMESPACE).items) for kube in kubes)

            with contextlib.suppress(WaitTimedOut):
                wait_for(lambda: not left_pods(), 30, "every finished pod deleted",
                         interval=0.5)
            undeleted = left_pods()
        finally:
            for kube in kubes:
                kube.close()
        for scheduler in schedulers:
            scheduler.abandon()
        import sqlalchemy as sa

        with engine.connect() as conn:
            left_behind = conn.execute(sa.select(
                TaskInstance.task_id, TaskInstance.state, TaskInstance.attempt,
                TaskInstance.disruptions, TaskInstance.enqueued_at, TaskInstance.reason,
                TaskInstance.launch_id)
                .where(TaskInstance.state.in_(["queued", "launched", "running"]))
                .limit(10)).all()
            rows = conn.execute(sa.select(
                TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                TaskInstance.map_index, TaskInstance.try_number, TaskInstance.state,
                TaskInstance.cluster, TaskInstance.reason)).all()
        states = {tuple(r[:5]): TaskState(r[5]) for r in rows}
        # Tasks whose pod died with the killed cluster: failed as vanished, not wrongly.
        vanished = {tuple(r[:5]) for r in rows if several and r[6] == SECOND
                    and r[5] == TaskState.FAILED.value and "anish" in (r[7] or "")}
        stuck = collections.Counter(state.value for state in states.values()
                                    if not state.is_terminal)
        lost = sum(1 for k in expected if not states.get(k, TaskState.QUEUED).is_terminal)
        reasons = {tuple(r[:5]): r[7] for r in rows}
        wrongly = [(k, want) for k, want in expected.items()
                   if states.get(k) is not None and states[k].is_terminal and states[k] != want
                   and k not in vanished]
        wrong = len(wrongly)
        created = [c for c in sim.admin.creates() if c[1] == NAMESPACE]
        names = collections.Counter(name for _, _, name in created)
        duplicates = sum(n - 1 for n in names.values())
        across = recreated = 0
        if several:
            # The second cluster's two lives apart: its restart lost every pod, so a create
            # whose answer died with it is asked again (a GET, then 404) and made again
            # there. Two pods of one name never existed at once: not a duplicate.
            lives = [collections.Counter(name for _, namespace, name in creates
                                         if namespace == NAMESPACE)
                     for creates in (second_creates, fleet.simulators[SECOND].admin.creates())]
            duplicates += sum(n - 1 for life in lives for n in life.values())
            recreated = len(set(lives[0]) & set(lives[1]))
            second_names = lives[0] + lives[1]
            across = len(set(names) & set(second_names))
            duplicates += across
        reports: collections.Counter[Any] = collections.Counter()
        for scheduler in schedulers:
            reports.update(scheduler.terminal)
        double = sum(1 for n in reports.values() if n > 1)
        forged_launched = names.get(forged, 0)
        peak, peak_second = busiest_window([at for at, _, _ in created], 1.0)
        duplicate_at = sorted(at for at, _, name in created if names[name] > 1)
        limit_ok = peak <= 1.05 * rate
        takeover_ok = takeover_s == takeover_s and takeover_s <= lease + 2 + 1
        print(f"tasks {tasks}, rate {rate:g}/s, run {elapsed:.1f}s, pods created "
              f"{len(created)}")
        print(f"watch faults          {watches} watches opened, {gone} answered 410, "
              f"{relists} relists")
        print(f"lost tasks            {lost}" + (f" ({dict(stuck)})" if stuck else ""))
        print(f"duplicate pods        {duplicates}"
              + (f" ({across} in both clusters; {recreated} made again in {SECOND} after "
                 "its restart lost them, not counted)" if several else ""))
        if several:
            print(f"cluster {SECOND} killed     {len(vanished)} task(s) failed as vanished "
                  "with its pods (not counted as wrong)")
        print(f"double terminal       {double}")
        print(f"wrong outcomes        {wrong}")
        for k, want in wrongly[:10]:
            print(f"  {k[1]} try {k[4]}: {states[k].value}, not {want.value}: {reasons[k]}")
        print(f"forged launched       {forged_launched}")
        print(f"takeover              {takeover_s:.1f}s (lease {lease:g}s)")
        print(f"quota fault           {quota_refused} creates refused 403 exceeded quota")
        print(f"drain                 {evicted} pods evicted from {drained or 'no node'} "
              f"({evicted_live} not finished), {relaunched:.0f} relaunched without a retry")
        print(f"redis OOM             {oom_refused} writes refused"
              + (f"; READONLY after the failover from :{demoted[1]}" if demoted else ""))
        print(f"pods left undeleted   {undeleted}")
        print(f"peak creates / 1 s    {peak} at t={peak_second - wall_start:.1f}s "
              f"(any sliding window; limit {rate:g}, ≤ {1.05 * rate:.1f} wanted)")
        # A simulator starved of CPU stores creates in clumps: a peak over the limit with
        # a large lateness here is the API server's stall, seen in its own timestamps.
        lateness = sim.admin.stats().raw.get("cluster", {}).get("timer_lateness_max_ms")
        if lateness is not None:
            print(f"simulator stall       {lateness:.0f} ms at worst (its timers' lateness)")
        for task_id, state, attempt, disruptions, enqueued_at, reason, launch_id \
                in left_behind:
            sent = "unsent" if enqueued_at is None else f"sent t={enqueued_at - wall_start:.1f}s"
            print(f"  not ended: {task_id} {state} attempt {attempt} disruptions "
                  f"{disruptions} {sent}: {reason}; launch {launch_id} is "
                  f"{_where_in_redis(client, launch_id)}")
        if duplicate_at:
            print("pods of a duplicated name created at t=" + ", ".join(
                f"{t - wall_start:.1f}s" for t in duplicate_at[:20]))
        # The faults must have happened: a forced 410 that nobody met proves nothing, nor
        # does a drain that evicted no pod that was still to finish.
        faults_ok = gone >= 1 and relists >= 1 and evicted_live > 0
        correct = not (lost or duplicates or double or wrong or forged_launched or undeleted) \
            and faults_ok
        timely = limit_ok and takeover_ok
        # The --quick smoke (CI) fails on correctness only; timing is a goal of the full run,
        # printed here but not asserted on a shared CI machine.
        ok = correct and (timely or quick)
        print("chaos: " + ("all goals met" if correct and timely else
                           "correct; timing goals missed (not asserted in --quick)" if ok else
                           "GOALS MISSED"), flush=True)
        if not ok:
            _print_worker_complaints(workers.logs())
        return 0 if ok else 1


def _where_in_redis(client: Any, needle: str) -> str:
    """Every Redis key whose name or value mentions ``needle`` (a launch id): its launch
    record, and the queue, delay queue or unacked set where its message is held."""
    found = []
    try:
        for key in client.scan_iter(count=1000):
            if needle.encode() in key:  # its launch record, say
                found.append(key.decode(errors="replace"))
                continue
            kind = client.type(key)
            if kind == b"hash":
                values = list(client.hgetall(key).values())
            elif kind == b"string":
                values = [client.get(key)]
            elif kind == b"list":
                values = client.lrange(key, 0, -1)
            elif kind == b"set":
                values = list(client.smembers(key))
            elif kind == b"zset":
                values = client.zrange(key, 0, -1)
            else:
                continue
            if any(needle.encode() in (v or b"") for v in values):
                found.append(key.decode(errors="replace"))
    except Exception as exc:  # a diagnostic: say why it could not look
        return f"unknown ({exc})"
    return ", ".join(found) or "nowhere in Redis"


def _print_worker_complaints(logs: str, most: int = 60) -> None:
    """The workers' warnings and errors, each distinct line once (the last ``most``): a
    failed run in CI leaves nothing else to read, as the fleet's directory goes with it."""
    seen: dict[str, None] = {}
    for line in logs.splitlines():
        if any(word in line for word in ("WARNING", "ERROR", "CRITICAL", "Traceback")):
            # dramatiq's format: [time] [PID n] [thread] [logger] [LEVEL] message
            seen.setdefault(re.sub(r"^(\[[^\]]*\] ){3}", "", line)[:300], None)
    lines = list(seen)
    print(f"worker warnings and errors ({len(lines)} distinct, the last {most}):")
    for line in lines[-most:]:
        print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 tasks, shorter timeline")
    parser.add_argument("--tasks", type=int, default=None)
    parser.add_argument("--rate", type=float, default=None, help="launch rate, pods/s")
    parser.add_argument("--sentinel", action="store_true",
                        help="Redis as a Sentinel group (redis+sentinel:// URL); the Redis "
                             "fault is a failover instead of a restart from the AOF")
    parser.add_argument("--clusters", type=int, choices=(1, 2), default=1,
                        help="2: two clusters, the second's API server killed mid-run")
    args = parser.parse_args()
    tasks = args.tasks or (300 if args.quick else 2000)
    rate = args.rate or (20.0 if args.quick else 50.0)
    return run(tasks, rate, args.quick, args.sentinel, args.clusters)


if __name__ == "__main__":
    sys.exit(main())
