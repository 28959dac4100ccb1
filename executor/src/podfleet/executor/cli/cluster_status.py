"""``podfleet status``'s clusters: per configured cluster, its tasks pending and running,
whether its API answers, and who holds its watcher's lease.

Tasks are counted from the metadata DB by the cluster each row records (a QUEUED task is not
placed yet, so it is counted apart). A cluster that holds unfinished tasks but is no longer
configured is listed too, marked so: its tasks are orphaned until it is configured again or
they are revoked, and nothing drops them silently. Reachability is one ``GET /version`` per
cluster with a short timeout, all clusters at once; the lease holder is read from Redis
(the cluster's own lease key, ``RedisKeys.for_cluster``).
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from podfleet.contracts.clusters import DEFAULT_CLUSTER, ClusterSpec
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor.db import ACTIVE_STATES, TaskInstance
from podfleet.kube.client import KubeClient
from podfleet.kube.errors import KubeError, Unreachable

#: How long the reachability probe waits for each cluster's API.
PROBE_SECONDS = 2.0
#: The row of QUEUED tasks, which are placed only when a launcher creates their pod.
NOT_PLACED = "(not placed yet)"


def count_by_cluster(engine: sa.Engine, *, dag_id: str | None) -> dict[str, dict[str, int]]:
    """Unfinished tasks by the cluster their row records and state: ``waiting`` (QUEUED,
    under :data:`NOT_PLACED`), ``pending`` (LAUNCHED) and ``running``. A row without a
    cluster that left QUEUED is the default cluster's (written before clusters existed)."""
    query = sa.select(TaskInstance.cluster, TaskInstance.state, sa.func.count()).where(
        TaskInstance.state.in_(ACTIVE_STATES)).group_by(TaskInstance.cluster,
                                                        TaskInstance.state)
    if dag_id:
        query = query.where(TaskInstance.dag_id == dag_id)
    counts: dict[str, dict[str, int]] = {}
    with Session(engine) as session:
        for cluster, state, number in session.execute(query):
            if state == TaskState.QUEUED.value and not cluster:
                name = NOT_PLACED
            else:
                name = cluster or DEFAULT_CLUSTER
            column = {TaskState.QUEUED.value: "waiting", TaskState.LAUNCHED.value: "pending",
                      TaskState.RUNNING.value: "running"}[state]
            entry = counts.setdefault(name, {"waiting": 0, "pending": 0, "running": 0})
            entry[column] += number
    return counts


def probe(spec: ClusterSpec, timeout: float = PROBE_SECONDS) -> str | None:
    """Why ``spec``'s API cannot be reached (one line), or None when it answers."""
    try:
        client = KubeClient.from_cluster(spec, timeout_seconds=timeout)
    except Exception as exc:  # an unreadable kubeconfig, a missing context
        return f"cannot load its configuration: {exc}"
    try:
        client.request("GET", "/version")
        return None
    except (KubeError, Unreachable) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    finally:
        client.close()


def lease_holders(client: redis.Redis, prefix: str, clusters: list[str]
                  ) -> dict[str, str | None]:
    """Each cluster's watcher lease holder, or None when nobody holds it."""
    keys = RedisKeys(prefix)
    pipe = client.pipeline(transaction=False)
    for name in clusters:
        pipe.hget(keys.for_cluster(name).watcher_lease, "holder")
    holders: dict[str, str | None] = {}
    for name, raw in zip(clusters, pipe.execute(), strict=True):
        holders[name] = raw.decode() if isinstance(raw, bytes) else raw
    return holders


def cluster_report(counts: dict[str, dict[str, int]], configured: tuple[ClusterSpec, ...],
                   redis_client: redis.Redis | None, prefix: str, *,
                   probe_clusters: bool = True) -> list[dict[str, Any]]:
    """One entry per configured cluster (in order), then one per cluster that holds tasks but
    is not configured, then the tasks not placed yet."""
    names = [spec.name for spec in configured]
    reachability: dict[str, str | None] = {}
    if probe_clusters:
        with concurrent.futures.ThreadPoolExecutor(max(1, min(8, len(configured)))) as pool:
            reachability = dict(zip(names, pool.map(probe, configured), strict=True))
    holders: dict[str, str | None] = {}
    lease_error = None
    if redis_client is not None:
        try:
            holders = lease_holders(redis_client, prefix, names)
        except redis.RedisError as exc:
            lease_error = f"unknown (Redis: {type(exc).__name__})"
    zero = {"waiting": 0, "pending": 0, "running": 0}
    report: list[dict[str, Any]] = []
    for spec in configured:
        entry = counts.get(spec.name, zero)
        report.append({
            "cluster": spec.name, "configured": True, "labels": dict(spec.labels),
            "pending": entry["pending"], "running": entry["running"],
            "reachable": None if not probe_clusters else reachability[spec.name] is None,
            "error": reachability.get(spec.name),
            "watcher": lease_error or holders.get(spec.name)})
    for name in sorted(set(counts) - set(names) - {NOT_PLACED}):
        entry = counts[name]
        report.append({
            "cluster": name, "configured": False, "labels": {},
            "pending": entry["pending"], "running": entry["running"], "reachable": None,
            "error": (f"not configured: {entry['pending'] + entry['running']} unfinished "
                      "task(s) orphaned there (configure it again to settle them, or "
                      "revoke them)"),
            "watcher": None})
    if NOT_PLACED in counts:
        report.append({"cluster": NOT_PLACED, "configured": True, "labels": {},
                       "waiting": counts[NOT_PLACED]["waiting"], "pending": 0, "running": 0,
                       "reachable": None, "error": None, "watcher": None})
    return report


def render_clusters(clusters: list[dict[str, Any]]) -> list[str]:
    """The report's clusters as text lines: one per cluster, and one more saying why for a
    cluster that does not answer or is no longer configured."""
    if not clusters:
        return []
    lines = [f"clusters: {'':<19} {'pending':>8} {'running':>8}  api        watcher"]
    for c in clusters:
        if c["cluster"] == NOT_PLACED:
            lines.append(f"  {NOT_PLACED:<28} {c['waiting']:>8} queued, placed at launch")
            continue
        if not c["configured"]:
            api = "-"
        elif c["reachable"] is None:
            api = "not probed"
        else:
            api = "reachable" if c["reachable"] else "UNREACHABLE"
        watcher = c["watcher"] or ("-" if not c["configured"] else "NO LEASE HOLDER")
        lines.append(f"  {c['cluster']:<28} {c['pending']:>8} {c['running']:>8}  "
                     f"{api:<10} {watcher}")
        if c["error"]:
            lines.append(f"    {c['cluster']}: {c['error']}")
    return lines
