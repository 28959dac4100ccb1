"""Locust load test: users submit tasks through podfleet's Executor and report pod latencies.

Each locust user is one scheduler: it owns a :class:`podfleet.executor.Executor`, submits
tasks at ``--tasks-per-second`` and calls ``sync()`` every ``--sync-interval`` seconds. When a
task's pod is accepted by the API server, and again when the task ends, it fires locust request
events, each kind under a request type of its own (:mod:`podfleet.local.loadtest`), so locust's
statistics, CSV files and web UI keep them apart:

- ``launch`` / ``pod``: launch latency (submit → pod accepted by the API), from the task's own
  DB timestamps, the same definition as ``podfleet_launch_latency_seconds``. A task that fails
  before it ever got a pod, or gets none within ``--launch-timeout``, is a failure.
- ``end-to-end`` / ``task``: submit → terminal state; FAILED, REVOKED and ``--task-timeout``
  are failures.
- ``submit`` / ``submit_many``: the time ``submit_many`` itself took for one batch
  (response_length = tasks in the batch); its count over the run is the submit rate.

Locust's own charts plot the aggregate of every row (its "Response Times" mixes a 40 ms submit
with a 1 s task), so the web UI gets a "Latency by kind" tab: each kind's current and overall
percentiles side by side, refreshed with the statistics, and a CSV of them.

Configuration comes from the usual ``PODFLEET_*`` variables (Redis, database, kubeconfig,
signing key). With a SQLite database URL (the default) every user gets a database file of its
own next to it, so users never contend for SQLite's single writer.

Run it with ``python -m podfleet.local.loadtest.run_headless`` (starts a simulator, Redis
and a worker pool), or by hand: ``locust -f "$(python -m podfleet.local.loadtest)" --headless
-u 4 -r 4 -t 30s --tasks-per-second 20``. Locust monkey-patches the process with gevent;
never import this module in a test process.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from locust import User, constant_pacing, events, task
from locust.env import Environment

from podfleet.local.loadtest import END_TO_END, KINDS, LAUNCH, SUBMIT

log = logging.getLogger("podfleet.local.loadtest")
_user_numbers = itertools.count(1)


def _add_arguments(parser: Any) -> None:
    # On the parser itself, not an argument group: only locust's own add_argument marks an
    # option for the web UI's form (an argparse group's would leave it out)
    group = parser
    group.add_argument("--tasks-per-second", type=float, default=5.0, env_var="LOADTEST_RATE",
                       help="tasks each user submits per second")
    group.add_argument("--sync-interval", type=float, default=0.1,
                       env_var="LOADTEST_SYNC_INTERVAL",
                       help="seconds between a user's executor.sync() calls")
    group.add_argument("--task-duration", type=float, default=0.2,
                       env_var="LOADTEST_TASK_DURATION",
                       help="seconds each task's container runs (simulator annotation)")
    group.add_argument("--launch-timeout", type=float, default=60.0,
                       env_var="LOADTEST_LAUNCH_TIMEOUT",
                       help="a task without a pod after this many seconds is a failure")
    group.add_argument("--task-timeout", type=float, default=300.0,
                       env_var="LOADTEST_TASK_TIMEOUT",
                       help="a task not finished after this many seconds is a failure")
    group.add_argument("--executor-metrics-port", type=int, default=-1,
                       env_var="LOADTEST_METRICS_PORT",
                       help="serve the executors' /metrics on this port (-1 = off)")


def _serve_metrics(environment: Environment, **_: Any) -> None:
    port = int(getattr(environment.parsed_options, "executor_metrics_port", -1) or -1)
    if port >= 0:
        from podfleet.monitoring.exposition import serve_metrics

        server = serve_metrics(port)
        log.info("executor metrics on %s", server.url)


KINDS_TAB = "latency-by-kind"
_PERCENTILES = (0.5, 0.95, 0.99)


def latency_by_kind(environment: Environment) -> list[dict[str, Any]]:
    """One row per request kind: its count, failures, current and overall percentiles (ms)."""
    rows: list[dict[str, Any]] = []
    runner = environment.runner
    for kind, name in KINDS:
        row: dict[str, Any] = {"kind": kind, "name": name, "requests": 0, "failures": 0}
        entry = runner.stats.entries.get((name, kind)) if runner is not None else None
        for p in _PERCENTILES:
            label = f"{p * 100:g}"
            current = entry.get_current_response_time_percentile(p) if entry else None
            row[f"current_p{label}"] = round(current or 0.0)
            row[f"p{label}"] = round(entry.get_response_time_percentile(p)) if entry else 0
        if entry is not None:
            row["requests"], row["failures"] = entry.num_requests, entry.num_failures
        rows.append(row)
    return rows


def _add_kinds_tab(environment: Environment, **_: Any) -> None:
    """The web UI's "Latency by kind" tab (locust's extended tabs: a table fed with every
    statistics poll) and its CSV."""
    web_ui = environment.web_ui
    app = web_ui.app if web_ui is not None else None
    if web_ui is None or app is None:
        return
    import csv
    import io
    import json

    from flask import Response, request

    columns = [("kind", "Kind"), ("name", "Name"), ("requests", "Requests"),
               ("failures", "Failures")]
    for p in _PERCENTILES:
        label = f"{p * 100:g}"
        columns.append((f"current_p{label}", f"Current p{label} (ms)"))
    for p in _PERCENTILES:
        label = f"{p * 100:g}"
        columns.append((f"p{label}", f"p{label} (ms)"))
    web_ui.template_args["extendedTabs"] = [{"title": "Latency by kind", "key": KINDS_TAB}]
    web_ui.template_args["extendedTables"] = [
        {"key": KINDS_TAB, "structure": [{"key": k, "title": t} for k, t in columns]}]
    web_ui.template_args["extendedCsvFiles"] = [
        {"href": f"./{KINDS_TAB}/csv", "title": "Download latency by kind CSV"}]

    @app.after_request
    def _extend(response: Response) -> Response:
        if request.path == "/stats/requests" and response.is_json:
            body = dict(response.get_json())
            body["extended_stats"] = [{"key": KINDS_TAB, "data": latency_by_kind(environment)}]
            response.set_data(json.dumps(body))
        return response

    @app.route(f"/{KINDS_TAB}/csv")
    def _csv() -> Response:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=[k for k, _ in columns])
        writer.writeheader()
        writer.writerows(latency_by_kind(environment))
        return Response(out.getvalue(), mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename={KINDS_TAB}.csv"})


events.init_command_line_parser.add_listener(_add_arguments)  # type: ignore[no-untyped-call]
events.init.add_listener(_serve_metrics)  # type: ignore[no-untyped-call]
events.init.add_listener(_add_kinds_tab)  # type: ignore[no-untyped-call]


@dataclass
class _Pending:
    key: tuple[Any, ...]
    submitted: float  # wall clock, as the executor records submitted_at
    launched_reported: bool = False


def _user_database_url(base: str, number: int) -> str:
    """A SQLite URL gets one file per user; other databases are shared (and migrated once)."""
    if not base.startswith("sqlite:///"):
        return base
    path = base[len("sqlite:///"):]
    root, ext = os.path.splitext(path)
    return f"sqlite:///{root}-locust-{os.getpid()}-{number}{ext or '.sqlite'}"


def _key_tuple(key: Any) -> tuple[Any, ...]:
    return (key.dag_id, key.task_id, key.run_id, key.map_index, key.try_number)


class PodfleetUser(User):
    """One scheduler: submits tasks at a fixed rate and reports their pods' latencies."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        options = environment.parsed_options
        self.rate = float(getattr(options, "tasks_per_second", 5.0))
        self.sync_interval = float(getattr(options, "sync_interval", 0.1))
        self.task_duration = float(getattr(options, "task_duration", 0.2))
        self.launch_timeout = float(getattr(options, "launch_timeout", 60.0))
        self.task_timeout = float(getattr(options, "task_timeout", 300.0))
        self.number = next(_user_numbers)
        self.pending: dict[str, _Pending] = {}
        self.by_key: dict[tuple[Any, ...], str] = {}
        self.submitted = 0
        self.started_at = 0.0
        self.executor: Any = None
        self.tasks_api: Any = None

    def wait_time(self) -> float:
        return float(constant_pacing(self.sync_interval)(self))

    def on_start(self) -> None:
        from podfleet.executor.db import TaskInstance
        from podfleet.executor.executor import Executor
        from podfleet.executor.migrate import upgrade
        from podfleet.settings import Settings

        base = Settings.from_env()
        executor_id = f"locust-{uuid.uuid4().hex[:8]}-{self.number}"
        env = dict(os.environ)
        env["PODFLEET_EXECUTOR_ID"] = executor_id
        env["PODFLEET_DATABASE_URL"] = _user_database_url(base.database.url, self.number)
        settings = Settings.from_env(env)
        upgrade(settings.database.url)
        self.tasks_api = TaskInstance
        self.executor = Executor(settings)
        self.executor.start()
        self.run_id = f"locust-{uuid.uuid4().hex[:12]}"
        self.started_at = time.monotonic()

    def on_stop(self) -> None:
        if self.executor is not None:
            self.executor.terminate()
            self.executor = None

    @task
    def submit_and_sync(self) -> None:
        """Submit what the rate allows since the last tick, sync, report changed tasks."""
        due = int((time.monotonic() - self.started_at) * self.rate) - self.submitted
        if due > 0:
            self._submit(due)
        self.executor.sync()
        changed = self.executor.get_event_buffer()
        if changed:
            self._report(changed)
        self._expire()

    def _submit(self, count: int) -> None:
        from podfleet.executor.submission import TaskSubmission

        config = {"annotations": {"sim.podfleet.io/duration": repr(self.task_duration)}}
        keys = [(f"locust_dag_{self.number}", f"task_{self.submitted + i}", self.run_id, -1, 1)
                for i in range(count)]
        started = time.perf_counter()
        now = time.time()
        try:
            launch_ids = self.executor.submit_many(
                [TaskSubmission(key, ["true"], None, config, None) for key in keys])
        except Exception as exc:  # reported to locust, which is what a load test wants
            self._fire(SUBMIT, started, count, exc)
            self.submitted += count
            return
        self._fire(SUBMIT, started, count, None)
        for key, launch_id in zip(keys, launch_ids, strict=True):
            self.pending[launch_id] = _Pending(key, now)
            self.by_key[key] = launch_id
        self.submitted += count

    def _report(self, changed: dict[Any, Any]) -> None:
        """Read the changed tasks' timestamps from the DB and fire their latency events."""
        import sqlalchemy as sa

        wanted = [self.by_key[k] for k in map(_key_tuple, changed) if k in self.by_key]
        if not wanted:
            return
        table = self.tasks_api
        with self.executor.engine.connect() as conn:
            rows = conn.execute(sa.select(
                table.launch_id, table.state, table.submitted_at, table.launched_at,
                table.finished_at, table.reason).where(table.launch_id.in_(wanted))).all()
        for launch_id, state, submitted_at, launched_at, finished_at, reason in rows:
            pending = self.pending.get(launch_id)
            if pending is None or state == "queued":
                continue
            if not pending.launched_reported:
                pending.launched_reported = True
                if launched_at is not None:
                    self._fire_ms(LAUNCH, (launched_at - submitted_at) * 1000, None)
                else:
                    self._fire_ms(LAUNCH, 0.0,
                                  RuntimeError(f"no pod: {state} {reason or ''}".strip()))
            if state in ("success", "failed", "revoked"):
                end = finished_at if finished_at is not None else time.time()
                error = None if state == "success" else RuntimeError(
                    f"{state}: {reason or 'no reason'}")
                self._fire_ms(END_TO_END, (end - submitted_at) * 1000, error)
                self._forget(launch_id)

    def _forget(self, launch_id: str) -> None:
        pending = self.pending.pop(launch_id)
        self.by_key.pop(pending.key, None)

    def _expire(self) -> None:
        now = time.time()
        for launch_id, pending in list(self.pending.items()):
            age = now - pending.submitted
            if not pending.launched_reported and age > self.launch_timeout:
                pending.launched_reported = True
                self._fire_ms(LAUNCH, age * 1000,
                              TimeoutError(f"no pod after {self.launch_timeout:g} s"))
            if age > self.task_timeout:
                self._fire_ms(END_TO_END, age * 1000,
                              TimeoutError(f"not finished after {self.task_timeout:g} s"))
                self._forget(launch_id)

    def _fire(self, kind: tuple[str, str], started: float, length: int,
              error: BaseException | None) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.environment.events.request.fire(
            request_type=kind[0], name=kind[1], response_time=elapsed_ms,
            response_length=length, exception=error, context={"user": self.number})

    def _fire_ms(self, kind: tuple[str, str], ms: float, error: BaseException | None) -> None:
        self.environment.events.request.fire(
            request_type=kind[0], name=kind[1], response_time=max(0.0, ms), response_length=0,
            exception=error, context={"user": self.number})
