"""``podfleet status``: task tries by pod outcome and reason, per task queue (waiting,
pending, running and why it waits), per cluster (pending, running, whether its API answers,
its watcher's lease holder: :mod:`~podfleet.executor.cli.cluster_status`), and executors
with their heartbeat age.

podfleet's state of a try is its pod's outcome: a pod that exited 0 is ``success`` even
when the program in it recorded its own failure elsewhere (Airflow's task instances do), so
the counts are labelled as pod outcomes. Reads the metadata DB, and from Redis (with a short
timeout) why each queue's launches wait (admission's last refusal,
``podfleet.workers.admission``) and which launch queues no worker consumes; when Redis
cannot be reached it says so in one line and the DB's report stands. Of each cluster it
asks only ``GET /version`` (2 s at most; ``--no-probe``: not even that).
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Protocol

import orjson
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from podfleet.contracts.queues import DEFAULT_QUEUE
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor.cli.cluster_status import cluster_report, count_by_cluster, render_clusters
from podfleet.executor.cli.preflight import fail, schema_problem
from podfleet.executor.db import ACTIVE_STATES, ExecutorRecord, TaskInstance, make_engine
from podfleet.executor.db_clock import read_db_now
from podfleet.settings import Settings

NAME = "status"
#: ``podfleet --help``'s line for this subcommand.
HELP = "show tasks and executors"
WAITING_FOR_SLOT = "waiting for a slot (parallelism) or to be resent"
#: What ``by_state`` counts, said in the report itself (``counts``).
POD_OUTCOMES = "pod outcomes"
#: What each admission budget that refused a queue's last permit means, for people.
WHY_IT_WAITS = {
    "pool": "at its pool, the cap on its pods not finished (PODFLEET_QUEUE_MAX_RUNNING)",
    "pending": "at the cap on pods not yet Running (PODFLEET_MAX_PENDING_PODS)",
    "pending_share": "at its fair share of the cap on pods not yet Running, which queues "
                     "under theirs are owed (PODFLEET_QUEUE_WEIGHTS)",
    "share": "at its fair share of the launch rate (PODFLEET_QUEUE_WEIGHTS)",
    "ceiling": "at its own rate (PODFLEET_QUEUE_RATES)",
    "rate": "at the cluster's launch rate (PODFLEET_LAUNCH_RATE)",
}
#: A refusal older than this is history, not why the queue waits now.
REFUSAL_FRESH_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dag-id", default=None, help="only this DAG's tasks")
    parser.add_argument("--state", default=None, choices=[s.value for s in TaskState],
                        help="only tasks in this state")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--no-probe", action="store_true",
                        help="do not ask each cluster's API whether it answers")


def run(args: argparse.Namespace, task_outcomes: TaskOutcomes | None = None) -> int:
    """Print the report. ``task_outcomes``, when given, adds the tries' own outcomes as the
    program that ran them recorded them (``report["task_outcomes"]``), shown first."""
    settings = Settings.from_env()
    problem = schema_problem(settings.database.url)
    if problem:
        return fail(NAME, problem)
    engine = make_engine(settings.database.url)
    try:
        report = collect(engine, dag_id=args.dag_id, state=args.state,
                         heartbeat_timeout=settings.executor.heartbeat_timeout_seconds)
        by_cluster = count_by_cluster(engine, dag_id=args.dag_id)
        if task_outcomes is not None:
            report["task_outcomes"] = {
                "source": task_outcomes.source,
                "by_state": task_outcomes.count(engine, dag_id=args.dag_id, state=args.state)}
    finally:
        engine.dispose()
    from podfleet.redis_client import connect

    # One short-timeout connection for both of Redis' answers (why queues wait, and which
    # launch queues nobody consumes); each says in one line when Redis cannot be read.
    client = connect(settings.redis.url, socket_timeout=2, socket_connect_timeout=2)
    try:
        report["queues"] = with_reasons(report["queues"], client, settings, now=time.time())
        report["launch_queues"] = queue_report(client, settings)
        report["clusters"] = cluster_report(by_cluster, settings.clusters.configured, client,
                                            settings.redis.prefix,
                                            probe_clusters=not args.no_probe)
    finally:
        client.close()
    if args.json:
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render(report))
    return 0


class TaskOutcomes(Protocol):
    """Where the tasks' own outcomes are recorded, beside podfleet's pod outcomes."""

    #: Whose states they are, as the report names them (``"airflow"``).
    source: str

    def count(self, engine: sa.Engine, *, dag_id: str | None, state: str | None
              ) -> dict[str, int]:
        """The own state of each try podfleet holds (``dag_id``/``state`` filtering
        podfleet's rows as ``collect`` does), counted by state."""
        ...


def collect(engine: sa.Engine, *, dag_id: str | None, state: str | None,
            heartbeat_timeout: float, now: float | None = None) -> dict[str, Any]:
    """Task counts by state and by (state, reason), and every executor's liveness (judged on
    the database's clock unless ``now`` is given). A QUEUED task's reason is why it waits: for
    a slot, or on a full quota (``waiting on quota in ns X: <the quota's message>``)."""
    waiting = sa.and_(TaskInstance.state == TaskState.QUEUED.value,
                      TaskInstance.enqueued_at.is_(None))
    parked = sa.and_(TaskInstance.state == TaskState.QUEUED.value,
                     TaskInstance.waiting_reason.is_not(None))
    reason = sa.case((waiting, sa.literal(WAITING_FOR_SLOT)),
                     (parked, TaskInstance.waiting_reason), else_=TaskInstance.reason)
    query = sa.select(TaskInstance.state, reason, sa.func.count()).group_by(
        TaskInstance.state, reason)
    if dag_id:
        query = query.where(TaskInstance.dag_id == dag_id)
    if state:
        query = query.where(TaskInstance.state == state)
    queue_name = sa.func.coalesce(TaskInstance.queue, DEFAULT_QUEUE)
    per_queue = sa.select(queue_name, TaskInstance.state, sa.func.count()).where(
        TaskInstance.state.in_(ACTIVE_STATES)).group_by(queue_name, TaskInstance.state)
    if dag_id:
        per_queue = per_queue.where(TaskInstance.dag_id == dag_id)
    active = sa.select(TaskInstance.executor_id, sa.func.count()).where(
        TaskInstance.state.in_(ACTIVE_STATES)).group_by(TaskInstance.executor_id)
    with Session(engine) as session:
        if now is None:
            now = read_db_now(session)
        rows = session.execute(query).all()
        queue_rows = session.execute(per_queue).all()
        active_by_executor: dict[str, int] = {
            executor_id: number for executor_id, number in session.execute(active)}
        executors = list(session.scalars(sa.select(ExecutorRecord).order_by(
            ExecutorRecord.started_at)))
    by_state: dict[str, int] = {}
    by_reason: list[dict[str, Any]] = []
    for task_state, task_reason, number in rows:
        by_state[task_state] = by_state.get(task_state, 0) + number
        by_reason.append({"state": task_state, "reason": task_reason, "count": number})
    by_reason.sort(key=lambda r: (-r["count"], r["state"]))
    listed = []
    for record in executors:
        age = now - record.heartbeat_at
        alive = record.state == "running" and age <= heartbeat_timeout
        listed.append({
            "id": record.id, "hostname": record.hostname, "pid": record.pid,
            "state": record.state if record.state != "running" or alive else "dead",
            "heartbeat_age_seconds": round(age, 1), "adopted_by": record.adopted_by,
            "active_tasks": active_by_executor.get(record.id, 0)})
    queues: dict[str, dict[str, Any]] = {}
    for name, task_state, number in queue_rows:
        entry = queues.setdefault(name, {"queue": name, "waiting": 0, "pending": 0,
                                         "running": 0, "why": None})
        column = {TaskState.QUEUED.value: "waiting", TaskState.LAUNCHED.value: "pending",
                  TaskState.RUNNING.value: "running"}[task_state]
        entry[column] += number
    return {"counts": POD_OUTCOMES, "total": sum(by_state.values()), "by_state": by_state,
            "by_reason": by_reason, "queues": [queues[name] for name in sorted(queues)],
            "executors": listed}


def queue_report(client: redis.Redis, settings: Settings) -> dict[str, Any]:
    """Launch queues with messages waiting and no live consumer, or why Redis cannot say."""
    from podfleet.executor.queue_watch import launch_queue_consumers

    try:
        found = launch_queue_consumers(client, settings)
    except redis.RedisError as exc:
        return {"error": f"cannot read the launch queues from Redis: {exc}", "unconsumed": []}
    return {"error": None, "unconsumed": [
        {"queue": q.queue, "waiting": q.waiting, "consumers": q.consumers,
         "message": q.describe()} for q in found if q.unconsumed]}


def with_reasons(queues: list[dict[str, Any]], client: redis.Redis, settings: Settings, *,
                 now: float) -> list[dict[str, Any]]:
    """``queues`` with ``why``: the budget that refused each waiting queue's last launch
    permit within :data:`REFUSAL_FRESH_S`, or "unknown" when Redis cannot be read."""
    if not any(q["waiting"] for q in queues):
        return queues
    try:
        waiting_key = RedisKeys(settings.redis.prefix).admission_waiting
        refusals: dict[Any, Any] = client.hgetall(waiting_key)
    except Exception as exc:  # any Redis failure: the DB's answer still stands
        for entry in queues:
            if entry["waiting"]:
                entry["why"] = f"unknown (Redis: {type(exc).__name__})"
        return queues
    for entry in queues:
        raw = refusals.get(str(entry["queue"]).encode())
        if not entry["waiting"] or raw is None:
            continue
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        budget, _, at_ms = text.partition(" ")
        if at_ms.isdigit() and now - int(at_ms) / 1000 <= REFUSAL_FRESH_S:
            entry["why"] = WHY_IT_WAITS.get(budget, budget)
    return queues


def render(report: dict[str, Any]) -> str:
    lines = []
    if "task_outcomes" in report:
        outcomes = report["task_outcomes"]
        lines.append(f"task tries by {outcomes['source']} state: "
                     f"{sum(outcomes['by_state'].values())}")
        for name, number in sorted(outcomes["by_state"].items(), key=lambda e: -e[1]):
            lines.append(f"  {name:<9} {number:>8}")
    lines.append(f"task tries by {POD_OUTCOMES}: {report['total']}")
    for task_state in TaskState:
        if task_state.value in report["by_state"]:
            lines.append(f"  {task_state.value:<9} {report['by_state'][task_state.value]:>8}")
    reasons = [r for r in report["by_reason"] if r["reason"]]
    if reasons:
        lines.append(f"{POD_OUTCOMES} by reason:")
        for entry in reasons[:20]:
            lines.append(f"  {entry['state']:<9} {entry['count']:>8}  {entry['reason']}")
    if report.get("queues"):
        lines.append(f"queues: {'':<22} {'waiting':>8} {'pending':>8} {'running':>8}")
        for q in report["queues"]:
            why = f"  waits {q['why']}" if q["why"] else ""
            lines.append(f"  {q['queue']:<28} {q['waiting']:>8} {q['pending']:>8} "
                         f"{q['running']:>8}{why}")
    lines.extend(render_clusters(report.get("clusters") or []))
    lines.append("executors:" if report["executors"] else "executors: none registered")
    for e in report["executors"]:
        adopted = f", adopted by {e['adopted_by']}" if e["adopted_by"] else ""
        lines.append(f"  {e['id']:<40} {e['state']:<8} heartbeat {e['heartbeat_age_seconds']}s"
                     f" ago, {e['active_tasks']} active task(s){adopted}")
    launch_queues = report.get("launch_queues") or {}
    if launch_queues.get("error"):
        lines.append(f"launch queues: {launch_queues['error']}")
    for entry in launch_queues.get("unconsumed", []):
        lines.append(entry["message"])
    return "\n".join(lines)
