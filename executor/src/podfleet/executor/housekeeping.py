"""Periodic chores of ``sync`` that keep tasks from waiting forever on something lost.

Tasks sent but still podless past ``queued_timeout_seconds`` (a lost launch message, a
launcher that died mid-batch) are relaunched or failed; tasks whose pod never starts fail
past ``pending_timeout_seconds`` with the pod's reason; and a watcher is started when none
holds its lease, since without one no pod event reaches any executor.
"""

from __future__ import annotations

import logging

import dramatiq
import redis
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.orm import Session, sessionmaker

from podfleet.broker import WATCH_ACTOR_NAME, WATCH_QUEUE
from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.naming import pod_name
from podfleet.contracts.pod_status import pending_reason
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor.batch import Applied, record_change
from podfleet.executor.db import TaskInstance
from podfleet.executor.pods import ExecutorPods, PodRef
from podfleet.executor.transitions import fail, relaunch
from podfleet.kube.errors import KubeError, Unreachable
from podfleet.monitoring.metrics import RelaunchCause
from podfleet.pods import task_namespace
from podfleet.settings import Settings

log = logging.getLogger("podfleet.executor")


def expire_stuck_queued(sessions: sessionmaker[Session], settings: Settings,
                        executor_id: str, now: float) -> Applied | None:
    """Relaunch (new launch id) or fail tasks sent but still podless past the timeout.

    A task whose launch waits on a full ResourceQuota (``waiting_reason``) always fails,
    with that reason: relaunching it would only join the same wait.

    Returns what changed, for the caller to act on after commit (None: no timeout set).
    """
    timeout = settings.executor.queued_timeout_seconds
    if not timeout:
        return None
    relaunching = settings.executor.queued_timeout_action.value == "relaunch"
    result = Applied()
    with sessions.begin() as session:
        stuck = session.scalars(sa.select(TaskInstance).where(
            TaskInstance.executor_id == executor_id,
            TaskInstance.state == TaskState.QUEUED.value,
            TaskInstance.enqueued_at < now - timeout).with_for_update())
        for row in stuck:
            reason = f"queued {timeout:g}s without a pod"
            # The old launch's message may still create its pod: remove it if it does.
            # It was not placed: it may be in any cluster (``cluster`` None: all of them).
            result.pods_to_delete.append(PodRef(
                None, task_namespace(row.executor_config or {}, settings.kubernetes.namespace),
                pod_name(row.key, row.launch_id), None))
            if row.waiting_reason:
                # Waiting on a full quota: a relaunch would only wait again. It fails with
                # the quota's own message.
                fail(row, now, f"queued {timeout:g}s {row.waiting_reason}")
            elif relaunching:
                if relaunch(row, now, reason) is TaskState.QUEUED:
                    result.relaunches[RelaunchCause.QUEUED_TIMEOUT] += 1
            else:
                fail(row, now, f"{reason} (PODFLEET_QUEUED_TIMEOUT_ACTION=fail)")
            if row.task_state.is_terminal:
                record_change(result, row, executor_id)
            log.warning("task %s %s: %s", row.key, row.state, row.reason)
    return result


PENDING_CHECKS_PER_TICK = 100


def expire_stuck_pending(sessions: sessionmaker[Session], settings: Settings,
                         executor_id: str, now: float, pods: ExecutorPods
                         ) -> Applied | None:
    """Fail tasks whose pod has stayed Pending past ``pending_timeout_seconds``.

    The watcher fails a Pending pod only for the waiting reasons it is told are fatal; any
    other way of never starting (unschedulable, a reason missing from that list, a kubelet
    that never reports) would leave the task LAUNCHED forever. The pod is read first, so the
    task fails with its reason, and deleted after commit. Returns None when no timeout is set.
    """
    timeout = settings.executor.pending_timeout_seconds
    if not timeout:
        return None
    with sessions() as session:
        candidates = session.execute(
            sa.select(TaskInstance.launch_id, TaskInstance.pod_namespace,
                      TaskInstance.pod_name, TaskInstance.cluster)
            .where(TaskInstance.executor_id == executor_id,
                   TaskInstance.state == TaskState.LAUNCHED.value,
                   TaskInstance.launched_at < now - timeout)
            .limit(PENDING_CHECKS_PER_TICK)).all()
    if not candidates:
        return None
    reasons: dict[str, str] = {}
    for launch_id, namespace, name, cluster in candidates:
        if not name:
            continue
        try:
            pod = pods.client(cluster or DEFAULT_CLUSTER).get_pod(
                namespace or settings.kubernetes.namespace, name)
        except (KeyError, KubeError, Unreachable) as exc:
            log.warning("cannot read pending pod %s in cluster %s: %s", name,
                        cluster or DEFAULT_CLUSTER, exc)
            continue
        phase = ((pod or {}).get("status") or {}).get("phase")
        if phase in (None, "Pending"):
            reasons[launch_id] = pending_reason(pod)
    result = Applied()
    if not reasons:
        return result
    with sessions.begin() as session:
        rows = session.scalars(sa.select(TaskInstance).where(
            TaskInstance.launch_id.in_(list(reasons)),
            TaskInstance.state == TaskState.LAUNCHED.value).with_for_update())
        for row in rows:
            fail(row, now, f"pending {timeout:g}s without starting: {reasons[row.launch_id]}")
            if row.pod_name:
                result.pods_to_delete.append(PodRef(
                    row.cluster or DEFAULT_CLUSTER,
                    row.pod_namespace or settings.kubernetes.namespace, row.pod_name,
                    row.pod_uid))
            record_change(result, row, executor_id)
            log.warning("task %s failed: %s", row.key, row.reason)
    return result


def ensure_watcher(redis_client: redis.Redis, broker: RedisBroker, keys: RedisKeys,
                   settings: Settings, executor_id: str) -> None:
    """Start a watcher of each cluster whose lease nobody holds: one kick per cluster per
    lease period fleet-wide (the actor takes the cluster's name)."""
    for cluster in settings.clusters.names:
        own = keys.for_cluster(cluster)
        try:
            if redis_client.exists(own.watcher_lease):
                continue
            ttl_ms = max(1, int(settings.watcher.lease_seconds * 1000))
            if not redis_client.set(own.watcher_kick, executor_id, nx=True, px=ttl_ms):
                continue  # another executor or worker kicked it within this lease period
            # The default cluster's message names none, as workers from before clusters
            # take it.
            args = () if cluster == DEFAULT_CLUSTER else (cluster,)
            broker.enqueue(dramatiq.Message(
                queue_name=WATCH_QUEUE, actor_name=WATCH_ACTOR_NAME, args=args,
                kwargs={}, options={}))
            log.info("no watcher holds the lease of cluster %s: sent a start message",
                     cluster)
        except redis.RedisError as exc:
            log.warning("cannot check the watcher lease of cluster %s: %s", cluster, exc)
            return
