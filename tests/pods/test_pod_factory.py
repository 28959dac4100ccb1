"""Building a task's pod: template → defaults → task fields → pod_override → identity."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import models as k8s

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.messages import LaunchRequest
from podfleet.contracts.naming import LAUNCH_ID_LABEL, MANAGED_LABEL, pod_name
from podfleet.pods import PodFactory, validate_executor_config
from podfleet.pods.merge import reconcile_pods
from podfleet.settings import Settings, SettingsError

LAUNCH_ID = "0123456789abcdef0123456789abcdef"
TEMPLATE = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "ignored", "labels": {"app": "airflow-worker",
                                              MANAGED_LABEL: "false"}},
    "spec": {
        "serviceAccountName": "airflow",
        "restartPolicy": "Always",
        "containers": [
            {"name": "base", "image": "apache/airflow:2.9",
             "env": [{"name": "AIRFLOW__CORE__EXECUTOR", "value": "LocalExecutor"},
                     {"name": "SHARED", "value": "template"}],
             "volumeMounts": [{"name": "logs", "mountPath": "/opt/airflow/logs"}],
             "resources": {"requests": {"memory": "512Mi"}}},
            {"name": "git-sync", "image": "git-sync:4"},
        ],
        "volumes": [{"name": "logs", "emptyDir": {}}],
    },
}


def factory(tmp_path: Path, template: dict[str, Any] | None = TEMPLATE,
            **settings: str) -> PodFactory:
    env = {"PODFLEET_NAMESPACE": "jobs", **settings}
    if template is not None:
        path = tmp_path / "template.yaml"
        path.write_text(yaml.safe_dump(template))
        env["PODFLEET_POD_TEMPLATE_FILE"] = str(path)
    return PodFactory(Settings.from_env(env))


def request(config: Any = None, key: TaskKey | None = None) -> LaunchRequest:
    return LaunchRequest(
        key=key or TaskKey("etl", "load", "manual__2024", 3, 2), launch_id=LAUNCH_ID,
        command=("airflow", "tasks", "run", "etl", "load"), executor_id="sched-1",
        namespace="jobs", queued_at=time.time(),
        executor_config=validate_executor_config(config))


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def test_without_a_template_the_pod_runs_the_command_in_the_worker_image(
        tmp_path: Path) -> None:
    pod = factory(tmp_path, template=None).build(request())

    (task,) = pod["spec"]["containers"]
    assert task["name"] == "base"
    assert task["image"] == "python:3.11-slim"
    assert task["args"] == ["airflow", "tasks", "run", "etl", "load"]
    assert "command" not in task  # like Airflow: the image's entrypoint runs the args


def test_identity_wins_over_template_and_override(tmp_path: Path) -> None:
    override = {"metadata": {"name": "mine", "labels": {LAUNCH_ID_LABEL: "forged"}},
                "spec": {"restartPolicy": "OnFailure"}}
    pod = factory(tmp_path).build(request({"pod_override": override}))

    key = TaskKey("etl", "load", "manual__2024", 3, 2)
    assert pod["metadata"]["name"] == pod_name(key, LAUNCH_ID)
    assert pod["metadata"]["namespace"] == "jobs"
    assert pod["metadata"]["labels"][LAUNCH_ID_LABEL] == LAUNCH_ID
    assert pod["metadata"]["labels"][MANAGED_LABEL] == "true"
    assert pod["metadata"]["labels"]["app"] == "airflow-worker"
    assert pod["spec"]["restartPolicy"] == "Never"
    task_env = env_of(pod["spec"]["containers"][0])
    assert task_env["PODFLEET_LAUNCH_ID"] == LAUNCH_ID
    assert task_env["PODFLEET_MAP_INDEX"] == "3"


def test_task_fields_layer_onto_the_template(tmp_path: Path) -> None:
    pod = factory(tmp_path).build(request({
        "image": "etl:7",
        "resources": {"requests": {"cpu": "2"}, "limits": {"memory": "4Gi"}},
        "env": {"SHARED": "task"},
        "node_selector": {"pool": "batch"},
        "secrets": [
            {"deploy_type": "env", "deploy_target": "TOKEN", "secret": "api", "key": "t"},
            {"deploy_type": "env", "secret": "all-of-it"},
            {"deploy_type": "volume", "deploy_target": "/etc/creds", "secret": "creds"}],
    }))

    task, sidecar = pod["spec"]["containers"]
    assert task["image"] == "etl:7"
    assert task["resources"] == {"requests": {"memory": "512Mi", "cpu": "2"},
                                 "limits": {"memory": "4Gi"}}
    assert env_of(task)["SHARED"] == "task"
    assert env_of(task)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "t"}}} \
        in task["env"]
    assert task["envFrom"] == [{"secretRef": {"name": "all-of-it"}}]
    secret_mount = next(m for m in task["volumeMounts"] if m["mountPath"] == "/etc/creds")
    assert {"name": secret_mount["name"], "secret": {"secretName": "creds"}} \
        in pod["spec"]["volumes"]
    assert pod["spec"]["nodeSelector"] == {"pool": "batch"}
    assert sidecar == {"name": "git-sync", "image": "git-sync:4"}


def test_a_v1pod_override_merges_like_airflows_reconcile_pods(tmp_path: Path) -> None:
    override = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(labels={"team": "data"}, annotations={"note": "x"}),
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(name="base", image="etl:8",
                                env=[k8s.V1EnvVar(name="SHARED", value="override")],
                                volume_mounts=[k8s.V1VolumeMount(
                                    name="scratch", mount_path="/opt/airflow/logs")]),
                k8s.V1Container(name="git-sync", image="git-sync:5"),
                k8s.V1Container(name="proxy", image="envoy")],
            volumes=[k8s.V1Volume(name="scratch", empty_dir=k8s.V1EmptyDirVolumeSource())],
            service_account_name="etl-runner"))

    pod = factory(tmp_path, PODFLEET_SERVICE_ACCOUNTS="etl-runner").build(
        request({"pod_override": override}))

    task, git_sync, proxy = pod["spec"]["containers"]
    assert task["image"] == "etl:8"
    assert env_of(task)["SHARED"] == "override"
    assert env_of(task)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert task["args"] == ["airflow", "tasks", "run", "etl", "load"]
    # one mount per path: the override's replaces the template's
    assert [m for m in task["volumeMounts"] if m["mountPath"] == "/opt/airflow/logs"] == [
        {"name": "scratch", "mountPath": "/opt/airflow/logs"}]
    assert task["resources"] == {"requests": {"memory": "512Mi"}}
    assert git_sync["image"] == "git-sync:5"
    assert proxy == {"name": "proxy", "image": "envoy"}
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["logs", "scratch"]
    assert pod["spec"]["serviceAccountName"] == "etl-runner"
    assert pod["metadata"]["labels"]["team"] == "data"
    assert pod["metadata"]["annotations"]["note"] == "x"


def test_an_unnamed_override_container_is_the_task_container() -> None:
    base = {"spec": {"containers": [{"name": "worker", "image": "a"}]}}
    merged = reconcile_pods(base, {"spec": {"containers": [{"image": "b"}]}})
    assert merged["spec"]["containers"] == [{"name": "worker", "image": "b"}]


def test_null_fields_of_an_override_keep_the_base_values() -> None:
    base = {"spec": {"serviceAccountName": "a", "containers": [{"name": "base"}]}}
    merged = reconcile_pods(base, {"spec": {"serviceAccountName": None}})
    assert merged["spec"]["serviceAccountName"] == "a"


def test_building_does_not_change_the_request_or_the_next_pod(tmp_path: Path) -> None:
    build = factory(tmp_path)
    task_request = request({"env": {"X": "1"}, "pod_override": {"metadata": {
        "labels": {"a": "b"}}}})
    before = task_request.executor_config.copy()
    first = build.build(task_request)
    first["spec"]["containers"][0]["env"].append({"name": "MUTATED", "value": "1"})

    second = build.build(task_request)

    assert "MUTATED" not in env_of(second["spec"]["containers"][0])
    assert task_request.executor_config == before


@pytest.mark.parametrize("content", ["kind: Deployment\nspec: {}\n", "spec:\n  containers: []\n",
                                     ": not yaml : ["])
def test_a_template_that_is_not_a_pod_is_a_settings_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(SettingsError, match="PODFLEET_POD_TEMPLATE_FILE"):
        PodFactory(Settings.from_env({"PODFLEET_POD_TEMPLATE_FILE": str(path)}))


def test_a_queues_priority_class_is_the_pods_unless_the_task_names_its_own(
        tmp_path: Path) -> None:
    made = PodFactory(Settings.from_env({"PODFLEET_NAMESPACE": "jobs",
                                         "PODFLEET_QUEUE_PRIORITY_CLASSES": "etl=high"}))
    etl = dataclasses.replace(request(), queue="etl")

    assert made.build(etl)["spec"]["priorityClassName"] == "high"
    assert made.build(dataclasses.replace(request({"priority_class_name": "urgent"}),
                                          queue="etl"))["spec"]["priorityClassName"] == "urgent"
    assert "priorityClassName" not in made.build(request())["spec"]  # queue None: default


def test_an_active_deadline_is_the_pods(tmp_path: Path) -> None:
    pod = factory(tmp_path, template=None).build(request({"active_deadline_seconds": 600}))
    assert pod["spec"]["activeDeadlineSeconds"] == 600
