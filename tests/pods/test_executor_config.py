"""executor_config validation: what a submit accepts, how it is normalised, what it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes.client import models as k8s

from podfleet.pods import InvalidExecutorConfig, task_namespace, validate_executor_config
from podfleet.pods.config import EXECUTOR_CONFIG_FIELDS, executor_config_markdown


@pytest.mark.parametrize("config", [None, {}])
def test_no_config_means_no_changes(config: Any) -> None:
    assert validate_executor_config(config) == {}


def test_a_v1pod_override_becomes_api_json() -> None:
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(labels={"team": "data"}),
        spec=k8s.V1PodSpec(
            node_selector={"pool": "gpu"},
            containers=[k8s.V1Container(
                name="base", image="busybox:1.36",
                env=[k8s.V1EnvVar(name="A", value="1")],
                volume_mounts=[k8s.V1VolumeMount(name="data", mount_path="/data")])],
            volumes=[k8s.V1Volume(name="data", empty_dir=k8s.V1EmptyDirVolumeSource())]))

    result = validate_executor_config({"pod_override": pod})

    assert result == {"pod_override": {
        "metadata": {"labels": {"team": "data"}},
        "spec": {
            "nodeSelector": {"pool": "gpu"},
            "containers": [{"name": "base", "image": "busybox:1.36",
                            "env": [{"name": "A", "value": "1"}],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]}}}
    orjson.dumps(result)  # travels in messages and the DB as is


def test_per_task_fields_are_normalised() -> None:
    result = validate_executor_config({
        "image": "python:3.12",
        "image_pull_policy": "Always",
        "resources": {"request_cpu": "500m", "limits": {"memory": "1Gi", "nvidia.com/gpu": 1}},
        "env": {"MODE": "fast"},
        "volume_mounts": [{"name": "cache", "mount_path": "/cache", "read_only": True}],
        "tolerations": [k8s.V1Toleration(key="gpu", operator="Exists")],
        "secrets": [{"deploy_type": "env", "deploy_target": "TOKEN", "secret": "api",
                     "key": "token"}],
    })

    assert result["resources"] == {"requests": {"cpu": "500m"},
                                   "limits": {"memory": "1Gi", "nvidia.com/gpu": "1"}}
    assert result["env"] == [{"name": "MODE", "value": "fast"}]
    assert result["volume_mounts"] == [{"name": "cache", "mountPath": "/cache",
                                        "readOnly": True}]
    assert result["tolerations"] == [{"key": "gpu", "operator": "Exists"}]


@pytest.mark.parametrize(("config", "message"), [
    ("not a dict", "must be a dict or None"),
    (k8s.V1Pod(), "not a bare V1Pod"),
    ({"KubernetesExecutor": {}}, "legacy form"),
    ({"imagee": "x"}, "unknown key(s) 'imagee'"),
    ({"image": "has space"}, "executor_config.image"),
    ({"image_pull_policy": "Sometimes"}, "executor_config.image_pull_policy"),
    ({"resources": {"requests": {"cpu": "lots"}}}, "executor_config.resources.requests['cpu']"),
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
     "must be less than or equal to cpu limit"),
    ({"resources": {"requests": {"gpus": "1"}}}, "unknown resource 'gpus'"),
    ({"labels": {"team": "-bad-"}}, "executor_config.labels['team']"),
    ({"labels": {"bad key!": "x"}}, "invalid key"),
    ({"node_selector": {"pool": 3}}, "value must be a string"),
    ({"annotations": {"a/b/c": "x"}}, "executor_config.annotations"),
    ({"env": [{"name": "A=B", "value": "x"}]}, "executor_config.env[0].name"),
    ({"env": [{"name": "A"}, {"name": "A"}]}, "duplicate variable 'A'"),
    ({"volumes": [{"name": "Bad_Name"}]}, "executor_config.volumes[0].name"),
    ({"volume_mounts": [{"name": "v", "mountPath": "relative"}]}, "absolute path"),
    ({"namespace": "Not-A-Namespace"}, "executor_config.namespace"),
    ({"service_account_name": "bad name"}, "executor_config.service_account_name"),
    ({"secrets": [{"deploy_type": "volume", "secret": "s", "deploy_target": "x"}]},
     "absolute mount path"),
    ({"secrets": [{"deploy_type": "file", "secret": "s"}]}, "must be 'env' or 'volume'"),
    ({"pod_override": {"spec": {"containers": [{"name": "Bad"}]}}},
     "pod_override.spec.containers[0].name"),
    ({"pod_override": {"spec": {"containers": [{"name": "c", "resources": {
        "limits": {"memory": "1Zi"}}}]}}}, "pod_override.spec.containers[0].resources"),
    ({"pod_override": {"metadata": {"labels": {"x": "y" * 64}}}},
     "pod_override.metadata.labels"),
    ({"affinity": object()}, "must be JSON-serialisable"),
    ({"pod_override": k8s.V1Container(name="base", image="x")},
     "pod_override: must be a V1Pod, not a V1Container"),
    ({"pod_override": {"name": "base", "image": "x"}},
     "pod_override: is not a pod: unknown field(s) image, name"),
    ({"pod_override": {"kind": "Deployment", "spec": {}}}, "pod_override.kind: must be 'Pod'"),
    ({"pod_override": {"metadata": {"namespace": "Bad_NS"}}},
     "pod_override.metadata.namespace"),
    ({"namespace": "team-a", "pod_override": {"metadata": {"namespace": "team-b"}}},
     "disagree"),
    ({"priority_class_name": "High Priority"}, "executor_config.priority_class_name"),
    ({"active_deadline_seconds": 0}, "executor_config.active_deadline_seconds: must be a "
                                     "positive whole number"),
    ({"active_deadline_seconds": "60"}, "executor_config.active_deadline_seconds"),
    ({"active_deadline_seconds": True}, "executor_config.active_deadline_seconds"),
])
def test_invalid_configs_are_refused_naming_the_field(config: Any, message: str) -> None:
    with pytest.raises(InvalidExecutorConfig) as raised:
        validate_executor_config(config)
    assert message in str(raised.value)


@pytest.mark.parametrize(("config", "namespace"), [
    ({}, "default-ns"),
    ({"namespace": "team-a"}, "team-a"),
    ({"pod_override": {"metadata": {"namespace": "team-b"}}}, "team-b"),
])
def test_a_task_runs_in_its_own_namespace_or_the_default(config: dict[str, Any],
                                                         namespace: str) -> None:
    assert task_namespace(validate_executor_config(config), "default-ns") == namespace


def test_executor_config_doc_lists_every_field() -> None:
    doc = Path(__file__).parents[2] / "docs" / "executor-config.md"
    assert doc.read_text() == executor_config_markdown(), (
        "docs/executor-config.md is stale: "
        "python -m podfleet.pods > docs/executor-config.md")


def test_every_field_applied_in_the_pod_is_applied_by_the_launcher() -> None:
    # Fields without a layer-3 applier take effect elsewhere: the namespace as the request's,
    # the override merged last, the cluster and selector as the request's eligible clusters
    assert {f.name for f in EXECUTOR_CONFIG_FIELDS if f.apply is None} == {
        "pod_override", "namespace", "cluster", "cluster_selector"}
