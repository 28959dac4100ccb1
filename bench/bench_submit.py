"""Executor throughput: ``submit_many`` into PostgreSQL + Redis, and ``sync`` applying events.

Starts a local fleet (``podfleet.local.fleet.LocalFleet``) with a private redis-server on a
fresh PostgreSQL database (on the server named by TEST_POSTGRES_URL, default the
machine's), both removed at the end, so it never touches shared data. Target (issue 3):
submit_many ≥ 5,000 tasks/s.

    .venv/bin/python bench/bench_submit.py            # 50,000 tasks in submits of 1,000
    .venv/bin/python bench/bench_submit.py --quick    # 2,000 tasks
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import redis
import sqlalchemy as sa

from podfleet.broker import queue_sizes
from podfleet.contracts.events import EventKind, EventSource, TaskEvent, publish_events
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.executor.db import TaskInstance, make_engine
from podfleet.local.fleet import LocalFleet
from podfleet.local.postgres import ScratchDatabase

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--per-submit", type=int, default=1_000,
                        help="tasks per submit_many call")
    parser.add_argument("--batch-size", type=int, default=50, help="tasks per launch message")
    parser.add_argument("--quick", action="store_true", help="2,000 tasks")
    args = parser.parse_args()
    total = 2_000 if args.quick else args.tasks

    # No cluster: nothing is launched, the executor only writes and reads.
    with ScratchDatabase(ADMIN_URL, prefix="podfleet_bench") as scratch, LocalFleet(
            kubeconfig="/nonexistent", database_url=scratch.url,
            signing_key="bench-signing-key-0123456789abcdef", env={
                "PODFLEET_PARALLELISM": "0",
                "PODFLEET_BATCH_SIZE": str(args.batch_size)}) as fleet:
        executor = Executor(fleet.settings())
        executor.sync()  # register and create the stream group outside the timing
        bench_submit(executor, total, args.per_submit)
        bench_sync(executor, fleet.database_url, fleet.redis_url, min(total, 20_000))
        executor.terminate()


def bench_submit(executor: Executor, total: int, per_submit: int) -> None:
    durations = []
    started = time.perf_counter()
    for offset in range(0, total, per_submit):
        batch = [TaskSubmission(TaskKey("bench", "task", "run", i, 1), ["true"])
                 for i in range(offset, min(total, offset + per_submit))]
        t0 = time.perf_counter()
        executor.submit_many(batch)
        durations.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    messages = queue_sizes(executor.broker, executor.settings.launch.queue)["ready"]
    print(f"submit_many: {total:,} tasks in {elapsed:.2f}s = {total / elapsed:,.0f} tasks/s "
          f"({per_submit} per call, median call {statistics.median(durations) * 1000:.0f} ms; "
          f"{messages:,} launch messages of {executor.settings.launch.batch_size})")


def bench_sync(executor: Executor, database_url: str, redis_url: str, count: int) -> None:
    engine = make_engine(database_url)
    with sa.orm.Session(engine) as session:
        launches = session.execute(sa.select(
            TaskInstance.dag_id, TaskInstance.task_id, TaskInstance.run_id,
            TaskInstance.map_index, TaskInstance.try_number,
            TaskInstance.launch_id).limit(count)).all()
    engine.dispose()
    events = [TaskEvent(key=TaskKey(*row[:5]), launch_id=row[5],
                        executor_id=executor.executor_id, kind=EventKind.STATE,
                        source=EventSource.WATCHER, state=state)
              for row in launches for state in (TaskState.RUNNING, TaskState.SUCCESS)]
    client = redis.Redis.from_url(redis_url)
    for start in range(0, len(events), 5_000):
        publish_events(client, RedisKeys(), events[start:start + 5_000])
    client.close()
    started = time.perf_counter()
    applied = 0
    while True:
        changed = executor.sync()
        applied += changed
        if not changed:
            break
    elapsed = time.perf_counter() - started
    print(f"sync: {len(events):,} events ({applied:,} applied) in {elapsed:.2f}s = "
          f"{len(events) / elapsed:,.0f} events/s into the DB and the event buffer")


if __name__ == "__main__":
    main()
