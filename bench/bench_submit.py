"""Executor throughput: ``submit_many`` into PostgreSQL + Redis, and ``sync`` applying events.

Starts a private redis-server and a fresh PostgreSQL database (on the server named by
PODFLEET_TEST_POSTGRES_URL, default the machine's), both removed at the end, so it never
touches shared data. Target (issue 3): submit_many ≥ 5,000 tasks/s.

    .venv/bin/python bench/bench_submit.py            # 50,000 tasks in submits of 1,000
    .venv/bin/python bench/bench_submit.py --quick    # 5,000 tasks
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid

import redis
import sqlalchemy as sa

from podfleet.broker import queue_sizes
from podfleet.contracts.events import EventKind, EventSource, TaskEvent, publish_events
from podfleet.contracts.keys import TaskKey
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.contracts.states import TaskState
from podfleet.executor import Executor, TaskSubmission
from podfleet.executor.db import TaskInstance, make_engine
from podfleet.executor.migrate import upgrade
from podfleet.local.redis_server import RedisServer
from podfleet.settings import Settings

ADMIN_URL = os.environ.get("PODFLEET_TEST_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=50_000)
    parser.add_argument("--per-submit", type=int, default=1_000,
                        help="tasks per submit_many call")
    parser.add_argument("--batch-size", type=int, default=50, help="tasks per launch message")
    parser.add_argument("--quick", action="store_true", help="5,000 tasks")
    args = parser.parse_args()
    total = 5_000 if args.quick else args.tasks

    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"podfleet_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    database_url = admin.url.set(database=name).render_as_string(hide_password=False)
    server = RedisServer().start()
    try:
        upgrade(database_url)
        settings = Settings.from_env({
            "PODFLEET_DATABASE_URL": database_url, "PODFLEET_REDIS_URL": server.url,
            "PODFLEET_SIGNING_KEY": "bench-signing-key-0123456789abcdef",
            "PODFLEET_PARALLELISM": "0", "PODFLEET_BATCH_SIZE": str(args.batch_size),
            "PODFLEET_KUBECONFIG": "/nonexistent"})
        executor = Executor(settings)
        executor.sync()  # register and create the stream group outside the timing
        bench_submit(executor, total, args.per_submit)
        bench_sync(executor, database_url, server.url, min(total, 20_000))
        executor.terminate()
    finally:
        server.close()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
