"""The periodic resync: a level-triggered check of every unfinished task against its pod.

Pod events reach the executor by one edge-triggered path (watch → watcher → stream → sync).
An event lost anywhere on it (a refused Redis write, a bug) would leave its task LAUNCHED or
RUNNING for good. Like Kubernetes' own controllers, the executor therefore also compares
state with the cluster periodically and repairs the difference:

* a pod that ended while its task did not: the pod's verdict (``judgement.judge``, the one
  comparison reconciliation uses too) is applied;
* a LAUNCHED or RUNNING task whose pod is gone: requeued if it never ran, failed
  ("PodVanished") if it did, as reconciliation does;
* a finished pod of a finished task still there long after the delete policy wanted it gone:
  deleted, once.

Each repair is counted in ``podfleet_resync_repairs_total{kind}``: every one is an event
lost somewhere. The work is spread out: a pass lists this executor's pods (label-selected)
in each configured cluster one page per step, the steps spaced so that a pass takes about half of
``PODFLEET_RESYNC_SECONDS``, and a pass starts every half period; so a pod is looked at at
least twice per period, and each step costs one list call and one indexed query. A
cluster that cannot be listed is skipped for the rest of the pass, and its tasks are not
judged missing: they wait until a pass sees the cluster again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.judgement import judge
from podfleet.contracts.naming import (
    EXECUTOR_LABEL,
    LAUNCH_ID_LABEL,
    MANAGED_SELECTOR,
    safe_label_value,
)
from podfleet.contracts.pod_status import finished_at
from podfleet.contracts.states import TaskState
from podfleet.executor.batch import Applied, count_relaunch, record_change
from podfleet.executor.db import ACTIVE_STATES, TaskInstance
from podfleet.executor.pods import PodRef
from podfleet.executor.reconcile import event_from_pod, own_pod, placed_cluster
from podfleet.executor.repair import RepairContext
from podfleet.executor.transitions import Outcome, apply_event, fail, relaunch
from podfleet.kube.errors import Gone, KubeError, Unreachable
from podfleet.monitoring.metrics import RESYNC_DURATION, RESYNC_REPAIRS, ResyncRepair, preinitialise

log = logging.getLogger("podfleet.executor")

PAGE_SIZE = 500
#: A task whose pod is missing is checked again with one GET before it is repaired; at most
#: this many such checks per step (normally there are none).
VANISHED_CHECKS_PER_STEP = 100
#: Longest a repair waits for an event that may still be on its way (shorter periods wait a
#: quarter of the period).
MAX_GRACE_SECONDS = 30.0


@dataclass(slots=True)
class _Pass:
    """One sweep over this executor's pods, a page per step."""

    started: float  # wall clock: tasks launched before it must have a pod in the list
    scopes: list[tuple[str, str | None]]  # (cluster, namespace or None for all)
    page_interval: float
    token: str | None = None
    seen: set[str] = field(default_factory=set)
    # Clusters this pass could not list in full: their tasks are not judged missing.
    skipped: set[str] = field(default_factory=set)
    pages: int = 0
    work_seconds: float = 0.0


