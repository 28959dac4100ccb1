"""``podfleet status``: task tries by pod outcome and reason, and executors with their
heartbeat age.

podfleet's state of a try is its pod's outcome: a pod that exited 0 is ``success`` even
when the program in it recorded its own failure elsewhere (Airflow's task instances do), so
the counts are labelled as pod outcomes. Reads the metadata DB, and Redis for launch queues nobody
consumes (a Redis that cannot be reached is said in one line; the DB's report stands),
never the cluster.
"""

from __future__ import annotations

import argparse
from typing import Any, Protocol

import orjson
import redis
import sqlalchemy as sa
from sqlalchemy.orm import Session

from podfleet.contracts.states import TaskState
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dag-id", default=None, help="only this DAG's tasks")
    parser.add_argument("--state", default=None, choices=[s.value for s in TaskState],
                        help="only tasks in this state")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


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
        if task_outcomes is not None:
            report["task_outcomes"] = {
                "source": task_outcomes.source,
                "by_state": task_outcomes.count(engine, dag_id=args.dag_id, state=args.state)}
    finally:
        engine.dispose()
    report["queues"] = queue_report(settings)
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
    active = sa.select(TaskInstance.executor_id, sa.func.count()).where(
        TaskInstance.state.in_(ACTIVE_STATES)).group_by(TaskInstance.executor_id)
    with Session(engine) as session:
        if now is None:
            now = read_db_now(session)
        rows = session.execute(query).all()
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
    return {"counts": POD_OUTCOMES, "total": sum(by_state.values()), "by_state": by_state,
            "by_reason": by_reason, "executors": listed}


def queue_report(settings: Settings) -> dict[str, Any]:
    """Launch queues with messages waiting and no live consumer, or why Redis cannot say."""
    from podfleet.executor.queue_watch import launch_queue_consumers
    from podfleet.redis_client import connect

    client = connect(settings.redis.url, socket_timeout=5, socket_connect_timeout=5)
    try:
        found = launch_queue_consumers(client, settings)
    except redis.RedisError as exc:
        return {"error": f"cannot read the launch queues from Redis: {exc}", "unconsumed": []}
    finally:
        client.close()
    return {"error": None, "unconsumed": [
        {"queue": q.queue, "waiting": q.waiting, "consumers": q.consumers,
         "message": q.describe()} for q in found if q.unconsumed]}


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
    lines.append("executors:" if report["executors"] else "executors: none registered")
    for e in report["executors"]:
        adopted = f", adopted by {e['adopted_by']}" if e["adopted_by"] else ""
        lines.append(f"  {e['id']:<40} {e['state']:<8} heartbeat {e['heartbeat_age_seconds']}s"
                     f" ago, {e['active_tasks']} active task(s){adopted}")
    queues = report.get("queues") or {}
    if queues.get("error"):
        lines.append(f"queues: {queues['error']}")
    for entry in queues.get("unconsumed", []):
        lines.append(entry["message"])
    return "\n".join(lines)
