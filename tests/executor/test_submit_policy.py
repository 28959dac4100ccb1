"""Submit refuses a pod it may not run, at default settings: a namespace outside
PODFLEET_TASK_NAMESPACES, a service account outside PODFLEET_SERVICE_ACCOUNTS, a breach of
PODFLEET_POD_SECURITY, a deadline already past; each names its rule and writes nothing."""

from __future__ import annotations

import time

import pytest
from executor_support import ExecutorFactory, key, rows

from podfleet.executor import InvalidSubmission

GOOD = ["echo", "hi"]


def test_a_namespace_watched_but_not_allowed_for_tasks_is_refused(
        make_executor: ExecutorFactory, database_url: str) -> None:
    # Given an executor that watches every namespace (the all-namespaces overlay)
    executor = make_executor(watch_namespaces="*")
    # When a task asks for kube-system, Then it is refused naming the allow-list
    with pytest.raises(InvalidSubmission,
                       match="namespace 'kube-system' is not in PODFLEET_TASK_NAMESPACES"):
        executor.submit(key("escalate"), GOOD, executor_config={"namespace": "kube-system"})
    assert rows(database_url) == []


def test_a_service_account_set_by_the_task_is_refused_unless_listed(
        make_executor: ExecutorFactory, database_url: str) -> None:
    executor = make_executor()
    override = {"spec": {"serviceAccountName": "cluster-admin", "containers": [{"name": "base"}]}}
    with pytest.raises(InvalidSubmission, match="serviceAccountName 'cluster-admin' is not in "
                                                "PODFLEET_SERVICE_ACCOUNTS"):
        executor.submit(key("as-admin"), GOOD, executor_config={"pod_override": override})
    with pytest.raises(InvalidSubmission, match="PODFLEET_SERVICE_ACCOUNTS"):
        executor.submit(key("as-admin-2"), GOOD,
                        executor_config={"service_account_name": "cluster-admin"})
    assert rows(database_url) == []


def test_a_listed_service_account_is_accepted(
        make_executor: ExecutorFactory, database_url: str) -> None:
    executor = make_executor(service_accounts="etl-runner")
    executor.submit(key("as-runner"), GOOD,
                    executor_config={"service_account_name": "etl-runner"})
    assert len(rows(database_url)) == 1


def test_a_privileged_pod_is_refused_at_baseline_naming_the_control(
        make_executor: ExecutorFactory, database_url: str) -> None:
    executor = make_executor(pod_security="baseline")
    with pytest.raises(InvalidSubmission, match=r'violates PodSecurity "baseline:latest" '
                                                r'\(PODFLEET_POD_SECURITY\): privileged'):
        executor.submit(key("root"), GOOD, executor_config={
            "container_security_context": {"privileged": True}})
    assert rows(database_url) == []


def test_a_deadline_already_past_is_refused(
        make_executor: ExecutorFactory, database_url: str) -> None:
    executor = make_executor()
    with pytest.raises(InvalidSubmission, match=r"deadline .* is already past"):
        executor.submit(key("late"), GOOD, deadline=time.time() - 60)
    assert rows(database_url) == []