class Resync:
    """Runs the resync a step at a time, from the executor's ``sync``.

    ``check_owner`` raises when this executor was fenced, so only the owner of the tasks
    repairs them (every query is limited to this executor's rows as well).
    """

    def __init__(self, context: RepairContext, check_owner: Callable[[], None],
                 page_size: int = PAGE_SIZE) -> None:
        settings = self.settings = context.settings
        #: Pods per list call (the benchmark and tests use small pages to see the paging).
        self.page_size = page_size
        self.executor_id = context.executor_id
        self.period = settings.watcher.resync_seconds
        self.grace = min(MAX_GRACE_SECONDS, self.period / 4)
        self.selector = (f"{MANAGED_SELECTOR},"
                         f"{EXECUTOR_LABEL}={safe_label_value(self.executor_id)}")
        self._context = context
        self._check_owner = check_owner
        self._pass: _Pass | None = None
        self._next_pass_at = context.clock() + self.period / 2
        self._next_step_at = 0.0
        #: launch id -> (cluster, namespace, name, checked-again-after) of tasks whose pod
        #: was missing.
        self._missing: dict[str, tuple[str, str, str, float]] = {}
        preinitialise(RESYNC_REPAIRS, kind=ResyncRepair)

    def step(self) -> None:
        """Do the next bit of resync work if it is due: one page of a pass, or the pass's
        end, or the re-check of pods found missing. Never raises for an API outage."""
        if not self.period:
            return
        now = self._context.clock()
        if now < self._next_step_at:
            return
        self._check_owner()
        began = time.perf_counter()
        try:
            if self._missing:
                self._check_missing(now)
            if self._pass is None:
                if now < self._next_pass_at:
                    return
                self._pass = self._start_pass(now)
            current = self._pass
            self._next_step_at = now + current.page_interval
            if current.scopes:
                self._page(current, now)
            else:
                self._end_pass(current, now)
        except (KubeError, Unreachable) as exc:
            log.warning("resync of executor %s paused: %s", self.executor_id, exc)
            self._next_step_at = now + min(self.period / 10, 30.0)
        finally:
            if self._pass is not None:
                self._pass.work_seconds += time.perf_counter() - began

    # --- a pass -------------------------------------------------------------------------

    def _start_pass(self, now: float) -> _Pass:
        with self._context.sessions() as session:
            active = session.scalar(sa.select(sa.func.count()).select_from(TaskInstance).where(
                TaskInstance.executor_id == self.executor_id,
                TaskInstance.state.in_(ACTIVE_STATES))) or 0
        scopes = [(cluster, namespace) for cluster in self._context.pods.clusters
                  for namespace in self._context.pods.scopes(cluster)]
        pages = len(scopes) * max(1, math.ceil(active / self.page_size)) + 1
        return _Pass(started=now, scopes=scopes, page_interval=self.period / 2 / pages)

    def _page(self, current: _Pass, now: float) -> None:
        cluster, scope = current.scopes[0]
        try:
            page = self._context.pods.client(cluster).list_pod_page(
                scope, label_selector=self.selector, page_size=self.page_size,
                continue_token=current.token)
        except Gone:  # the continue token expired: list this scope again from its start
            current.token = None
            return
        except (KubeError, Unreachable) as exc:
            log.warning("resync: cluster %s cannot be listed (%s); its tasks wait for a "
                        "later pass", cluster, exc)
            current.skipped.add(cluster)
            current.token = None
            current.scopes = [s for s in current.scopes if s[0] != cluster]
            return
        current.pages += 1
        current.token = (page.get("metadata") or {}).get("continue") or None
        if current.token is None:
            current.scopes.pop(0)
        by_launch: dict[str, list[dict[str, Any]]] = {}
        for pod in page.get("items") or []:
            labels = (pod.get("metadata") or {}).get("labels") or {}
            launch_id = labels.get(LAUNCH_ID_LABEL)
            if launch_id:
                by_launch.setdefault(launch_id, []).append(pod)
        if by_launch:
            self._compare(cluster, by_launch, current, now)

    def _compare(self, cluster: str, by_launch: dict[str, list[dict[str, Any]]],
                 current: _Pass, now: float) -> None:
        fatal = self.settings.watcher.fatal_container_reasons
        policy = self.settings.pods.delete_policy
        # A pod kept past its delete by this much: the watcher's relist had its chance too.
        undeleted_after = self.settings.pods.delete_delay_seconds + self.period + self.grace
        result = Applied()
        undeleted: list[PodRef] = []
        with self._context.sessions.begin() as session:
            rows = session.scalars(sa.select(TaskInstance).where(
                TaskInstance.executor_id == self.executor_id,
                TaskInstance.launch_id.in_(list(by_launch))).with_for_update())
            for row in rows:
                if placed_cluster(row) not in (None, cluster):
                    continue  # not the row's cluster: not the launch's pod
                pod = own_pod(row, by_launch.get(row.launch_id, ()))
                if pod is None:
                    continue
                current.seen.add(row.launch_id)
                meta = pod.get("metadata") or {}
                verdict = judge(pod, fatal)
                if not verdict.state.is_terminal:
                    continue
                ended = finished_at(pod) or now
                if row.state in ACTIVE_STATES:
                    if now - ended < self.grace:
                        continue  # its event may be on its way
                    was = row.state
                    event = event_from_pod(pod, row, self.executor_id, fatal,
                                           cluster=cluster)
                    outcome = apply_event(
                        row, event, now,
                        disruption_retries=self.settings.executor.disruption_retries).outcome
                    if outcome in (Outcome.APPLIED, Outcome.REQUEUED):
                        record_change(result, row, self.executor_id)
                        count_relaunch(result, event, outcome)
                        RESYNC_REPAIRS.labels(kind=ResyncRepair.POD_FINISHED).inc()
                        log.warning("resync: task %s was %s while its pod %s had ended; "
                                    "now %s", row.key, was, meta.get("name"), row.state)
                elif (not meta.get("deletionTimestamp") and now - ended >= undeleted_after
                      and policy.deletes(row.task_state)):
                    undeleted.append(PodRef(cluster, str(meta.get("namespace") or ""),
                                            str(meta.get("name") or ""), meta.get("uid")))
        self._context.after_commit(result)
        if undeleted:
            RESYNC_REPAIRS.labels(kind=ResyncRepair.POD_NOT_DELETED).inc(len(undeleted))
            log.warning("resync: deleting %d finished pod(s) the delete policy wanted gone",
                        len(undeleted))
            self._context.pods.delete_pods(undeleted, once=True)

    def _end_pass(self, current: _Pass, now: float) -> None:
        """Note the LAUNCHED and RUNNING tasks whose pod the pass did not see: each is checked
        once more, after the grace, before it is repaired."""
        with self._context.sessions() as session:
            candidates = session.execute(
                sa.select(TaskInstance.launch_id, TaskInstance.pod_namespace,
                          TaskInstance.pod_name, TaskInstance.cluster)
                .where(TaskInstance.executor_id == self.executor_id,
                       TaskInstance.state.in_((TaskState.LAUNCHED.value,
                                               TaskState.RUNNING.value)),
                       TaskInstance.launched_at < current.started - self.grace)).all()
        for launch_id, namespace, name, recorded in candidates:
            cluster = recorded or DEFAULT_CLUSTER
            if (launch_id not in current.seen and name and cluster in self._context.pods.clusters
                    and cluster not in current.skipped):
                self._missing[launch_id] = (
                    cluster, namespace or self.settings.kubernetes.namespace, name,
                    now + self.grace)
        RESYNC_DURATION.observe(current.work_seconds)
        log.debug("resync pass of executor %s: %d page(s), %d pod(s) seen, %.3fs of work",
                  self.executor_id, current.pages, len(current.seen), current.work_seconds)
        self._pass = None
        self._next_pass_at = current.started + self.period / 2

    # --- tasks whose pod was missing ------------------------------------------------------

    def _check_missing(self, now: float) -> None:
        due = [(launch_id, ref) for launch_id, ref in self._missing.items() if ref[3] <= now]
        vanished: list[str] = []
        for launch_id, (cluster, namespace, name, _) in due[:VANISHED_CHECKS_PER_STEP]:
            try:
                gone = self._context.pods.client(cluster).get_pod(namespace, name) is None
            except (KubeError, Unreachable) as exc:
                # The cluster went away meanwhile: nothing is known, nothing is repaired.
                log.warning("resync: cannot check pod %s in cluster %s: %s", name, cluster,
                            exc)
                gone = False
            if gone:
                vanished.append(launch_id)
            self._missing.pop(launch_id, None)
        if not vanished:
            return
        result = Applied()
        with self._context.sessions.begin() as session:
            rows = session.scalars(sa.select(TaskInstance).where(
                TaskInstance.executor_id == self.executor_id,
                TaskInstance.launch_id.in_(vanished),
                TaskInstance.state.in_((TaskState.LAUNCHED.value, TaskState.RUNNING.value)))
                .with_for_update())
            for row in rows:
                if row.state == TaskState.LAUNCHED.value:
                    relaunch(row, now, "pod vanished before it ran (found by resync)")
                else:
                    fail(row, now, "PodVanished: pod gone while running (found by resync)")
                record_change(result, row, self.executor_id)
                RESYNC_REPAIRS.labels(kind=ResyncRepair.POD_VANISHED).inc()
                log.warning("resync: task %s lost its pod; now %s", row.key, row.state)
        self._context.after_commit(result)
