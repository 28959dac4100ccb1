"""Following the log of a task whose pod never comes says what it waits for, and gives up
after its bound with a message naming the task, instead of waiting in silence."""

from __future__ import annotations

import pytest
from executor_support import ExecutorFactory, key

from podfleet.executor.db import make_sessionmaker
from podfleet.executor.logs import TaskLogs, TaskLogUnavailable
from podfleet.kube.client import KubeClient


def test_following_a_task_whose_pod_never_comes_says_so_and_gives_up(
        make_executor: ExecutorFactory, kube: KubeClient) -> None:
    # Given a queued task that no worker launches (none runs here)
    executor = make_executor()
    executor.submit(key("never"), ["echo", "hi"])
    logs = TaskLogs.for_settings(executor.settings, make_sessionmaker(executor.engine),
                                 lambda cluster: kube)
    heard: list[str] = []
    # When its log is followed with a bound
    with pytest.raises(TaskLogUnavailable) as caught:
        for _ in logs.follow(logs.target(key("never")), poll_seconds=0.05, wait_seconds=0.5,
                             waiting=heard.append):
            pass
    # Then it said once what it waited for, and gave up naming the task and its pod
    assert len(heard) == 1 and "is queued: its pod does not exist yet" in heard[0]
    assert str(caught.value).startswith("gave up after 0.5s waiting: task ")
    assert "is queued" in str(caught.value)
