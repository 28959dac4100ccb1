"""A configuration written for the KubernetesExecutor configures podfleet: ``[kubernetes_executor]``
is the fallback below ``[podfleet]`` and the ``PODFLEET_*`` variables (no Airflow needed)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from podfleet.airflow.config import (
    LAUNCH_FAILURE_RETRIES,
    config_section,
    executor_option,
    settings_from_airflow,
)
from podfleet.settings import DeletePolicy, Settings, SettingsError
from podfleet.settings.airflow_config import (
    FALLBACKS,
    IGNORED,
    KUBERNETES_EXECUTOR_DEFAULTS,
    AirflowConfigFile,
    ignored_options,
    mapping_markdown,
    podfleet_environ,
)

ROOT = Path(__file__).resolve().parents[2]
KEY = "fallback-tests-signing-key-0123456789"


def _config(tmp_path: Path, text: str) -> AirflowConfigFile:
    path = tmp_path / "airflow.cfg"
    path.write_text(text)
    return AirflowConfigFile(path, environ={})


KE_CONFIG = """\
[core]
executor = KubernetesExecutor

[kubernetes_executor]
worker_container_repository = registry.example/airflow-dags
worker_container_tag = 2026.01.1
pod_template_file = {template}
namespace = airflow-tasks
delete_worker_pods = False
multi_namespace_mode = True
multi_namespace_mode_namespace_list = airflow-tasks,team-b
cluster_context = prod
"""


@pytest.fixture
def ke(tmp_path: Path) -> AirflowConfigFile:
    template = tmp_path / "pod.yaml"
    template.write_text("kind: Pod\nspec:\n  containers:\n  - name: base\n")
    return _config(tmp_path, KE_CONFIG.format(template=template))


def test_a_kubernetes_executor_config_becomes_podfleet_settings(ke: AirflowConfigFile
                                                                ) -> None:
    settings = Settings.from_env(podfleet_environ(ke.get, {}))
    assert settings.pods.image == "registry.example/airflow-dags:2026.01.1"
    assert settings.pods.template_file == ke.path.parent / "pod.yaml"
    assert settings.kubernetes.namespace == "airflow-tasks"
    assert settings.pods.delete_policy is DeletePolicy.NEVER
    assert settings.kubernetes.watch_namespaces == ("airflow-tasks", "team-b")
    assert settings.kubernetes.context == "prod"


@pytest.mark.parametrize(("pods", "on_failure", "policy"), [
    ("False", "False", DeletePolicy.NEVER), ("False", "True", DeletePolicy.NEVER),
    ("True", "True", DeletePolicy.ALWAYS)])
def test_the_delete_options_become_a_delete_policy(tmp_path: Path, pods: str, on_failure: str,
                                                    policy: DeletePolicy) -> None:
    config = _config(tmp_path, f"[kubernetes_executor]\ndelete_worker_pods = {pods}\n"
                               f"delete_worker_pods_on_failure = {on_failure}\n")
    assert Settings.from_env(podfleet_environ(config.get, {})).pods.delete_policy is policy


def test_multi_namespace_mode_without_a_list_watches_every_namespace(tmp_path: Path) -> None:
    config = _config(tmp_path, "[kubernetes_executor]\nmulti_namespace_mode = True\n")
    assert Settings.from_env(podfleet_environ(config.get, {})).kubernetes.watch_namespaces \
        == ("*",)


def test_a_podfleet_variable_wins_over_the_kubernetes_executor(ke: AirflowConfigFile) -> None:
    env = podfleet_environ(ke.get, {"PODFLEET_NAMESPACE": "from-env"})
    assert env["PODFLEET_NAMESPACE"] == "from-env"
    assert env["PODFLEET_WORKER_IMAGE"] == "registry.example/airflow-dags:2026.01.1"


def test_a_podfleet_option_wins_over_the_variable_and_the_kubernetes_executor(
        tmp_path: Path, ke: AirflowConfigFile) -> None:
    text = ke.path.read_text() + "\n[podfleet]\nnamespace = from-podfleet\n"
    config = _config(tmp_path, text)
    env = podfleet_environ(config.get, {"PODFLEET_NAMESPACE": "from-env"})
    assert env["PODFLEET_NAMESPACE"] == "from-podfleet"


def test_an_airflow_variable_wins_over_the_file(ke: AirflowConfigFile) -> None:
    config = AirflowConfigFile(ke.path, environ={
        "AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE": "from-airflow-env"})
    assert podfleet_environ(config.get, {})["PODFLEET_NAMESPACE"] == "from-airflow-env"


def test_options_at_upstream_defaults_are_not_carried_over(tmp_path: Path) -> None:
    # What Airflow reports when the cncf.kubernetes provider is installed and nothing is set.
    text = "[kubernetes_executor]\n" + "".join(
        f"{option} = {value}\n" for option, value in KUBERNETES_EXECUTOR_DEFAULTS.items())
    config = _config(tmp_path, text)
    assert podfleet_environ(config.get, {}) == {}
    assert ignored_options(config.get) == []


def test_a_value_podfleet_cannot_use_names_the_kubernetes_executor_option(
        tmp_path: Path) -> None:
    config = _config(tmp_path, "[kubernetes_executor]\nnamespace = Not_A_Namespace\n")
    with pytest.raises(SettingsError, match=r"^\[kubernetes_executor\] namespace \(read as "
                                            r"PODFLEET_NAMESPACE\): .*Not_A_Namespace"):
        podfleet_environ(config.get, {})


def test_options_with_no_podfleet_meaning_are_warned_about_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = _config(tmp_path, "[kubernetes_executor]\nworker_pods_creation_batch_size = 16\n"
                               "verify_ssl = False\nnamespace = tasks\n")
    assert ignored_options(config.get) == ["worker_pods_creation_batch_size", "verify_ssl"]
    with caplog.at_level(logging.WARNING, logger="podfleet.airflow"):
        for _ in range(2):
            settings_from_airflow(config.get)
    warnings = [r.getMessage() for r in caplog.records if "ignores" in r.getMessage()]
    assert len(warnings) == 1
    assert "worker_pods_creation_batch_size" in warnings[0] and "launch_rate" in warnings[0]


def test_the_executors_own_options_fall_back_to_the_kubernetes_executors(
        tmp_path: Path) -> None:
    config = _config(tmp_path, "[kubernetes_executor]\npod_launch_failure_retries = 4\n")
    assert executor_option(LAUNCH_FAILURE_RETRIES, config.get) == 4
    both = _config(tmp_path, "[kubernetes_executor]\npod_launch_failure_retries = 4\n"
                             "[podfleet]\npod_launch_failure_retries = 2\n")
    assert executor_option(LAUNCH_FAILURE_RETRIES, both.get) == 2


def test_the_podfleet_options_defaults_are_the_values_the_executor_uses(
        ke: AirflowConfigFile) -> None:
    options = config_section(ke.get, {"PODFLEET_LAUNCH_RATE": "7"})["podfleet"]["options"]
    assert options["worker_image"]["default"] == "registry.example/airflow-dags:2026.01.1"
    assert options["namespace"]["default"] == "airflow-tasks"
    assert options["launch_rate"]["default"] == "7"
    assert options["redis_url"]["default"] == "redis://127.0.0.1:6379/0"


def test_a_secrets_default_is_never_the_value_in_the_environment(
        ke: AirflowConfigFile) -> None:
    # Airflow writes option defaults into the airflow.cfg it creates on first start.
    environ = {"PODFLEET_DATABASE_URL": "postgresql://podfleet:hunter2@db/podfleet",
               "PODFLEET_SIGNING_KEY": "a-signing-key-of-32-bytes-long!!",
               "PODFLEET_REDIS_URL": "redis://:hunter2@redis:6379/0"}
    options = config_section(ke.get, environ)["podfleet"]["options"]
    written = " ".join(str(option["default"]) for option in options.values())
    assert "hunter2" not in written
    assert "a-signing-key-of-32-bytes-long!!" not in written
    assert options["signing_key"]["sensitive"] is True


def test_every_kubernetes_executor_option_is_mapped_or_ignored_never_both() -> None:
    mapped = {o for fallback in FALLBACKS for o in fallback.options}
    same = {"pod_launch_failure_retries", "pod_launch_failure_excluded_container_reasons"}
    assert not mapped & set(IGNORED)
    assert mapped | set(IGNORED) | same == set(KUBERNETES_EXECUTOR_DEFAULTS)


def test_the_guide_shows_the_mapping_table_as_the_code_has_it() -> None:
    guide = (ROOT / "docs" / "airflow.md").read_text()
    assert mapping_markdown() in guide, "regenerate: python -m podfleet.settings.airflow_config"


def test_an_unreadable_airflow_config_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "podfleet.cli", "worker", "--airflow-config",
         str(tmp_path / "missing.cfg")], capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PODFLEET_SIGNING_KEY": KEY})
    assert result.returncode == 2
    assert "--airflow-config: cannot read" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_provider_reads_the_airflow_cfg_airflow_reads_when_it_loads_the_provider(
        ke: AirflowConfigFile, monkeypatch: pytest.MonkeyPatch) -> None:
    # Airflow reads the provider's metadata before its own config object exists.
    monkeypatch.setenv("AIRFLOW_CONFIG", str(ke.path))
    monkeypatch.setenv("AIRFLOW__KUBERNETES_EXECUTOR__NAMESPACE", "from-airflow-env")
    options = config_section(environ={})["podfleet"]["options"]
    assert options["worker_image"]["default"] == "registry.example/airflow-dags:2026.01.1"
    assert options["namespace"]["default"] == "from-airflow-env"
