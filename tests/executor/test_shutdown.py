"""end() is bounded: an executor whose Redis is gone still stops at once, and says how many
tasks it leaves queued and running for the next executor to adopt."""

from __future__ import annotations

import logging
import threading

import pytest
from executor_support import ExecutorFactory, event, key, publish, row_of

from podfleet.contracts.states import TaskState
from podfleet.executor import TaskSubmission
from podfleet.local.redis_server import RedisServer

CMD = ["true"]
#: A correctness bound, not a performance target: without one, end() never returned.
END_BOUND_SECONDS = 10.0


def test_end_returns_when_redis_is_gone_and_logs_what_it_leaves_for_adoption(
        make_executor: ExecutorFactory, private_redis: RedisServer, database_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    # Given an executor on a Redis of its own, with one task queued and one running
    executor = make_executor(redis_url=private_redis.url)
    executor.start()
    executor.submit_many([TaskSubmission(key("waits"), CMD), TaskSubmission(key("runs"), CMD)])
    running = row_of(database_url, key("runs"))
    publish(private_redis.url, [event(running, TaskState.LAUNCHED),
                                event(running, TaskState.RUNNING)])
    executor.sync()
    assert row_of(database_url, key("runs")).state == TaskState.RUNNING.value
    # When Redis dies and the executor is ended (off this thread, so a hang cannot hang us)
    private_redis.kill()
    outcome: list[bool] = []
    with caplog.at_level(logging.INFO, logger="podfleet.executor"):
        ending = threading.Thread(target=lambda: outcome.append(executor.end()), daemon=True)
        ending.start()
        ending.join(END_BOUND_SECONDS)
    # Then end() has returned, saying not everything finished
    assert not ending.is_alive(), f"end() still running after {END_BOUND_SECONDS}s"
    assert outcome == [False]
    # And it said what it left for the next executor
    assert (f"executor {executor.executor_id} stopped; left 1 task(s) QUEUED and 1 RUNNING "
            f"for adoption by the next executor") in caplog.text


def test_end_with_nothing_left_says_so(make_executor: ExecutorFactory,
                                       caplog: pytest.LogCaptureFixture) -> None:
    # Given an executor with no task
    executor = make_executor()
    executor.start()
    # When it ends
    with caplog.at_level(logging.INFO, logger="podfleet.executor"):
        assert executor.end() is True
    # Then it says it left nothing
    assert (f"executor {executor.executor_id} stopped with no task queued or running"
            in caplog.text)
