"""Spans of a finished task try, sent over OTLP/HTTP to a real receiver on loopback: one
``podfleet.task`` span per try with its phases as children, joined to the caller's trace
when the task's env carries a ``TRACEPARENT``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from executor_support import Clock, ExecutorFactory, event, key, publish, row_of
from otlp_receiver import OtlpReceiver

from podfleet.contracts.states import TaskState
from podfleet.executor import TaskSubmission

CMD = ["true"]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """A receiver, named by the SDK's own variable (as a deployment configures tracing)."""
    with OtlpReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", running.endpoint)
        yield running


def run_one_task(make_executor: ExecutorFactory, database_url: str, redis_url: str,
                 env: dict[str, str]) -> None:
    """Submit one task, let it go through every phase, and stop the executor (which sends
    the buffered spans)."""
    clock = Clock()
    executor = make_executor(clock=clock)
    executor.start()
    executor.submit_many([TaskSubmission(key("traced"), CMD, executor_config={"env": env})])
    row = row_of(database_url, key("traced"))
    now = clock.now
    publish(redis_url, [event(row, TaskState.LAUNCHED, at=now + 1),
                        event(row, TaskState.RUNNING, at=now + 2),
                        event(row, TaskState.SUCCESS, at=now + 5)])
    clock.advance(6)
    executor.sync()
    assert row_of(database_url, key("traced")).state == TaskState.SUCCESS.value
    executor.terminate()


def test_a_finished_try_is_one_span_with_its_phases_as_children(
        make_executor: ExecutorFactory, database_url: str, redis_url: str,
        receiver: OtlpReceiver) -> None:
    # When a task runs to success with tracing configured
    run_one_task(make_executor, database_url, redis_url, {})
    # Then the receiver got its span, with the phases podfleet recorded as its children
    [task] = [s for s in receiver.spans if s.name == "podfleet.task"]
    assert task.service == "podfleet"
    assert (task.attributes["podfleet.task_id"], task.attributes["podfleet.state"]) == (
        "traced", "success")
    assert task.events == ["finished"]
    children = sorted((s for s in receiver.spans if s.parent_span_id == task.span_id),
                      key=lambda s: s.start_ns)
    assert [s.name for s in children] == ["queued", "enqueued", "pod created", "running"]
    assert all(s.trace_id == task.trace_id for s in children)
    assert children[-1].end_ns == task.end_ns  # running ends when the try finished


def test_a_try_whose_env_carries_a_traceparent_joins_that_trace(
        make_executor: ExecutorFactory, database_url: str, redis_url: str,
        receiver: OtlpReceiver) -> None:
    # When the task's env carries its caller's trace context
    run_one_task(make_executor, database_url, redis_url, {"TRACEPARENT": TRACEPARENT})
    # Then podfleet's span is the caller's span's child, in the caller's trace
    [task] = [s for s in receiver.spans if s.name == "podfleet.task"]
    assert (task.trace_id, task.parent_span_id) == (TRACE_ID, PARENT_SPAN_ID)
    assert {s.trace_id for s in receiver.spans} == {TRACE_ID}


def test_without_an_endpoint_nothing_is_traced(
        make_executor: ExecutorFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no OTEL_EXPORTER_OTLP_* endpoint
    for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    # Then an executor has no tracer
    assert make_executor().tracer is None
