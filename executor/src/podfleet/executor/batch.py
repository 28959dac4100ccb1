"""Applying a batch of task events to their rows: one SELECT, the state machine, one UPDATE.

No row is locked while a batch is computed. Each row's UPDATE is guarded by what it was
computed from, so a concurrent writer (a revoke, another executor applying the same events,
an adoption) makes the batch roll back and be computed again from fresh rows. What a
transaction changed is collected in an :class:`Applied`, acted on only after it committed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from podfleet.contracts.events import EventKind, TaskEvent
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.states import TaskState
from podfleet.executor.db import TaskInstance, TaskRow
from podfleet.executor.pods import PodRef
from podfleet.executor.registry import Registration
from podfleet.executor.rows import LostRace, select_task_rows, write_task_rows
from podfleet.executor.transitions import Outcome, apply_event
from podfleet.monitoring.metrics import DisruptionReason, RelaunchCause

log = logging.getLogger("podfleet.executor")

EventInfo = str | None
# A batch whose guarded UPDATE lost a race is read and applied again this many times in
# all before its entries are left for the next sync.
APPLY_ATTEMPTS = 3


@dataclass(slots=True)
class Applied:
    """What a transaction changed, acted on only after it committed (``_after_commit``)."""

    buffer: dict[TaskKey, tuple[TaskState, EventInfo]] = field(default_factory=dict)
    # Pods to delete whether or not they exist yet (revoke, stuck QUEUED) ...
    pods_to_delete: list[PodRef] = field(default_factory=list)
    # ... and pods that reported for a launch nobody wants: one delete each.
    stale_pods: list[PodRef] = field(default_factory=list)
    # Terminal states applied: (state, submitted at, finished at), wall clock.
    finished: list[tuple[TaskState, float, float]] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    # Disrupted pods by DisruptionReason, and relaunches by RelaunchCause (for the metrics).
    disruptions: Counter[str] = field(default_factory=Counter)
    relaunches: Counter[str] = field(default_factory=Counter)
    applied: int = 0
    ignored: int = 0


def record_change(result: Applied, row: TaskInstance | TaskRow, executor_id: str, *,
                  observe: bool = True) -> None:
    """Put the row's new state in the event buffer (after commit) and in the metrics."""
    state = row.task_state
    if row.executor_id == executor_id and (
            state is TaskState.RUNNING or state.is_terminal):
        result.buffer[row.key] = (state, row.reason)
    if observe and state.is_terminal and row.finished_at is not None:
        result.finished.append((state, row.submitted_at, row.finished_at))


def count_relaunch(result: Applied, event: TaskEvent, outcome: Outcome) -> None:
    """Count a disruption the event reported, and the relaunch it (or a requeue) caused."""
    disruption = event.failure.disruption if event.failure is not None else None
    if disruption:
        result.disruptions[DisruptionReason.of(disruption)] += 1
    if outcome is Outcome.REQUEUED:
        result.relaunches[RelaunchCause.DISRUPTION if disruption
                          else RelaunchCause.DELETED_BEFORE_START] += 1


