"""A valid launch request for the contract tests to vary, one field at a time."""

from __future__ import annotations

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchRequest, new_launch_id


def launch_request(**overrides: object) -> LaunchRequest:
    """A request of a fresh launch of ``dag/task/run-1``, with ``overrides`` for its fields."""
    fields: dict[str, object] = dict(
        key=TaskKey("dag", "task", "run-1"), launch_id=new_launch_id(),
        command=("airflow", "tasks", "run"), executor_id="exec-1", namespace="default",
        queued_at=1.5)
    fields.update(overrides)
    return LaunchRequest(**fields)  # type: ignore[arg-type]
