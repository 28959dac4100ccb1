"""What a task's own pod limits do end to end: a PriorityClass the cluster lacks fails the task
at once with the API server's words, and ``active_deadline_seconds`` stops a pod that runs too
long; neither is retried or taken for a disruption, and neither disturbs other tasks.

Real workers, Redis, PostgreSQL and the simulator over HTTP, at the default delete policy and
disruption budget.
"""

from __future__ import annotations

from collections import Counter

import pytest
from pipeline_support import COMMAND, SUCCESS, Pipeline, task_key
from prometheus_client import REGISTRY

from podfleet.contracts.states import TaskState
from podfleet.executor import TaskSubmission
from podfleet.simulator.cluster import fate

pytestmark = pytest.mark.timeout(240)


def _disruptions_counted() -> float:
    return sum(sample.value for metric in REGISTRY.collect()
               if metric.name == "podfleet_pod_disruptions"
               for sample in metric.samples if sample.name.endswith("_total"))


@pytest.mark.slow
def test_a_task_naming_an_unknown_priority_class_fails_at_once_and_alone(
        pipeline: Pipeline) -> None:
    # Given one batch: a task naming a PriorityClass the cluster lacks, and two plain tasks
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    executor = pipeline.started_executor()
    bad, *good = [task_key(n) for n in range(3)]
    executor.submit_many([
        TaskSubmission(bad, COMMAND, executor_config={
            "annotations": dict(SUCCESS), "priority_class_name": "nope"}),
        *(TaskSubmission(key, COMMAND, executor_config={"annotations": dict(SUCCESS)})
          for key in good)])
    # When the batch is launched
    pipeline.run_until_finished(executor, [bad, *good], timeout=60)
    # Then that task failed on its only launch, with the API server's message
    rows = pipeline.rows_by_key()
    assert (rows[bad].task_state, rows[bad].attempt) == (TaskState.FAILED, 1)
    assert rows[bad].reason is not None
    assert "no PriorityClass with name nope was found" in rows[bad].reason
    assert [r.reason for r in pipeline.reports if r.key == bad and r.state.is_terminal] == [
        rows[bad].reason]
    # ... and the others of its batch succeeded; the scheduler heard each outcome once
    assert pipeline.terminal_reports() == Counter(
        {(bad, TaskState.FAILED): 1, **{(key, TaskState.SUCCESS): 1 for key in good}})
    assert pipeline.stats().creates.accepted == len(good)


def test_a_pod_past_its_active_deadline_fails_its_task_with_deadline_exceeded(
        pipeline: Pipeline) -> None:
    # Given a task whose pod may be active for one second but runs for a minute
    pipeline.env["PODFLEET_DELETE_POLICY"] = "always"
    pipeline.start_worker()
    executor = pipeline.started_executor()
    key = task_key(0)
    counted_before = _disruptions_counted()
    executor.submit_many([TaskSubmission(key, COMMAND, executor_config={
        "annotations": {fate.DURATION: "60"}, "active_deadline_seconds": 1})])
    # When it runs past its deadline
    pipeline.run_until_finished(executor, [key], timeout=60)
    # Then the task failed with DeadlineExceeded, on its only launch: not a disruption
    row = pipeline.rows_by_key()[key]
    assert (row.task_state, row.attempt, row.disruptions) == (TaskState.FAILED, 1, 0)
    assert row.reason is not None and row.reason.startswith("DeadlineExceeded")
    assert "disrupted" not in row.reason
    assert pipeline.terminal_reports() == Counter({(key, TaskState.FAILED): 1})
    assert _disruptions_counted() == counted_before