class EventBatches:
    """Applies batches of one executor's events to the metadata DB."""

    def __init__(self, engine: Engine, registration: Registration,
                 default_namespace: str, disruption_retries: int) -> None:
        self.engine = engine
        self._disruption_retries = disruption_retries
        self.executor_id = registration.executor_id
        self._registration = registration
        self._default_namespace = default_namespace

    def apply(self, events: list[TaskEvent], now: float) -> Applied | None:
        """Apply ``events`` to their rows in one transaction (state machine, idempotent).

        One SELECT reads the batch's rows (by launch id, as plain :class:`TaskRow` data),
        the state machine runs in Python, and one bulk UPDATE writes back the rows that
        changed (see :func:`~podfleet.executor.rows.write_task_rows`). No row is locked while
        the batch is computed: each UPDATE is guarded by the launch id, state and owner it
        was computed from, and when another writer (a revoke, an executor applying the same
        events, an adoption) changed a row in between, the whole batch is rolled back and
        computed again from fresh rows.
        Returns None when that kept happening (the entries are then read again next sync).
        Raises :class:`~podfleet.executor.registry.ExecutorFenced` when the race was lost to
        an executor adopting this one's rows, leaving the entries unacknowledged for the
        adopter.
        """
        if not events:
            return Applied()
        by_launch: dict[str, list[TaskEvent]] = {}
        for event in events:
            by_launch.setdefault(event.launch_id, []).append(event)
        owners: dict[int, str] = {}
        for attempt in range(1, APPLY_ATTEMPTS + 1):
            try:
                with self.engine.begin() as connection:
                    rows = select_task_rows(connection, list(by_launch))
                    self._check_rows_still_mine(rows.values(), owners)
                    result, changes = self._fold_events(by_launch, rows, now)
                    write_task_rows(connection, changes)
                return result
            except LostRace as exc:
                log.info("executor %s: %s (attempt %d of %d)", self.executor_id, exc, attempt,
                         APPLY_ATTEMPTS)
        log.warning("executor %s: %d event(s) lost the race for their rows %d times; they "
                    "are applied on a later sync", self.executor_id, len(events),
                    APPLY_ATTEMPTS)
        return None

    def _check_rows_still_mine(self, rows: Iterable[TaskRow], owners: dict[int, str]) -> None:
        """Fence this executor when a row it owned at an earlier attempt has another owner
        now: it was adopted while applying these events, which the adopter must apply."""
        for row in rows:
            before = owners.setdefault(row.id, row.executor_id)
            if before == self.executor_id and row.executor_id != self.executor_id:
                self._registration.fence()

    def _fold_events(self, by_launch: dict[str, list[TaskEvent]], rows: dict[str, TaskRow],
                     now: float) -> tuple[Applied, list[tuple[TaskRow, TaskRow]]]:
        """Run each row's events through the state machine, in stream order; returns what
        to do after commit and the (as read, as changed) pairs of the rows that changed."""
        result = Applied()
        changes: list[tuple[TaskRow, TaskRow]] = []
        for launch_id, batch in by_launch.items():
            read = rows.get(launch_id)
            row = None if read is None else dataclasses.replace(read)
            for event in batch:
                finished_before = row.finished_at if row is not None else None
                done = apply_event(row, event, now,
                                   disruption_retries=self._disruption_retries)
                self._note(result, row, event, done.outcome, finished_before)
            if row is not None and read is not None and row != read:
                changes.append((read, row))
        return result, changes

    def _note(self, result: Applied, row: TaskRow | None, event: TaskEvent,
              outcome: Outcome, finished_before: float | None) -> None:
        result.outcomes[outcome.value] += 1
        live = event.kind is EventKind.STATE and event.state in (
            TaskState.LAUNCHED, TaskState.RUNNING)
        if outcome in (Outcome.APPLIED, Outcome.REQUEUED) and row is not None:
            result.applied += 1
            record_change(result, row, self.executor_id)
            count_relaunch(result, event, outcome)
            return
        result.ignored += 1
        if (row is not None and outcome in (Outcome.REPLAY, Outcome.TERMINAL)
                and event.state is row.task_state
                and (event.pod_uid is None or row.pod_uid is None
                     or event.pod_uid == row.pod_uid)):
            # A replay of the change the row holds, about the row's own pod (say, after a
            # crash between commit and acknowledgement): report it again, so a restarted
            # scheduler still hears of it (an executor reports each terminal state once).
            record_change(result, row, self.executor_id, observe=False)
        # A pod that came alive for a launch nobody wants any more (an obsolete launch of the
        # try, or a try revoked/failed before its pod appeared) must not keep running. The
        # pod whose own events finished the row (its uid is the row's) is not such a pod: a
        # late report about it (the launcher's LAUNCHED, stamped when the batch's creates
        # returned or when a redelivery met 409) can come after its SUCCESS.
        finished_by_this_pod = row is not None and row.pod_uid is not None and (
            event.pod_uid is None or event.pod_uid == row.pod_uid)
        unwanted = outcome is Outcome.STALE or (
            outcome is Outcome.TERMINAL and finished_before is not None
            and event.occurred_at > finished_before and not finished_by_this_pod)
        # A pod that is not the launch's own (a copy with its labels) is deleted whatever its
        # phase: left alone, it would run the task's command a second time.
        foreign = outcome is Outcome.FOREIGN and event.kind is EventKind.STATE
        if ((live and unwanted) or foreign) and event.pod_name:
            result.stale_pods.append(PodRef(event.cluster,
                                            event.namespace or self._default_namespace,
                                            event.pod_name, event.pod_uid))
