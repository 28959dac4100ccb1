"""Settings: defaults that work, and a clear error naming the variable for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from podfleet.settings import DeletePolicy, Settings, SettingsError, variables_markdown


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
        ("PODFLEET_DATABASE_URL", "mysql://x", "PODFLEET_DATABASE_URL must start with"),
        ("PODFLEET_IN_CLUSTER", "maybe", "PODFLEET_IN_CLUSTER must be true or false"),
        ("PODFLEET_SIGNING_KEY", "short", "PODFLEET_SIGNING_KEY must be at least 16 bytes"),
        ("PODFLEET_EXECUTOR_ID", "has spaces", "PODFLEET_EXECUTOR_ID='has spaces' is invalid"),
        ("PODFLEET_IMAGE_PULL_POLICY", "Sometimes", "PODFLEET_IMAGE_PULL_POLICY must be"),
        ("PODFLEET_POD_TEMPLATE_FILE", "/no/such/file.yaml", "PODFLEET_POD_TEMPLATE_FILE"),
        ("PODFLEET_METRICS_PORT", "70000", "PODFLEET_METRICS_PORT must be an integer"),
    ],
)
def test_invalid_value_names_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env({variable: value})
    assert expected in str(error.value)


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
