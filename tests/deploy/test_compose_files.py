"""docker-compose.yml and docker-compose.sim.yml: valid, complete, and scale-ready workers.

No Docker engine runs here: the files are checked by parsing them, by `docker-compose config`
(Compose's own schema and interpolation check, which needs no engine), and by checking that
every file they mount exists.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_checks import ROOT, require_tool

MAIN = ROOT / "docker-compose.yml"
SIM = ROOT / "docker-compose.sim.yml"


def _compose(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


@pytest.mark.parametrize("path", [MAIN, SIM], ids=lambda p: p.name)
def test_compose_config_accepts_the_file(path: Path) -> None:
    # Given a signing key in the environment (the files refuse to start without one)
    env = {**os.environ, "PODFLEET_SIGNING_KEY": "0123456789abcdef-test"}
    # When Compose validates and interpolates the file
    result = subprocess.run([require_tool("docker-compose"), "-f", str(path), "config", "-q"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    # Then it is accepted
    assert result.returncode == 0, result.stderr


def test_compose_config_refuses_a_missing_signing_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PODFLEET_SIGNING_KEY"}
    result = subprocess.run([require_tool("docker-compose"), "-f", str(MAIN), "config", "-q"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "PODFLEET_SIGNING_KEY" in result.stderr


def test_main_stack_has_every_required_service() -> None:
    services = _compose(MAIN)["services"]
    assert {"redis", "postgres", "k3s", "worker", "prometheus", "grafana"} <= set(services)


def test_sim_stack_uses_the_simulator_instead_of_k3s() -> None:
    services = _compose(SIM)["services"]
    assert "k3s" not in services
    assert services["sim"]["command"][0] == "sim"
    assert {"redis", "postgres", "worker", "prometheus", "grafana", "loadgen"} <= set(services)


@pytest.mark.parametrize("path", [MAIN, SIM], ids=lambda p: p.name)
def test_worker_can_be_scaled(path: Path) -> None:
    # --scale worker=N fails with a fixed container name or a published host port
    worker = _compose(path)["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "9464" in [str(p) for p in worker["expose"]]
    assert worker["command"] == ["worker"]


def test_k3s_kubeconfig_is_shared_with_the_workers_by_volume() -> None:
    compose = _compose(MAIN)
    services = compose["services"]
    assert "kubeconfig" in compose["volumes"]
    assert "kubeconfig:/kube" in services["k3s"]["volumes"]
    assert "kubeconfig:/kube:ro" in services["worker"]["volumes"]
    # The workers reach the API server by service name, not 127.0.0.1
    assert "https://k3s:6443" in " ".join(services["kubeconfig"]["command"])
    assert "--tls-san=k3s" in services["k3s"]["command"]
    assert services["worker"]["environment"]["PODFLEET_KUBECONFIG"].startswith("/kube/")


def test_sim_kubeconfig_names_the_sim_service() -> None:
    kubeconfig = yaml.safe_load((ROOT / "deploy" / "compose" / "sim-kubeconfig.yaml").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "http://sim:6443"


@pytest.mark.parametrize("path", [MAIN, SIM], ids=lambda p: p.name)
def test_every_bind_mounted_file_exists(path: Path) -> None:
    for name, service in _compose(path)["services"].items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_prometheus_finds_every_worker_replica_by_dns() -> None:
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    workers = jobs["podfleet-workers"]["dns_sd_configs"][0]
    assert workers["names"] == ["worker"] and workers["port"] == 9464
