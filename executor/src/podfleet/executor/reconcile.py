"""Recovery after crashes: reconcile tasks against the cluster, adopt dead executors' tasks.

The metadata DB is the source of truth, so whatever Redis loses (stream entries, launch
messages) is rebuilt from the DB and one pod list per watched namespace. An executor that
stopped, or whose heartbeat expired, has its tasks, event streams and pods taken over by a
live one; the claim is a conditional UPDATE, so exactly one of several racing executors wins.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.events import EventKind, EventSource, TaskEvent
from podfleet.contracts.judgement import judge
from podfleet.contracts.naming import (
    EXECUTOR_LABEL,
    LAUNCH_ID_LABEL,
    MANAGED_SELECTOR,
    pod_name,
    safe_label_value,
)
from podfleet.contracts.states import TaskState
from podfleet.executor.batch import Applied, count_relaunch, record_change
from podfleet.executor.db import ACTIVE_STATES, ExecutorRecord, ExecutorState, TaskInstance
from podfleet.executor.db_clock import db_now
from podfleet.executor.repair import RepairContext
from podfleet.executor.rows import TASKS, rowcount
from podfleet.executor.streams import EventStreams
from podfleet.executor.transitions import Outcome, apply_event, fail, relaunch
from podfleet.kube.errors import KubeError, NotFound, Unreachable
from podfleet.monitoring.metrics import RelaunchCause

log = logging.getLogger("podfleet.executor")

RELABEL_THREADS = 8


class Reconciler:
    """Start-up and after-loss recovery of one executor's tasks.

    ``launch_waiting`` sends QUEUED tasks into the open slots; it belongs to the executor, as
    do the event ``streams`` and what the ``context`` holds.
    """

    def __init__(self, context: RepairContext, streams: EventStreams,
                 launch_waiting: Callable[[], int]) -> None:
        self.settings = context.settings
        self.executor_id = context.executor_id
        self._context = context
        self._streams = streams
        self._launch_waiting = launch_waiting

    def reconcile(self, *, redis_lost: bool = False) -> None:
        """Bring this executor's active tasks in line with the clusters: one DB query, one
        pod list per watched namespace of each configured cluster.

        A task whose pod exists takes the pod's state (a finished pod completes it). A QUEUED
        task with no pod is sent again under the same launch id (a message still in the broker
        then meets 409, not a second pod). With ``redis_lost`` (the stream, and with it any
        events about these tasks, is gone) a LAUNCHED task with no pod is relaunched and a
        RUNNING one is failed, since what happened to its pod can no longer be known.

        A task is looked for only in the cluster its row records (a QUEUED one, not placed
        yet, in every cluster). A task whose cluster cannot be reached is left as it is: it
        waits, and the next reconciliation or resync settles it once the cluster is back.
        A task whose cluster is no longer configured is reported, never dropped.
        """
        now = self._context.clock()
        found = self._context.pods.list_pods(MANAGED_SELECTOR)
        for cluster, why in found.unreachable.items():
            log.warning("reconciliation: cluster %s cannot be reached (%s); its tasks wait "
                        "until it is back", cluster, why)
        if not found.pods:  # no cluster answered, or no kubeconfig at all
            log.warning("reconciliation skipped, cannot list pods in any cluster")
            if redis_lost:
                self._resend_all_queued()
            return
        by_launch: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for cluster, pods in found.pods.items():
            for listed in pods:
                labels = (listed.get("metadata") or {}).get("labels") or {}
                launch_id = labels.get(LAUNCH_ID_LABEL)
                if launch_id:
                    by_launch.setdefault(launch_id, []).append((cluster, listed))
        result = Applied()
        held: Counter[str] = Counter()
        orphaned: Counter[str] = Counter()
        with self._context.sessions.begin() as session:
            rows = session.scalars(sa.select(TaskInstance).where(
                TaskInstance.executor_id == self.executor_id,
                TaskInstance.state.in_(ACTIVE_STATES)).with_for_update())
            for row in rows:
                placed = placed_cluster(row)
                if placed is not None and placed not in self._context.pods.clusters:
                    orphaned[placed] += 1
                    continue
                if placed is not None and placed not in found.pods:
                    held[placed] += 1
                    continue
                candidates = [(cluster, pod) for cluster, pod in by_launch.get(row.launch_id, ())
                              if placed is None or cluster == placed]
                owned = own_pod_in(row, candidates)
                if owned is not None:
                    event = event_from_pod(owned[1], row, self.executor_id,
                                           self.settings.watcher.fatal_container_reasons,
                                           cluster=owned[0])
                    outcome = apply_event(
                        row, event, now,
                        disruption_retries=self.settings.executor.disruption_retries).outcome
                    if outcome in (Outcome.APPLIED, Outcome.REQUEUED):
                        result.applied += 1
                        record_change(result, row, self.executor_id)
                        count_relaunch(result, event, outcome)
                elif row.state == TaskState.QUEUED.value:
                    row.enqueued_at = None  # resent below, within the open slots
                elif redis_lost and row.state == TaskState.LAUNCHED.value:
                    if relaunch(row, now, "pod not found after Redis lost its state"
                                ) is TaskState.QUEUED:
                        result.relaunches[RelaunchCause.POD_LOST] += 1
                    record_change(result, row, self.executor_id)
                elif redis_lost and row.state == TaskState.RUNNING.value:
                    fail(row, now, "pod vanished while running (found missing after Redis "
                                   "lost its state)")
                    record_change(result, row, self.executor_id)
        self._context.after_commit(result)
        for cluster, number in held.items():
            log.warning("reconciliation: %d task(s) on unreachable cluster %s left as they "
                        "are until it is back", number, cluster)
        for cluster, number in orphaned.items():
            log.error("reconciliation: %d unfinished task(s) are on cluster %s, which is no "
                      "longer configured: they are left as they are (configure the cluster "
                      "again to settle them, or revoke them)", number, cluster)
        log.info("executor %s reconciled against %d pod(s) in %d cluster(s): %d task(s) "
                 "updated", self.executor_id, found.count, len(found.pods), result.applied)
        self._launch_waiting()

    def _resend_all_queued(self) -> None:
        with self._context.sessions.begin() as session:
            session.execute(sa.update(TASKS).where(
                TASKS.c.executor_id == self.executor_id,
                TASKS.c.state == TaskState.QUEUED.value).values(enqueued_at=None))
        self._launch_waiting()

    def adopt_dead_executors(self, declared_dead: Iterable[str] = ()) -> list[str]:
        """Take over the tasks, event streams and pods of executors that are gone.

        "Gone" means stopped, or a heartbeat older than ``heartbeat_timeout_seconds``; a live
        executor is never adopted, unless its id is in ``declared_dead`` (its owner knows it
        died, e.g. Airflow after a scheduler job missed its heartbeats; if it still runs, it
        is fenced at its next heartbeat). The claim is one conditional UPDATE, so of several
        executors racing for the same dead one exactly one wins. Returns the adopted ids.
        """
        now = self._context.clock()
        # On the database's clock: a host whose clock is ahead must not see live ones as dead.
        cutoff = db_now() - self.settings.executor.heartbeat_timeout_seconds
        forced = sorted(set(declared_dead) - {self.executor_id})
        gone = sa.and_(
            ExecutorRecord.id != self.executor_id,
            sa.or_(ExecutorRecord.state == ExecutorState.STOPPED,
                   sa.and_(ExecutorRecord.state == ExecutorState.RUNNING,
                           sa.or_(ExecutorRecord.heartbeat_at < cutoff,
                                  ExecutorRecord.id.in_(forced)))))
        with self._context.sessions() as session:
            candidates = list(session.scalars(sa.select(ExecutorRecord.id).where(gone)))
        adopted: list[str] = []
        for dead in candidates:
            with self._context.sessions.begin() as session:
                claimed = rowcount(session.execute(
                    sa.update(ExecutorRecord).where(ExecutorRecord.id == dead, gone)
                    .values(state=ExecutorState.ADOPTED, adopted_by=self.executor_id)))
                if not claimed:
                    continue
                inherited = list(session.scalars(sa.select(ExecutorRecord.id).where(
                    ExecutorRecord.adopted_by == dead)))
                session.execute(sa.update(ExecutorRecord)
                                .where(ExecutorRecord.adopted_by == dead)
                                .values(adopted_by=self.executor_id))
                moved = rowcount(session.execute(
                    sa.update(TASKS).where(TASKS.c.executor_id == dead,
                                           TASKS.c.state.in_(ACTIVE_STATES))
                    .values(executor_id=self.executor_id, updated_at=now)))
            log.warning("executor %s adopted %d task(s) of dead executor %s",
                        self.executor_id, moved, dead)
            adopted.append(dead)
            for owner in (dead, *inherited):
                self._streams.add(owner, adopted_at=now)
        if adopted:
            self._streams.ensure_groups()
            self._relabel_pods(adopted)
        return adopted

    def _relabel_pods(self, previous_owners: list[str]) -> None:
        """Point adopted pods at this executor, so the watcher routes their events here."""
        values = ",".join(sorted({safe_label_value(o) for o in previous_owners}))
        found = self._context.pods.list_pods(f"{MANAGED_SELECTOR},{EXECUTOR_LABEL} in ({values})")
        for cluster, why in found.unreachable.items():  # their streams are drained all the same
            log.warning("cannot list adopted pods in cluster %s to relabel them: %s",
                        cluster, why)
        pods = [(cluster, pod) for cluster, listed in found.pods.items() for pod in listed]
        patch = {"metadata": {"labels": {EXECUTOR_LABEL: safe_label_value(self.executor_id)},
                              "annotations": {EXECUTOR_LABEL: self.executor_id}}}

        def relabel(placed: tuple[str, dict[str, Any]]) -> None:
            cluster, pod = placed
            meta = pod.get("metadata") or {}
            try:
                self._context.pods.client(cluster).patch_pod(meta.get("namespace", ""),
                                                     meta.get("name", ""), patch)
            except NotFound:
                pass  # gone meanwhile: nothing to relabel
            except (KubeError, Unreachable) as exc:
                log.warning("cannot relabel adopted pod %s: %s", meta.get("name"), exc)

        with concurrent.futures.ThreadPoolExecutor(RELABEL_THREADS) as pool:
            list(pool.map(relabel, pods))


def placed_cluster(row: TaskInstance) -> str | None:
    """The cluster ``row``'s current launch was placed in: the one it recorded; a row that
    left QUEUED without one was written before clusters existed, so the default cluster's;
    None for a QUEUED launch not placed yet (its pod may be in any cluster)."""
    if row.cluster:
        return row.cluster
    return None if row.state == TaskState.QUEUED.value else DEFAULT_CLUSTER


def own_pod_in(row: TaskInstance, candidates: Iterable[tuple[str, dict[str, Any]]]
               ) -> tuple[str, dict[str, Any]] | None:
    """:func:`own_pod` among pods of several clusters: the cluster and the pod, or None."""
    for cluster, pod in candidates:
        if own_pod(row, (pod,)) is not None:
            return cluster, pod
    return None


def own_pod(row: TaskInstance, candidates: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The pod made for ``row``'s launch among those with its launch-id label: the one under
    the launch's name (and the row's uid, once known); a copy with its labels is not it."""
    name = pod_name(row.key, row.launch_id)
    for pod in candidates:
        meta = pod.get("metadata") or {}
        if meta.get("name") == name and (row.pod_uid is None or meta.get("uid") == row.pod_uid):
            return pod
    return None


def event_from_pod(pod: dict[str, Any], row: TaskInstance, executor_id: str,
                   fatal_reasons: frozenset[str], *, cluster: str) -> TaskEvent:
    # A listed pod exists, so the verdict is never a requeue: always a state to move to.
    verdict = judge(pod, fatal_reasons)
    meta = pod.get("metadata") or {}
    return TaskEvent(
        key=row.key, launch_id=row.launch_id,
        executor_id=executor_id, kind=EventKind.STATE, source=EventSource.EXECUTOR,
        state=verdict.state, failure=verdict.failure, pod_name=meta.get("name"),
        namespace=meta.get("namespace"), pod_uid=meta.get("uid"), cluster=cluster)
