"""podfleet's Kubernetes layer works with the 36.x client Airflow's provider pins, and with 37.x.

The 36.x client is installed beside the virtualenv (``.podfleet/kubernetes-36``, by
scripts/services.sh) and put first on PYTHONPATH of a subprocess that builds a pod from a
``V1Pod`` override, creates it through the sync and async transports, lists and deletes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_checks import missing_service

from podfleet.simulator.server import start_simulator

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).with_name("compat_program.py")
CLIENT_36 = ROOT / ".podfleet" / "kubernetes-36"


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with start_simulator() as sim:
        yield sim.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


def run_program(kubeconfig: Path, extra_path: Path | None) -> dict[str, object]:
    env = dict(os.environ)
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    result = subprocess.run([sys.executable, str(PROGRAM), str(kubeconfig)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    data: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def check(data: dict[str, object]) -> None:
    assert data["image"] == "busybox:1"  # the V1Pod override reached the pod
    assert data["label"] == "data"
    assert data["duplicate"] == "AlreadyExists"
    assert data["async_name"] in data["listed"]  # type: ignore[operator]
    assert data["deleted"] is True


def test_the_installed_client_drives_the_kube_layer(kubeconfig: Path) -> None:
    data = run_program(kubeconfig, None)
    assert str(data["version"]).startswith("37.")
    check(data)


def test_the_36_client_drives_the_kube_layer(kubeconfig: Path) -> None:
    if not (CLIENT_36 / "kubernetes").is_dir():
        missing_service(f"kubernetes 36.x not installed in {CLIENT_36} "
                        "(scripts/services.sh installs it)")
    data = run_program(kubeconfig, CLIENT_36)
    assert str(data["version"]).startswith("36.")
    check(data)
