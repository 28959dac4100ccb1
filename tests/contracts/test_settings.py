"""Settings: defaults that work, and a clear error naming the variable for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from podfleet.contracts.states import TaskState
from podfleet.settings import (
    DeletePolicy,
    Settings,
    SettingsError,
    redact_url,
)
from podfleet.settings.reference import variables_markdown


def test_defaults_need_no_configuration() -> None:
    settings = Settings.from_env({})
    assert settings.redis.url == "redis://127.0.0.1:6379/0"
    assert settings.database.url.startswith("sqlite:///")
    assert settings.kubernetes.watch_namespaces == ("default",)
    assert settings.launch.burst == int(settings.launch.rate)
    assert settings.pods.delete_policy is DeletePolicy.ALWAYS
    assert settings.signing_key is None


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("PODFLEET_LAUNCH_RATE", "fast", "PODFLEET_LAUNCH_RATE must be a number"),
        ("PODFLEET_LAUNCH_RATE", "-1", "PODFLEET_LAUNCH_RATE must be a number ≥ 0"),
        ("PODFLEET_BATCH_SIZE", "0", "PODFLEET_BATCH_SIZE must be an integer ≥ 1"),
        ("PODFLEET_PARALLELISM", "1.5", "PODFLEET_PARALLELISM must be an integer"),
        ("PODFLEET_DELETE_POLICY", "sometimes", "PODFLEET_DELETE_POLICY must be one of"),
        ("PODFLEET_NAMESPACE", "Team_A", "PODFLEET_NAMESPACE='Team_A' is invalid"),
        ("PODFLEET_WATCH_NAMESPACES", "a,B", "PODFLEET_WATCH_NAMESPACES='B' is invalid"),
        ("PODFLEET_REDIS_URL", "localhost:6379", "PODFLEET_REDIS_URL must start with"),
        ("PODFLEET_REDIS_URL", "redis+sentinel://s1:26379", "PODFLEET_REDIS_URL: expected "
         "/service_name"),
        ("PODFLEET_REDIS_URL", "redis+sentinel://s1:x/mymaster", "PODFLEET_REDIS_URL: "
         "sentinel address 's1:x' has no valid port"),
        ("PODFLEET_DATABASE_URL", "mysql://x", "PODFLEET_DATABASE_URL must start with"),
        ("PODFLEET_IN_CLUSTER", "maybe", "PODFLEET_IN_CLUSTER must be true or false"),
        ("PODFLEET_SIGNING_KEY", "short", "PODFLEET_SIGNING_KEY must be at least 16 bytes"),
        ("PODFLEET_EXECUTOR_ID", "has spaces", "PODFLEET_EXECUTOR_ID='has spaces' is invalid"),
        ("PODFLEET_IMAGE_PULL_POLICY", "Sometimes", "PODFLEET_IMAGE_PULL_POLICY must be"),
        ("PODFLEET_POD_TEMPLATE_FILE", "/no/such/file.yaml", "PODFLEET_POD_TEMPLATE_FILE"),
        ("PODFLEET_METRICS_PORT", "70000", "PODFLEET_METRICS_PORT must be an integer"),
        ("PODFLEET_LAUNCH_RATE", "inf", "PODFLEET_LAUNCH_RATE must be a finite number"),
        ("PODFLEET_LAUNCH_RATE", "1e999", "PODFLEET_LAUNCH_RATE must be a finite number"),
        ("PODFLEET_KUBE_TIMEOUT_SECONDS", "nan", "PODFLEET_KUBE_TIMEOUT_SECONDS must be a finite"),
        ("PODFLEET_LAUNCH_QUEUE", "my launches", "PODFLEET_LAUNCH_QUEUE='my launches' is invalid"),
        ("PODFLEET_HEARTBEAT_TIMEOUT_SECONDS", "2",
         "PODFLEET_HEARTBEAT_TIMEOUT_SECONDS (2) must be longer than PODFLEET_HEARTBEAT_SECONDS"),
        ("PODFLEET_FATAL_CONTAINER_REASONS", "ErrImagePull,ImagePulBackOff",
         "'ImagePulBackOff' is not a waiting reason a kubelet reports (did you mean "
         "'ImagePullBackOff'?)"),
        ("PODFLEET_METRICS_HOST", "everywhere", "PODFLEET_METRICS_HOST must be an IP address"),
        ("PODFLEET_QUEUE_RATES", "etl", "PODFLEET_QUEUE_RATES: 'etl' must be queue=rate"),
        ("PODFLEET_QUEUE_RATES", "my etl=5", "PODFLEET_QUEUE_RATES='my etl' is invalid: a "
         "queue name starts with a letter"),
        ("PODFLEET_QUEUE_RATES", "etl=fast",
         "PODFLEET_QUEUE_RATES: the rate of 'etl' must be a finite number ≥ 0"),
        ("PODFLEET_QUEUE_RATES", "etl=inf", "the rate of 'etl' must be a finite number"),
        ("PODFLEET_QUEUE_RATES", "etl=-1", "the rate of 'etl' must be a finite number ≥ 0"),
        ("PODFLEET_QUEUE_RATES", "etl=5,etl=6", "PODFLEET_QUEUE_RATES: 'etl' is listed twice"),
        ("PODFLEET_QUEUE_RATES", "default=5", "the default queue's rate is PODFLEET_LAUNCH_RATE"),
        ("PODFLEET_QUEUE_RATES", "etl.DQ=5", "must not end in DQ or XQ"),
        ("PODFLEET_QUEUE_PRIORITY_CLASSES", "etl",
         "PODFLEET_QUEUE_PRIORITY_CLASSES: 'etl' must be queue=priorityclass"),
        ("PODFLEET_QUEUE_PRIORITY_CLASSES", "etl=High",
         "PODFLEET_QUEUE_PRIORITY_CLASSES: the PriorityClass of 'etl', 'High', is invalid"),
        ("PODFLEET_QUEUE_PRIORITY_CLASSES", "etl=a,etl=b",
         "PODFLEET_QUEUE_PRIORITY_CLASSES: 'etl' is listed twice"),
        ("PODFLEET_QUEUE_PRIORITY_CLASSES", "my etl=high",
         "PODFLEET_QUEUE_PRIORITY_CLASSES='my etl' is invalid"),
        ("PODFLEET_DISRUPTION_RETRIES", "-1", "PODFLEET_DISRUPTION_RETRIES must be"),
        ("PODFLEET_LAUNCH_RAET", "5",
         "PODFLEET_LAUNCH_RAET is not a podfleet setting (did you mean PODFLEET_LAUNCH_RATE?)"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert expected in str(error.value)


def test_queue_rates_map_each_listed_queue_to_its_rate() -> None:
    settings = Settings.from_env({"PODFLEET_QUEUE_RATES": " etl = 50, ml=0.5 ,"})
    assert settings.launch.queue_rates == {"etl": 50.0, "ml": 0.5}
    assert Settings.from_env({}).launch.queue_rates == {}


def test_a_metrics_dir_under_a_file_is_refused_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match=r"PODFLEET_METRICS_DIR=.* cannot be created"):
        Settings.from_env({"PODFLEET_METRICS_DIR": str(blocker / "metrics")})


def test_a_metrics_dir_that_is_a_file_is_refused_at_start(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(SettingsError, match=r"PODFLEET_METRICS_DIR=.* is not a directory"):
        Settings.from_env({"PODFLEET_METRICS_DIR": str(blocker)})


def test_a_metrics_dir_that_does_not_exist_yet_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "new" / "metrics"
    assert Settings.from_env({"PODFLEET_METRICS_DIR": str(path)}).metrics.multiprocess_dir == str(
        path)


def test_every_default_fatal_reason_is_a_kubelet_reason() -> None:
    assert Settings.from_env({}).watcher.fatal_container_reasons == {
        "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"}


def test_the_task_pod_environment_is_not_mistaken_for_typos() -> None:
    settings = Settings.from_env({"PODFLEET_DAG_ID": "etl", "PODFLEET_ROOT": "/src",
                                  "PODFLEET_WORKER_NO_WATCHER": "1", "OTHER_TOOL_RATE": "1"})
    assert settings.launch.rate == 100


def test_podfleet_knows_no_test_suite_variables() -> None:
    with pytest.raises(SettingsError, match="PODFLEET_TEST_POSTGRES_URL is not a podfleet"):
        Settings.from_env({"PODFLEET_TEST_POSTGRES_URL": "postgresql://x"})


def test_metrics_bind_every_address_by_default_and_can_stay_local() -> None:
    assert Settings.from_env({}).metrics.host == "0.0.0.0"
    assert Settings.from_env({"PODFLEET_METRICS_HOST": "127.0.0.1"}).metrics.host == "127.0.0.1"


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
    ("postgresql+psycopg://app:s3cret@db/podfleet", "postgresql+psycopg://app:***@db/podfleet"),
    ("redis://redis:6379/0", "redis://redis:6379/0"),
    ("redis+sentinel://:s3cret@s1:26379,s2:26379/mymaster/0",
     "redis+sentinel://:***@s1:26379,s2:26379/mymaster/0"),
])
def test_redacted_urls_hide_only_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_missing_signing_key_is_reported_when_required() -> None:
    settings = Settings.from_env({})
    with pytest.raises(SettingsError, match="PODFLEET_SIGNING_KEY is not set"):
        settings.require_signing_key()


def test_all_namespaces_are_watched_with_a_star() -> None:
    assert Settings.from_env({"PODFLEET_WATCH_NAMESPACES": "*"}).kubernetes.watch_namespaces == (
        "*",)


def test_configuration_doc_lists_every_variable() -> None:
    doc = Path(__file__).parents[2] / "docs" / "configuration.md"
    assert doc.read_text() == variables_markdown(), (
        "docs/configuration.md is stale: python -m podfleet.settings > docs/configuration.md")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PODFLEET_QUEUE_WEIGHTS": "etl="}, "PODFLEET_QUEUE_WEIGHTS: 'etl=' must be queue=weight"),
        ({"PODFLEET_QUEUE_WEIGHTS": "=3"}, "PODFLEET_QUEUE_WEIGHTS: '=3' must be queue=weight"),
        ({"PODFLEET_QUEUE_WEIGHTS": "default=-1"},
         "PODFLEET_QUEUE_WEIGHTS: the value of 'default' must be a finite number ≥ 0"),
        ({"PODFLEET_QUEUE_WEIGHTS": "default=0"},
         "PODFLEET_QUEUE_WEIGHTS: every queue weighs 0"),
        ({"PODFLEET_QUEUE_WEIGHTS": "default=1,default=2"},
         "PODFLEET_QUEUE_WEIGHTS: 'default' is listed twice"),
        ({"PODFLEET_QUEUE_WEIGHTS": "etl=3"}, "PODFLEET_QUEUE_WEIGHTS: unknown queue 'etl'"),
        ({"PODFLEET_QUEUE_MAX_RUNNING": "etl=5"},
         "PODFLEET_QUEUE_MAX_RUNNING: unknown queue 'etl'"),
        ({"PODFLEET_QUEUE_MAX_RUNNING": "default=0"},
         "PODFLEET_QUEUE_MAX_RUNNING: the cap of 'default' must be a whole number ≥ 1"),
        ({"PODFLEET_QUEUE_MAX_RUNNING": "default=1.5"},
         "PODFLEET_QUEUE_MAX_RUNNING: the cap of 'default' must be a whole number ≥ 1"),
        ({"PODFLEET_MAX_PENDING_PODS": "-1"}, "PODFLEET_MAX_PENDING_PODS must be an integer ≥ 0"),
        ({"PODFLEET_NAMESPACE_MAX_PENDING_PODS": "default=0"},
         "PODFLEET_NAMESPACE_MAX_PENDING_PODS: the cap of 'default' must be a whole number ≥ 1"),
        ({"PODFLEET_NAMESPACE_MAX_PENDING_PODS": "Team_A=5"},
         "PODFLEET_NAMESPACE_MAX_PENDING_PODS='Team_A' is invalid"),
        ({"PODFLEET_NAMESPACE_MAX_PENDING_PODS": "team-b=5"},
         "PODFLEET_NAMESPACE_MAX_PENDING_PODS: 'team-b' is not a task namespace"),
    ],
)
def test_bad_admission_settings_fail_at_start_in_one_line(env: dict[str, str],
                                                          expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_queue_weights_map_each_queue_to_its_weight() -> None:
    settings = Settings.from_env({"PODFLEET_QUEUE_RATES": "etl=0,ml=0",
                                  "PODFLEET_QUEUE_WEIGHTS": "etl=3, ml=1,default=1"})
    assert settings.launch.queue_weights == {"etl": 3.0, "ml": 1.0, "default": 1.0}


@pytest.mark.parametrize(("policy", "deleted"), [
    (DeletePolicy.ALWAYS, {TaskState.SUCCESS, TaskState.FAILED, TaskState.REVOKED}),
    (DeletePolicy.ON_SUCCESS, {TaskState.SUCCESS}),
    (DeletePolicy.ON_FAILURE, {TaskState.FAILED}),
    (DeletePolicy.NEVER, set()),
])
def test_a_delete_policy_deletes_the_finished_pods_of_the_tasks_it_names(
        policy: DeletePolicy, deleted: set[TaskState]) -> None:
    ended = (TaskState.SUCCESS, TaskState.FAILED, TaskState.REVOKED)
    assert {state for state in ended if policy.deletes(state)} == deleted
