"""The pod policy on the built pod (template, task fields and override merged): the pod
template's service account is allowed, one a task sets is not unless listed; a task pod
outside PODFLEET_TASK_NAMESPACES or below PODFLEET_POD_SECURITY is refused naming the rule."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchRequest
from podfleet.pods import PodFactory, validate_executor_config
from podfleet.pods.policy import PodRefused
from podfleet.settings import Settings

TEMPLATE = {"spec": {"serviceAccountName": "airflow",
                     "containers": [{"name": "base", "image": "worker:1"}]}}


def factory(tmp_path: Path, **env: str) -> PodFactory:
    path = tmp_path / "template.yaml"
    path.write_text(yaml.safe_dump(TEMPLATE))
    return PodFactory(Settings.from_env({"PODFLEET_POD_TEMPLATE_FILE": str(path), **env}))


def request(config: Any = None, namespace: str = "default") -> LaunchRequest:
    return LaunchRequest(key=TaskKey("etl", "load", "r1", -1, 1), launch_id="a" * 32,
                         command=("echo",), executor_id="ex", namespace=namespace,
                         queued_at=time.time(),
                         executor_config=validate_executor_config(config))


def test_the_templates_service_account_is_allowed(tmp_path: Path) -> None:
    pod = factory(tmp_path).build(request())
    assert pod["spec"]["serviceAccountName"] == "airflow"


@pytest.mark.parametrize("config", [
    {"service_account_name": "admin"},
    {"pod_override": {"spec": {"serviceAccountName": "admin"}}},
])
def test_a_service_account_the_task_sets_is_refused_unless_listed(
        tmp_path: Path, config: dict[str, Any]) -> None:
    with pytest.raises(PodRefused, match="serviceAccountName 'admin' is not in "
                                         r"PODFLEET_SERVICE_ACCOUNTS \(empty"):
        factory(tmp_path).build(request(config))
    assert factory(tmp_path, PODFLEET_SERVICE_ACCOUNTS="admin").build(request(config))
    assert factory(tmp_path, PODFLEET_SERVICE_ACCOUNTS="*").build(request(config))


def test_a_namespace_outside_the_task_namespaces_is_refused(tmp_path: Path) -> None:
    wide = {"PODFLEET_WATCH_NAMESPACES": "*"}
    with pytest.raises(PodRefused, match="namespace 'kube-system' is not in "
                                         r"PODFLEET_TASK_NAMESPACES \(default\)"):
        factory(tmp_path, **wide).build(request(namespace="kube-system"))
    allowed = factory(tmp_path, PODFLEET_TASK_NAMESPACES="default,kube-system", **wide)
    assert allowed.build(request(namespace="kube-system"))


def test_any_watched_namespace_with_a_wildcard_but_never_an_unwatched_one(
        tmp_path: Path) -> None:
    pods = factory(tmp_path, PODFLEET_TASK_NAMESPACES="*",
                   PODFLEET_WATCH_NAMESPACES="default,team-a")
    assert pods.build(request(namespace="team-a"))
    with pytest.raises(PodRefused, match="namespace 'team-b' is not watched"):
        pods.build(request(namespace="team-b"))


def test_the_security_level_is_checked_on_the_merged_pod(tmp_path: Path) -> None:
    # An override that makes the task container privileged
    config = {"pod_override": {"spec": {"containers": [
        {"name": "base", "securityContext": {"privileged": True}}]}}}
    assert factory(tmp_path).build(request(config))  # off by default
    with pytest.raises(PodRefused, match=r'violates PodSecurity "baseline:latest" '
                                         r"\(PODFLEET_POD_SECURITY\): privileged \(container "
                                         r"'base' must not set securityContext.privileged"):
        factory(tmp_path, PODFLEET_POD_SECURITY="baseline").build(request(config))
