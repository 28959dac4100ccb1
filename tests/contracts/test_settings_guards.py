"""Settings that would let work be silently lost or escalated are refused at start, naming
the variable: a log archive nobody can read or write, a directory root cannot write in, a
task namespace nobody watches, a Pod Security level that does not exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from podfleet.settings import PodSecurityLevel, Settings, SettingsError

# A directory no process can create files in, whatever its user (root included).
UNWRITABLE = "/proc"


@pytest.mark.parametrize(("value", "expected"), [
    ("memory://logs", r"PODFLEET_LOG_ARCHIVE='memory://logs': memory:// lives in one "
                      r"process's memory"),
    ("bogus://bucket/logs", r"PODFLEET_LOG_ARCHIVE='bogus://bucket/logs': 'bogus' is not a "
                            r"filesystem fsspec knows"),
    (UNWRITABLE, r"PODFLEET_LOG_ARCHIVE='/proc' is not writable"),
    (f"{UNWRITABLE}/podfleet-logs", r"PODFLEET_LOG_ARCHIVE='/proc/podfleet-logs' cannot be "
                                    r"created"),
])
def test_a_log_archive_that_cannot_be_used_is_refused_at_start(value: str,
                                                                expected: str) -> None:
    with pytest.raises(SettingsError, match=expected):
        Settings.from_env({"PODFLEET_LOG_ARCHIVE": value})


def test_a_writable_log_archive_directory_is_accepted_and_left_as_it_was(tmp_path: Path) -> None:
    archive = tmp_path / "logs"
    assert Settings.from_env({"PODFLEET_LOG_ARCHIVE": str(archive)}).logs.archive == str(
        archive)
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_a_metrics_dir_nobody_can_write_in_is_refused_even_for_root() -> None:
    with pytest.raises(SettingsError, match=r"PODFLEET_METRICS_DIR='/proc' is not writable"):
        Settings.from_env({"PODFLEET_METRICS_DIR": UNWRITABLE})


def test_task_namespaces_default_to_the_launch_namespace() -> None:
    settings = Settings.from_env({"PODFLEET_NAMESPACE": "team-a",
                                  "PODFLEET_WATCH_NAMESPACES": "*"})
    assert settings.kubernetes.task_namespaces == ("team-a",)
    assert settings.pods.service_accounts == ()
    assert settings.pods.security is PodSecurityLevel.OFF


def test_a_task_namespace_nobody_watches_is_refused_at_start() -> None:
    with pytest.raises(SettingsError, match=r"PODFLEET_TASK_NAMESPACES: 'team-b' not in "
                                            r"PODFLEET_WATCH_NAMESPACES \(default,team-a\)"):
        Settings.from_env({"PODFLEET_WATCH_NAMESPACES": "default,team-a",
                           "PODFLEET_TASK_NAMESPACES": "default,team-b"})


def test_an_unknown_pod_security_level_is_refused() -> None:
    with pytest.raises(SettingsError, match="PODFLEET_POD_SECURITY must be one of off, "
                                            "baseline, restricted"):
        Settings.from_env({"PODFLEET_POD_SECURITY": "strict"})
