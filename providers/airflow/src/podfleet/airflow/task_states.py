"""Airflow's own state of each task try podfleet ran, for ``airflow podfleet status``.

podfleet records how each pod ended; Airflow records how each task ended, and the two
differ: the Task SDK reports a task's failure to the api-server, then its process (the pod)
may exit 0. :class:`AirflowTaskStates` looks the tries podfleet holds up in Airflow's
metadata DB (the task instance for the current try, its history for earlier ones).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from podfleet.airflow.workloads import CALLBACK_DAG
from podfleet.executor.db import TaskInstance

#: The state counted for a try Airflow's DB does not hold (any more).
NOT_IN_AIRFLOW = "not in Airflow's DB"
#: Airflow's "no status" (a state of None).
NO_STATUS = "none"
#: (dag_id, run_id) pairs per query of Airflow's DB.
RUNS_PER_QUERY = 500

TryKey = tuple[str, str, str, int, int]
T = TypeVar("T")


class AirflowTaskStates:
    """The ``TaskOutcomes`` of ``podfleet status``: Airflow's task instance states."""

    source = "airflow"

    def count(self, engine: sa.Engine, *, dag_id: str | None, state: str | None
              ) -> dict[str, int]:
        """Airflow's state of every try podfleet holds, counted by state (callbacks, which
        are no task instances, left out)."""
        tries = podfleet_tries(engine, dag_id=dag_id, state=state)
        states = airflow_states(tries)
        counted = Counter(states.get(key, NOT_IN_AIRFLOW) for key in tries)
        return dict(counted.most_common())


def podfleet_tries(engine: sa.Engine, *, dag_id: str | None, state: str | None
                   ) -> set[TryKey]:
    """The tries in podfleet's DB, filtered as ``podfleet status`` filters."""
    query = sa.select(TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
                      TaskInstance.map_index, TaskInstance.try_number).where(
        TaskInstance.dag_id != CALLBACK_DAG)
    if dag_id:
        query = query.where(TaskInstance.dag_id == dag_id)
    if state:
        query = query.where(TaskInstance.state == state)
    with Session(engine) as session:
        return {(d, t, r, m, n) for d, t, r, m, n in session.execute(query)}


def airflow_states(tries: set[TryKey]) -> dict[TryKey, str]:
    """Airflow's state of each of ``tries`` it knows (through its ORM and session)."""
    from airflow.models.taskinstance import TaskInstance as AirflowTaskInstance
    from airflow.models.taskinstancehistory import TaskInstanceHistory
    from airflow.utils.session import create_session

    runs = sorted({(key[0], key[2]) for key in tries})
    found: dict[TryKey, str] = {}
    with create_session() as session:
        for chunk in _chunks(runs, RUNS_PER_QUERY):
            # The task instance holds the current try; its history the earlier ones.
            for model in (AirflowTaskInstance, TaskInstanceHistory):
                columns: Any = model
                query = sa.select(columns.dag_id, columns.task_id, columns.run_id,
                                  columns.map_index, columns.try_number, columns.state).where(
                    sa.tuple_(columns.dag_id, columns.run_id).in_(chunk))
                for d, t, r, m, n, ti_state in session.execute(query):
                    key = (d, t, r, m, n)
                    if key in tries:
                        found.setdefault(key, str(ti_state) if ti_state else NO_STATUS)
    return found


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
