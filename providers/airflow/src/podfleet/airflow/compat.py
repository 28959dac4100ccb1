"""The few places where Airflow 3.3 and 3.4/main differ, in one module.

3.4 moves ``queued_tasks`` into ``executor_queues[WorkloadType.EXECUTE_TASK]`` and may key
task instances by ``TaskInstanceUuid`` (``BaseExecutor.get_task_key``); 3.3 keys them by
``TaskInstanceKey``. Everything else in this package is written against what both share.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def workload_key(executor: Any, workload: Any) -> Any:
    """The key the scheduler uses for ``workload`` in this Airflow version."""
    ti = getattr(workload, "ti", None)
    if ti is not None:
        return ti_key(executor, ti)
    return workload.key


def ti_key(executor: Any, ti: Any) -> Any:
    """A task instance's executor key: ``get_task_key(ti)`` where it exists (3.4+)."""
    get_task_key = getattr(executor, "get_task_key", None)
    return get_task_key(ti) if get_task_key is not None else ti.key


def _queues(executor: Any) -> list[dict[Any, Any]]:
    queues = getattr(executor, "executor_queues", None)
    if isinstance(queues, dict):
        return [q for q in queues.values() if isinstance(q, dict)]
    return [executor.queued_tasks, executor.queued_callbacks]


def pop_queued(executor: Any, workload: Any) -> None:
    """Remove ``workload`` from the executor's queue(s) of waiting workloads."""
    pop_queued_key(executor, workload_key(executor, workload))


def pop_queued_key(executor: Any, key: Any) -> None:
    for queue in _queues(executor):
        queue.pop(key, None)


def take_queued_tasks(executor: Any, open_slots: int) -> dict[Any, Any] | None:
    """Every queued task workload, taken out of the executor's queue at once (a C-level copy,
    no walk), when there are ``open_slots`` for all and no other workload (callback, connection
    test) waits; else None, and Airflow's own order decides."""
    queues = getattr(executor, "executor_queues", None)
    if isinstance(queues, dict):
        from airflow.executors.workloads.types import WorkloadType

        tasks = queues.get(WorkloadType.EXECUTE_TASK)
        others = [q for kind, q in queues.items() if kind != WorkloadType.EXECUTE_TASK]
    else:
        tasks = executor.queued_tasks
        others = [executor.queued_callbacks,
                  getattr(executor, "queued_connection_tests", None)]
    if not isinstance(tasks, dict) or any(others) or len(tasks) > open_slots:
        return None
    taken = dict(tasks)
    tasks.clear()
    return taken


def requeue(executor: Any, key: Any, workload: Any) -> None:
    """Put ``workload`` back into the queue it was taken from."""
    queues = getattr(executor, "executor_queues", None)
    if isinstance(queues, dict):
        from airflow.executors.workloads.types import WorkloadType

        kind = (WorkloadType.EXECUTE_TASK if getattr(workload, "ti", None) is not None
                else WorkloadType.EXECUTE_CALLBACK)
        queues[kind][key] = workload
    elif getattr(workload, "ti", None) is not None:
        executor.queued_tasks[key] = workload
    else:
        executor.queued_callbacks[key] = workload


def queued_state(key: Any) -> Any:
    """The QUEUED state of ``key``'s kind (a task instance's, or a callback's)."""
    from airflow.executors.base_executor import state_class_for_key

    return state_class_for_key(key).QUEUED


def airflow_version() -> str:
    from airflow import __version__

    return str(__version__)


def pod_mutation_hook() -> Callable[[Any], Any] | None:
    """``airflow_local_settings.pod_mutation_hook`` when one is defined, else None."""
    from airflow import settings

    manager = getattr(settings, "get_policy_plugin_manager", None)
    if manager is not None and not manager().hook.pod_mutation_hook.get_hookimpls():
        return None
    hook: Callable[[Any], Any] = settings.pod_mutation_hook
    return hook


@functools.cache
def _task_instance_model() -> Any:
    from airflow.models.taskinstance import TaskInstance

    return TaskInstance


def task_instance_states(keys: list[Any]) -> dict[Any, Any]:
    """The DB state of each task instance in ``keys``, in one query (missing: absent)."""
    if not keys:
        return {}
    from sqlalchemy import select

    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    ti = _task_instance_model()
    by_tuple = {(k.dag_id, k.task_id, k.run_id, k.map_index, k.try_number): k for k in keys
                if hasattr(k, "dag_id")}
    by_id = {str(k.id): k for k in keys if not hasattr(k, "dag_id") and hasattr(k, "id")}
    found: dict[Any, Any] = {}
    with create_session() as session:
        if by_tuple:
            where = ti.filter_for_tis(list(by_tuple.values()))
            for row in session.execute(select(ti.dag_id, ti.task_id, ti.run_id, ti.map_index,
                                              ti.try_number, ti.state).where(where)):
                key = by_tuple.get(tuple(row[:5]))
                if key is not None and row[5] is not None:
                    found[key] = TaskInstanceState(row[5])
        if by_id:
            for row in session.execute(select(ti.id, ti.state).where(ti.id.in_(list(by_id)))):
                key = by_id.get(str(row[0]))
                if key is not None and row[1] is not None:
                    found[key] = TaskInstanceState(row[1])
    return found
