"""The Airflow integration's pure parts, which need no Airflow installed: the ``[podfleet]``
section and its precedence, launch ids, token expiry, and executor_config settlement."""

from __future__ import annotations

import base64
import json
import tomllib
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from podfleet.airflow.config import (
    config_section,
    executor_id_for_job,
    option_name,
    podfleet_environ,
)
from podfleet.airflow.pod_config import PodTemplates, resolve_executor_config
from podfleet.airflow.provider import get_provider_info
from podfleet.airflow.workloads import airflow_metadata, launch_id_for, token_expiry
from podfleet.contracts.messages import is_launch_id
from podfleet.pods import InvalidExecutorConfig, validate_executor_config
from podfleet.settings import VARIABLES


def _conf(values: dict[str, str]) -> Any:
    section = config_section()["podfleet"]["options"]

    def get(sec: str, option: str) -> str | None:
        if sec != "podfleet":
            return None                                     # no [kubernetes_executor]
        if option in values:
            return values[option]
        return section[option]["default"] if option in section else None
    return get


def test_every_podfleet_variable_has_a_podfleet_option_with_its_default() -> None:
    options = config_section()["podfleet"]["options"]
    for variable in VARIABLES:
        assert options[option_name(variable.name)]["default"] == variable.default
    assert options["signing_key"]["sensitive"] is True


def test_an_option_set_in_airflow_wins_over_the_variable() -> None:
    env = podfleet_environ(_conf({"namespace": "airflow-ns"}),
                           {"PODFLEET_NAMESPACE": "env-ns", "HOME": "/root"})
    assert env["PODFLEET_NAMESPACE"] == "airflow-ns"
    assert "HOME" not in env


def test_an_option_left_at_its_default_falls_back_to_the_variable() -> None:
    env = podfleet_environ(_conf({}), {"PODFLEET_NAMESPACE": "env-ns"})
    assert env["PODFLEET_NAMESPACE"] == "env-ns"


def test_each_scheduler_job_is_its_own_podfleet_executor() -> None:
    env = podfleet_environ(_conf({}), {}, executor_id=executor_id_for_job(42, "team-a"))
    assert env["PODFLEET_EXECUTOR_ID"] == "airflow-42-team-a"
    assert podfleet_environ(_conf({"executor_id": "fixed"}), {},
                            executor_id="airflow-1")["PODFLEET_EXECUTOR_ID"] == "fixed"


def test_the_launch_id_is_the_pre_assigned_uuid_and_replacements_differ() -> None:
    eid = str(uuid.uuid4())
    first = launch_id_for(eid, "ti")
    assert first == uuid.UUID(eid).hex
    replacements = {launch_id_for(eid, "ti", n) for n in (2, 3)}
    assert len(replacements) == 2 and first not in replacements
    assert all(is_launch_id(i) for i in (first, *replacements, launch_id_for(None, "ti")))
    assert launch_id_for("pod-name-not-a-uuid", "ti") != launch_id_for("other", "ti")


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'HS512'})}.{part(claims)}.signature"


def test_the_deadline_is_the_token_expiry() -> None:
    assert token_expiry(_jwt({"exp": 1_900_000_000, "sub": "ti"})) == 1_900_000_000.0
    assert token_expiry(_jwt({"sub": "ti"})) is None
    assert token_expiry("garbage") is None


TI = SimpleNamespace(dag_id="etl", task_id="load:all", run_id="manual__2026-01-01T00:00:00+00:00",
                     try_number=2, map_index=3, id="0190-ti")


def test_labels_and_annotations_are_the_kubernetes_executors() -> None:
    labels, annotations = airflow_metadata(TI, scheduler_job_id=7, airflow_version="3.3.2")
    assert labels["dag_id"] == "etl" and labels["try_number"] == "2"
    assert labels["map_index"] == "3" and labels["airflow-worker"] == "7"
    assert labels["task_id"] != "load:all"                  # not a valid label value: hashed
    assert annotations["task_id"] == "load:all"             # the raw value
    assert annotations["run_id"] == TI.run_id
    assert "kubernetes_executor" not in labels


def _resolve(config: Any, templates: PodTemplates | None = None, hook: Any = None
             ) -> dict[str, Any]:
    labels, annotations = airflow_metadata(TI, scheduler_job_id=1, airflow_version="3.3.2")
    return resolve_executor_config(config, labels=labels, annotations=annotations,
                                   templates=templates or PodTemplates(), mutation_hook=hook)


def test_template_file_then_labels_then_override(tmp_path: Path) -> None:
    template = tmp_path / "pod.yaml"
    template.write_text("kind: Pod\nmetadata:\n  labels: {tier: template, dag_id: x}\n"
                        "spec:\n  containers:\n  - name: base\n    image: from-template\n")
    config = _resolve({"pod_template_file": str(template), "pod_override": {
        "metadata": {"labels": {"tier": "override"}}}})
    pod = config["pod_override"]
    assert pod["metadata"]["labels"]["tier"] == "override"
    assert pod["metadata"]["labels"]["dag_id"] == "etl"      # Airflow's identity over the file
    assert pod["spec"]["containers"][0]["image"] == "from-template"
    assert "pod_template_file" not in config
    validate_executor_config(config)                         # podfleet accepts the result


def test_a_missing_template_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidExecutorConfig, match="pod_template_file: cannot read"):
        _resolve({"pod_template_file": str(tmp_path / "nope.yaml")})


def test_the_legacy_kubernetes_executor_dict_is_refused() -> None:
    with pytest.raises(InvalidExecutorConfig, match="legacy"):
        validate_executor_config(_resolve({"KubernetesExecutor": {"image": "x"}}))


def test_the_pod_mutation_hook_sees_the_merged_pod_and_its_changes_stay() -> None:
    seen: list[Any] = []

    def hook(pod: Any) -> None:
        seen.append(pod.metadata.labels["dag_id"])
        pod.metadata.labels["mutated"] = "yes"
    config = _resolve({}, hook=hook)
    assert seen == ["etl"]
    assert config["pod_override"]["metadata"]["labels"]["mutated"] == "yes"


def test_the_provider_names_the_distribution_that_carries_its_entry_point() -> None:
    # Airflow's provider discovery refuses a provider whose package-name differs from it
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "providers" / "airflow" / "pyproject.toml").read_text())
    assert get_provider_info()["package-name"] == project["project"]["name"]
    assert "apache_airflow_provider" in project["project"]["entry-points"]
