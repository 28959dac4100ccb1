"""``PodFleetExecutor``: Airflow's executor interface on podfleet's pipeline.

The scheduler hands over workloads; the scheduler's thread marks them running and hands the
whole burst to the executor's background thread
(:class:`~podfleet.executor.executor_thread.ExecutorThread`) in one step, whatever its size.
That thread turns them into podfleet submissions and QUEUED events, writes them in one batch
(one DB transaction, one Redis round trip) while podfleet's launcher pool creates the pods
under its cluster-wide rate limit. The same thread reads and applies podfleet's task events,
reads the finished tasks' states from Airflow's DB, keeps house, resyncs and reconciles;
``sync`` only drains what it has ready and turns it into Airflow executor events, following
the KubernetesExecutor's rules:

* a pod that succeeded does not mean the task did: the task writes its own state through
  the API server, so the event carries the state the DB holds (one batched query per batch
  of events, on the background thread);
* a failed pod is a FAILED event with podfleet's reason (exit code, OOMKilled, Evicted, …);
* a pod that failed before its task started (the task instance is still QUEUED) is replaced
  by a new pod without using one of the task's retries, up to ``pod_launch_failure_retries``.

A refused submission (invalid) becomes a FAILED event. A workload handed over but not yet
written when the scheduler dies leaves no trace in podfleet, so it is not adopted and Airflow
resets and resends it.

The constructor does no I/O (Airflow's API server builds executors only to read logs);
:meth:`start` connects.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.executors import workloads as af_workloads
from airflow.executors.base_executor import PARALLELISM, BaseExecutor
from airflow.utils.state import TaskInstanceState
from podfleet.airflow import compat
from podfleet.airflow.config import (
    LAUNCH_FAILURE_EXCLUDED_REASONS,
    LAUNCH_FAILURE_RETRIES,
    executor_id_for_job,
    executor_option,
    settings_from_airflow,
)
from podfleet.airflow.logs import task_logs, try_log
from podfleet.airflow.pod_config import PodTemplates, resolve_executor_config
from podfleet.airflow.workloads import (
    CALLBACK_DAG,
    airflow_metadata,
    launch_id_for,
    task_key,
    token_expiry,
    with_trace_context,
    workload_command,
)
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, ExecutorIdInUse, TaskSubmission
from podfleet.executor.executor_thread import (
    BUILDS_PER_PAUSE,
    Deferred,
    DeferredBatch,
    Events,
    ExecutorThread,
    Handed,
)
from podfleet.executor.logs import TaskLogs
from podfleet.executor.tracing import ENDPOINT_VARIABLES, TaskTracer
from podfleet.pods import InvalidExecutorConfig
from podfleet.settings import Settings

log = logging.getLogger("podfleet.airflow")


@dataclass(slots=True)
class Tracked:
    """What this executor remembers about one workload it runs (or adopted)."""

    airflow_key: Any
    launch_id: str
    submission: TaskSubmission | None = None   # None when adopted: cannot be re-sent
    external_executor_id: str | None = None
    ti_id: str | None = None
    pod_attempt: int = 1
    is_callback: bool = False


@dataclass(slots=True)
class Listed:
    """What the background thread listed for the scheduler since its last ``sync``: the
    workloads' podfleet keys and their QUEUED events, and those it could not list (by Airflow
    key, with the reason)."""

    tracked: dict[TaskKey, Tracked] = field(default_factory=dict)
    queued: dict[Any, tuple[Any, str]] = field(default_factory=dict)
    failed: dict[Any, str] = field(default_factory=dict)


#: A finished task's state read before its event reached the scheduler: none (no such row).
_UNREAD = object()


class PodFleetExecutor(BaseExecutor):
    """Runs every Airflow task instance as its own pod, through podfleet's worker pool."""

    supports_ad_hoc_ti_run = True
    supports_callbacks = True
    supports_multi_team = True
    pre_assigns_external_executor_id = True
    serve_logs = False
    is_local = False
    is_production = True
    #: How long :meth:`end` goes on reporting tasks that finish before it stops.
    end_wait_seconds = 5.0

    def __init__(self, parallelism: int = PARALLELISM, team_name: str | None = None) -> None:
        super().__init__(parallelism=parallelism, team_name=team_name)
        self.fleet: Executor | None = None
        self._thread: ExecutorThread | None = None
        self._tracked: dict[TaskKey, Tracked] = {}
        self._templates = PodTemplates()
        self._logs: TaskLogs | None = None
        self._retry_limit = 1
        self._excluded_reasons: frozenset[str] = frozenset({"Error"})
        # Shared with the background thread, under _listed_lock: what it listed, and the
        # Airflow DB states of the tasks whose pods finished.
        self._listed_lock = threading.Lock()
        self._listed = Listed()
        self._finished_states: dict[TaskKey, TaskInstanceState | None] = {}

    # --- configuration ----------------------------------------------------------------------

    def _conf_get(self, section: str, option: str) -> str | None:
        value = self.conf.get(section, option, fallback=None)
        return None if value is None else str(value)

    def podfleet_settings(self) -> Settings:
        """podfleet's settings for this executor: ``[podfleet]`` (per team), then
        ``PODFLEET_*`` variables; one podfleet executor id per scheduler job."""
        return settings_from_airflow(
            self._conf_get, executor_id=executor_id_for_job(self.job_id, self.team_name))

    def _read_requeue_settings(self) -> None:
        self._retry_limit = executor_option(LAUNCH_FAILURE_RETRIES, self._conf_get)
        text = executor_option(LAUNCH_FAILURE_EXCLUDED_REASONS, self._conf_get)
        self._excluded_reasons = frozenset(r.strip() for r in text.split(",") if r.strip())

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Register with podfleet's metadata DB, adopt what dead executors left, reconcile.

        An executor id a live executor holds (another scheduler of the same job id, or one
        not yet timed out) stops the scheduler with one logged line naming the holder
        (:class:`~podfleet.executor.ExecutorIdInUse`), not a traceback: ``SystemExit``, which
        Airflow's job runner takes as the end of the job, as after a SIGTERM.
        """
        settings = self.podfleet_settings()
        self._read_requeue_settings()
        fleet = Executor(settings, tracer=self._tracer())
        try:
            fleet.start()
        except ExecutorIdInUse as exc:
            fleet.close()
            log.error("podfleet executor not started: %s", exc)
            raise SystemExit(f"podfleet executor not started: {exc}") from None
        self.fleet = fleet
        self._thread = ExecutorThread(self.fleet, on_events=self._read_finished_states)
        self._thread.start()
        log.info("podfleet executor %s started for scheduler job %s",
                 settings.executor.executor_id, self.job_id)

    def _tracer(self) -> TaskTracer | None:
        """podfleet's spans go where Airflow's go: the ``OTEL_EXPORTER_OTLP_*`` variables
        (the fleet reads them itself), else ``[traces] otel_host``/``otel_port`` when
        ``otel_on``, as Airflow reads them."""
        if any(os.environ.get(name) for name in ENDPOINT_VARIABLES):
            return None
        if (self._conf_get("traces", "otel_on") or "").lower() not in ("true", "1", "t"):
            return None
        host, port = self._conf_get("traces", "otel_host"), self._conf_get("traces", "otel_port")
        if not host or not port:
            return None
        secure = (self._conf_get("traces", "otel_ssl_active") or "").lower() in ("true", "1")
        return TaskTracer.if_installed(
            f"{'https' if secure else 'http'}://{host}:{port}/v1/traces")

    def _require_fleet(self) -> Executor:
        if self.fleet is None:
            raise RuntimeError("PodFleetExecutor.start() was not called")
        return self.fleet

    def _require_thread(self) -> ExecutorThread:
        if self._thread is None:
            raise RuntimeError("PodFleetExecutor.start() was not called")
        return self._thread

    def end(self) -> None:
        """Report what finishes within :attr:`end_wait_seconds`, then stop; bounded.

        Airflow calls this on the scheduler's SIGTERM. Waiting stops early when Redis or the
        Kubernetes API is out, and every call to them fails fast meanwhile, so a scheduler
        whose Redis is gone still exits at once. The tasks still queued or running are
        logged; their pods go on and the next scheduler adopts them. Workloads handed to the
        background thread are written first (within the same bound); any still unwritten
        were never adoptable, and Airflow resends them.
        """
        if self.fleet is None or self._thread is None:
            return  # never started (start() refused): nothing to stop
        fleet, thread = self.fleet, self._thread
        fleet.begin_ending()
        deadline = time.monotonic() + self.end_wait_seconds
        while self.running:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            self.sync()
            if (not thread.slot_counts().active or fleet.sync_interrupted
                    or time.monotonic() >= deadline):
                break
        thread.stop(max(0.0, deadline - time.monotonic()))
        fleet.terminate()

    def terminate(self) -> None:
        """Stop at once; running pods go on and are adopted by the next scheduler."""
        if self._thread is not None:
            self._thread.stop(0.0)
        if self.fleet is not None:
            self.fleet.terminate()

    # --- workloads --------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Airflow's heartbeat, as the background thread's caller turn: the thread holds its
        CPU work back until the call returns, so the scheduler's loop does not wait on the
        GIL for the listing of a burst it has just handed over."""
        if self._thread is None:
            super().heartbeat()
            return
        with self._thread.caller_turn():
            super().heartbeat()

    def trigger_tasks(self, open_slots: int) -> None:
        """Hand every queued task over at once when there are slots for all of them (the
        usual case), without sorting or walking them here; else Airflow's own order (by
        priority, callbacks first) picks which go."""
        taken = compat.take_queued_tasks(self, open_slots)
        if taken is None:
            super().trigger_tasks(open_slots)
        elif taken:
            self._hand_over(taken)

    def _process_workloads(self, workload_items: Sequence[Any]) -> None:
        """Take the workloads out of Airflow's queues and hand them over."""
        taken = {}
        for workload in workload_items:
            compat.pop_queued(self, workload)
            taken[compat.workload_key(self, workload)] = workload
        self._hand_over(taken)

    def _hand_over(self, taken: dict[Any, Any]) -> None:
        """Mark the workloads running and hand them to the background thread as one batch.

        The scheduler's thread does nothing per workload here but add its key to
        ``running`` (what the scheduler must see at once: the executor has the task). The
        background thread lists each one's podfleet key, launch id and QUEUED event (with the
        pod name, which becomes the try's ``external_executor_id``), builds each pod's config
        and command, and writes them; a workload it refuses (an invalid ``executor_config``)
        becomes a FAILED event with the reason."""
        self.running.update(taken)
        self._require_thread().submit(DeferredBatch(
            len(taken), functools.partial(self._list, list(taken.values()))))

    def _list(self, workloads: list[Any]) -> list[Handed]:
        """On the background thread: each workload's podfleet key, launch id and QUEUED event,
        for the scheduler's next ``sync``; those revoked meanwhile (no longer in ``running``)
        are left out."""
        listed = Listed()
        handed: list[Handed] = []
        thread = self._require_thread()
        for n, workload in enumerate(workloads):
            if n and n % BUILDS_PER_PAUSE == 0:
                thread.pause_for_caller()
            try:
                key, tracked = self._tracked_for(workload)
            except Exception as exc:  # e.g. an id podfleet cannot name a pod after
                listed.failed[compat.workload_key(self, workload)] = f"podfleet: {exc}"
                continue
            listed.tracked[key] = tracked
            listed.queued[tracked.airflow_key] = (compat.queued_state(tracked.airflow_key),
                                                 pod_name(key, tracked.launch_id))
            handed.append(Deferred(key, functools.partial(self._build, workload, key,
                                                          tracked)))
        with self._listed_lock:
            # revoke_task takes a key out of running under this lock: it either sees the
            # key listed here (and takes it back) or this sees it revoked.
            kept = [h for h in handed
                    if listed.tracked[h.key].airflow_key in self.running]
            for item in kept:
                tracked = listed.tracked[item.key]
                self._listed.tracked[item.key] = tracked
                self._listed.queued[tracked.airflow_key] = listed.queued[tracked.airflow_key]
            self._listed.failed.update(
                (k, reason) for k, reason in listed.failed.items() if k in self.running)
        return kept

    def _tracked_for(self, workload: Any) -> tuple[TaskKey, Tracked]:
        """The workload's podfleet key and launch id (cheap: the scheduler's thread)."""
        if isinstance(workload, af_workloads.ExecuteCallback):
            callback_id = str(workload.callback.id)
            key = TaskKey(CALLBACK_DAG, callback_id, "callback", -1, 1)
            return key, Tracked(workload.key, launch_id_for(None, f"callback:{callback_id}"),
                                is_callback=True)
        ti = workload.ti
        return task_key(ti), Tracked(compat.workload_key(self, workload),
                                     launch_id_for(ti.external_executor_id, ti.id), None,
                                     ti.external_executor_id, str(ti.id))

    def _build(self, workload: Any, key: TaskKey, tracked: Tracked) -> TaskSubmission:
        """The workload's submission (on the background thread); kept on ``tracked`` so a
        pod that fails before its task starts can be replaced."""
        expiry = token_expiry(getattr(workload, "token", None))
        if tracked.is_callback:
            submission = TaskSubmission(key, workload_command(workload), deadline=expiry,
                                        launch_id=tracked.launch_id)
        else:
            ti = workload.ti
            labels, annotations = airflow_metadata(
                ti, scheduler_job_id=self.job_id, airflow_version=compat.airflow_version())
            try:
                config = with_trace_context(resolve_executor_config(
                    ti.executor_config, labels=labels, annotations=annotations,
                    templates=self._templates, mutation_hook=compat.pod_mutation_hook()), ti)
            except InvalidExecutorConfig as exc:
                raise InvalidExecutorConfig(f"Invalid executor_config: {exc}") from exc
            submission = TaskSubmission(key, workload_command(workload), queue=ti.queue,
                                        executor_config=config, deadline=expiry,
                                        priority=int(ti.priority_weight or 0),
                                        launch_id=tracked.launch_id)
        tracked.submission = submission
        return submission

    # --- sync -------------------------------------------------------------------------------

    def sync(self) -> None:
        """Turn what the background thread has ready into Airflow executor events.

        Raises :class:`~podfleet.executor.ExecutorFenced` once a newer executor took over."""
        ready = self._require_thread().take()
        # Listed after taking: whatever ready holds was listed before it (never the reverse).
        with self._listed_lock:
            listed, self._listed = self._listed, Listed()
        self._tracked.update(listed.tracked)
        self.event_buffer.update(listed.queued)
        for airflow_key, failure in listed.failed.items():
            log.error("podfleet refused %s: %s", airflow_key, failure)
            self.fail(airflow_key, info=failure)
        for refusal in ready.refusals:
            refused = self._tracked.pop(refusal.key, None)
            if refused is not None:
                log.error("podfleet refused %s: %s", refused.airflow_key, refusal.reason)
                self.fail(refused.airflow_key, info=refusal.reason)
        finished: list[tuple[TaskKey, Tracked, TaskState, str | None]] = []
        for key, (state, reason) in ready.events.items():
            tracked = self._tracked.get(key)
            if tracked is None:
                with self._listed_lock:
                    self._finished_states.pop(key, None)
                continue  # not ours (any more): revoked, or a different scheduler's
            if state is TaskState.RUNNING:
                self.running_state(tracked.airflow_key, pod_name(key, tracked.launch_id))
            elif state is TaskState.REVOKED:
                self._forget(key)
            elif state.is_terminal:
                finished.append((key, tracked, state, reason))
        if finished:
            self._report_finished(finished)

    def _read_finished_states(self, events: Events) -> None:
        """On the background thread, before the scheduler sees ``events``: the Airflow DB
        state of each task whose pod finished (one query), so ``sync`` need not query."""
        keys = [key for key, (state, _) in events.items()
                if state.is_terminal and key.dag_id != CALLBACK_DAG]
        if not keys:
            return
        found = compat.task_instance_states(keys)
        with self._listed_lock:
            for key in keys:
                self._finished_states[key] = found.get(key)

    def _report_finished(self, finished: list[tuple[TaskKey, Tracked, TaskState, str | None]]
                         ) -> None:
        db_states: dict[Any, TaskInstanceState | None] = {}
        unread: list[Tracked] = []
        with self._listed_lock:
            for key, tracked, _, _ in finished:
                if not tracked.is_callback:
                    state = self._finished_states.pop(key, _UNREAD)
                    if state is _UNREAD:
                        unread.append(tracked)
                    else:
                        db_states[tracked.airflow_key] = state
        if unread:  # the background thread's read failed: read them here
            db_states.update(compat.task_instance_states([t.airflow_key for t in unread]))
        for key, tracked, state, reason in finished:
            if tracked.is_callback:
                self._forget(key)
                if state is TaskState.SUCCESS:
                    self.success(tracked.airflow_key)
                else:
                    self.fail(tracked.airflow_key, info=reason)
                continue
            ti_state = db_states.get(tracked.airflow_key)
            if state is TaskState.FAILED and self._requeue_before_start(key, tracked, ti_state,
                                                                        reason):
                continue
            self._forget(key)
            if tracked.airflow_key not in self.running:
                continue
            if state is TaskState.FAILED:
                self.fail(tracked.airflow_key, info=reason)
            else:
                self.change_state(tracked.airflow_key, ti_state, None)

    def _requeue_before_start(self, key: TaskKey, tracked: Tracked,
                              ti_state: TaskInstanceState | None, reason: str | None) -> bool:
        """Replace a pod that failed before its task started; True when it was replaced."""
        if ti_state != TaskInstanceState.QUEUED or tracked.submission is None:
            return False
        container_reason = (reason or "").split(":")[0].split(" ")[0]
        if container_reason in self._excluded_reasons:
            return False
        limit = self._retry_limit
        if limit == 0 or (limit > 0 and tracked.pod_attempt > limit):
            return False
        tracked.pod_attempt += 1
        launch_id = launch_id_for(tracked.external_executor_id, tracked.ti_id,
                                  tracked.pod_attempt)
        tracked.submission = dataclasses.replace(tracked.submission, launch_id=launch_id)
        tracked.launch_id = launch_id
        log.warning("pod for %s failed before the task started (%s); replacing it "
                    "(pod attempt %d), no task retry used", tracked.airflow_key, reason,
                    tracked.pod_attempt)
        # A refusal comes back as a FAILED event through the next sync.
        self._require_thread().submit([tracked.submission])
        return True

    def _forget(self, key: TaskKey) -> None:
        self._tracked.pop(key, None)

    # --- revoke and adoption ----------------------------------------------------------------

    def revoke_task(self, *, ti: Any) -> None:
        """Delete the task's pod and forget it; never raises, adds no event (Airflow's rule)."""
        key = task_key(ti)
        airflow_key = compat.ti_key(self, ti)
        self._forget(key)
        with self._listed_lock:  # see _list
            self.running.discard(airflow_key)
            self._listed.tracked.pop(key, None)
            self._listed.queued.pop(airflow_key, None)
            self._listed.failed.pop(airflow_key, None)
        compat.pop_queued_key(self, airflow_key)
        # The background thread revokes it (after any submit of it handed over before).
        self._require_thread().revoke(key)

    def try_adopt_task_instances(self, tis: Sequence[Any]) -> Sequence[Any]:
        """Adopt tries that podfleet still runs or will launch; return the others.

        The dead scheduler jobs' podfleet executors are adopted first (Airflow has declared
        them dead), so their tasks, event streams and pods become this executor's. A try is
        adopted when podfleet holds an unfinished launch for it whose launch id or pod name
        is the try's ``external_executor_id``; a try with neither pod nor launch message is
        returned, and Airflow resets it.
        """
        dead = {executor_id_for_job(ti.queued_by_job_id, self.team_name)
                for ti in tis if ti.queued_by_job_id is not None}
        with self._require_thread().using_fleet() as fleet:
            fleet.adopt_dead_executors({d for d in dead if d})
            active = fleet.active_tries([task_key(ti) for ti in tis])
        not_adopted = []
        for ti in tis:
            key = task_key(ti)
            found = active.get(key)
            eid = ti.external_executor_id
            if found is None or eid not in (found.pod_name, found.launch_id,
                                            launch_id_for(eid, ti.id)):
                not_adopted.append(ti)
                continue
            airflow_key = compat.ti_key(self, ti)
            self._tracked[key] = Tracked(airflow_key, found.launch_id, None, eid, str(ti.id))
            self.running.add(airflow_key)
        if len(not_adopted) < len(tis):
            log.info("adopted %d task instance(s)", len(tis) - len(not_adopted))
        return not_adopted

    # --- logs -------------------------------------------------------------------------------

    def get_task_log(self, ti: Any, try_number: int) -> tuple[list[str], list[str]]:
        """The try's log from its pod (running) or podfleet's archive (pod deleted)."""
        messages, logs = try_log(self._task_logs(), ti, try_number)
        return messages, logs or [""]

    def _task_logs(self) -> TaskLogs:
        if self._logs is None:
            self._logs = task_logs(self.podfleet_settings())
        return self._logs

    # --- CLI --------------------------------------------------------------------------------

    @staticmethod
    def get_cli_commands() -> list[Any]:
        from podfleet.airflow.cli import command_group

        return [command_group()]

