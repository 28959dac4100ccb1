"""OpenTelemetry spans of each finished task try, when tracing is configured.

A try that finished gets one span, ``podfleet.task``, from its submission to its end, with
a child span per phase podfleet recorded in its row:

* ``queued``: written QUEUED, waiting for a slot and the broker;
* ``enqueued``: its launch message sent, waiting for a launcher to create the pod;
* ``pod created``: the pod exists, its container not running yet;
* ``running``: until the pod ended;

and an event ``finished`` with the outcome. The spans are built when the try finishes, from
the times in its row, so nothing is kept in memory meanwhile. A try whose ``env`` carries a
W3C ``TRACEPARENT`` (Airflow puts its task's trace context there) becomes that span's child:
podfleet's spans join the caller's trace, as the task's own spans do.

Configured means: the OpenTelemetry SDK is installed (``podfleet-executor[tracing]``) and an
OTLP/HTTP endpoint is known, from ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT`` (the SDK's own variables) or given by the caller. Spans go
out through the SDK's batch processor, off the scheduler loop's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from podfleet.contracts.states import TaskState
from podfleet.executor.db import TaskInstance

log = logging.getLogger("podfleet.executor")

#: The variable a task's ``env`` carries its caller's trace context in (W3C Trace Context).
TRACEPARENT_ENV = "TRACEPARENT"
#: The SDK's variables naming the OTLP endpoint; either turns tracing on.
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SERVICE_NAME = "podfleet"
TASK_SPAN = "podfleet.task"
#: The phases of a try: span name, then the row columns where it starts and ends.
PHASES = (("queued", "queued_at", "enqueued_at"),
          ("enqueued", "enqueued_at", "launched_at"),
          ("pod created", "launched_at", "running_at"),
          ("running", "running_at", "finished_at"))
#: How long :meth:`TaskTracer.close` waits for the last spans to be sent.
FLUSH_MILLIS = 2000


class TaskTracer:
    """Sends the spans of finished tries to one OTLP/HTTP endpoint."""

    def __init__(self, endpoint: str | None = None) -> None:
        """``endpoint`` is the traces URL (``http://host:4318/v1/traces``); None lets the
        SDK read its ``OTEL_EXPORTER_OTLP_*`` variables."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # A provider of its own: the host program (Airflow) may have set the global one.
        self._provider = TracerProvider(resource=Resource.create(
            {"service.name": SERVICE_NAME}))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
            endpoint=endpoint)))
        self._tracer = self._provider.get_tracer("podfleet.executor")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> TaskTracer | None:
        """A tracer when an ``OTEL_EXPORTER_OTLP_*`` endpoint is set and the SDK is
        installed; None otherwise (a set endpoint without the SDK is logged)."""
        if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
            return None
        return cls.if_installed(None)

    @classmethod
    def if_installed(cls, endpoint: str | None) -> TaskTracer | None:
        """A tracer for ``endpoint``, or None (logged) without the OpenTelemetry SDK."""
        try:
            return cls(endpoint)
        except ImportError as exc:
            log.warning("tracing is configured but OpenTelemetry is not installed (%s); "
                        "install podfleet-executor[tracing]", exc)
            return None

    def record(self, rows: Iterable[TaskInstance]) -> None:
        """Emit the spans of each finished row (rows not finished are skipped)."""
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import (
            TraceContextTextMapPropagator,
        )

        propagator = TraceContextTextMapPropagator()
        for row in rows:
            if row.finished_at is None:
                continue
            parent = trace_parent(row.executor_config)
            context = propagator.extract({"traceparent": parent}) if parent else None
            root = self._tracer.start_span(
                TASK_SPAN, context=context, start_time=_nanos(row.submitted_at),
                attributes=_attributes(row))
            inside = trace.set_span_in_context(root)
            for name, start, end in phase_times(row):
                self._tracer.start_span(name, context=inside, start_time=_nanos(start)
                                        ).end(end_time=_nanos(end))
            root.add_event("finished", timestamp=_nanos(row.finished_at), attributes={
                "podfleet.state": row.state, "podfleet.reason": row.reason or ""})
            if row.state != TaskState.SUCCESS.value:
                root.set_status(Status(StatusCode.ERROR, row.reason or row.state))
            root.end(end_time=_nanos(row.finished_at))

    def close(self) -> None:
        """Send what is buffered (waiting at most :data:`FLUSH_MILLIS`), then stop."""
        self._provider.force_flush(FLUSH_MILLIS)
        self._provider.shutdown()


def trace_parent(executor_config: Mapping[str, Any] | None) -> str | None:
    """The ``TRACEPARENT`` a task's ``env`` carries, if any (validated config: a list of
    ``{"name", "value"}``)."""
    for item in (executor_config or {}).get("env") or ():
        if isinstance(item, Mapping) and item.get("name") == TRACEPARENT_ENV:
            value = item.get("value")
            return str(value) if value else None
    return None


def phase_times(row: TaskInstance) -> list[tuple[str, float, float]]:
    """Each phase the row went through, with its start and end (a phase that was skipped,
    such as a pod that never ran, is left out; one whose end is unknown ends with the
    next known time)."""
    assert row.finished_at is not None
    times = {column: getattr(row, column) for _, start, end in PHASES
             for column in (start, end)}
    phases = []
    for index, (name, start_column, _end) in enumerate(PHASES):
        start = times[start_column]
        if start is None:
            continue
        later = [times[end] for _n, _s, end in PHASES[index:] if times[end] is not None]
        phases.append((name, start, later[0] if later else row.finished_at))
    return phases


def _attributes(row: TaskInstance) -> dict[str, str | int]:
    return {"podfleet.dag_id": row.dag_id, "podfleet.task_id": row.task_id,
            "podfleet.run_id": row.run_id, "podfleet.map_index": row.map_index,
            "podfleet.try_number": row.try_number, "podfleet.launch_id": row.launch_id,
            "podfleet.pod_name": row.pod_name or "", "podfleet.state": row.state}


def _nanos(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
