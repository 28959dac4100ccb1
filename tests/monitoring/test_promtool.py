"""Prometheus' own checker accepts the rules and the scrape config, and the rules' unit tests
(monitoring/prometheus/alerts_test.yml) pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

from service_checks import require_tool

PROMETHEUS_DIR = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_tool("promtool"), *args], cwd=PROMETHEUS_DIR,
                          capture_output=True, text=True, timeout=120)


def test_alert_rules_pass_promtool_check_rules() -> None:
    result = _promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_scrape_config_passes_promtool_check_config() -> None:
    result = _promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_fire_as_their_unit_tests_expect() -> None:
    result = _promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
