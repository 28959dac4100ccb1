"""deploy/helm/values.yaml, the official Airflow chart's values for podfleet, says only what
podfleet and the chart understand."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from podfleet.airflow.config import config_section
from podfleet.settings import VARIABLES, Settings
from podfleet.settings.airflow_config import KUBERNETES_EXECUTOR_DEFAULTS, podfleet_environ

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"

# What the chart's values.schema.json declares for the keys used here (read by hand from the
# chart of Airflow 3; the file itself is not in this repository).
CHART_KEYS: dict[str, set[str]] = {
    "executor": set(), "images": {"airflow"}, "config": set(), "env": set(), "secret": set()}
CHART_IMAGE_KEYS = {"repository", "tag", "digest", "pullPolicy"}
CHART_ENV_ITEM_KEYS = {"name", "value"}
CHART_SECRET_ITEM_KEYS = {"envName", "secretName", "secretKey"}
CHART_EXECUTOR_PATTERN = (r"^(([a-zA-Z_][a-zA-Z0-9_]*.)*[A-Z][a-zA-Z0-9]+Executor)"
                          r"(,(([a-zA-Z_][a-zA-Z0-9_]*.)*[A-Z][a-zA-Z0-9]+Executor))*$")


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    loaded = yaml.safe_load(VALUES.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_values_use_only_keys_the_chart_declares(values: dict[str, Any]) -> None:
    assert set(values) <= set(CHART_KEYS)
    assert set(values["images"]) <= CHART_KEYS["images"]
    assert set(values["images"]["airflow"]) <= CHART_IMAGE_KEYS
    assert all(set(item) == CHART_ENV_ITEM_KEYS for item in values["env"])
    assert all(set(item) <= CHART_SECRET_ITEM_KEYS for item in values["secret"])


def test_the_executor_is_podfleets_and_the_chart_accepts_it(values: dict[str, Any]) -> None:
    assert values["executor"] == "podfleet.airflow.PodFleetExecutor"
    assert re.match(CHART_EXECUTOR_PATTERN, values["executor"])


def test_every_podfleet_name_in_the_values_is_a_podfleet_setting(values: dict[str, Any]
                                                                  ) -> None:
    declared = {v.name for v in VARIABLES}
    names = [item["name"] for item in values["env"]] + \
        [item["envName"] for item in values["secret"]]
    assert names and all(name in declared for name in names if name.startswith("PODFLEET_"))
    assert set(values["config"]["podfleet"]) <= set(config_section()["podfleet"]["options"])
    assert set(values["config"]["kubernetes_executor"]) <= set(KUBERNETES_EXECUTOR_DEFAULTS)


def test_the_values_make_valid_podfleet_settings(values: dict[str, Any],
                                                  tmp_path: Path) -> None:
    config = values["config"]
    # The log archive is an object store, whose filesystem package (s3fs) is checked at start
    # and is not installed here: the values name one, and a directory stands in for it.
    assert str(config["podfleet"]["log_archive"]).startswith("s3://")
    config = {**config, "podfleet": {**config["podfleet"], "log_archive": str(tmp_path)}}

    def get(section: str, option: str) -> str | None:
        value = config.get(section, {}).get(option)
        return None if value is None else str(value)
    env = {item["name"]: item["value"] for item in values["env"]}
    env.update({item["envName"]: "from-the-secret-0123456789" for item in values["secret"]})
    env["PODFLEET_DATABASE_URL"] = "postgresql+psycopg://podfleet@db/podfleet"
    settings = Settings.from_env(podfleet_environ(get, env))
    assert settings.pods.image == "registry.example/airflow-dags:2026.01.1"
    assert settings.kubernetes.namespace == "airflow-tasks"
    assert settings.kubernetes.in_cluster is True
