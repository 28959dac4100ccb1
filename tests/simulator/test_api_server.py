"""Starting and stopping: thread mode, process mode, the CLI, and the kubeconfig it writes."""

from __future__ import annotations

import gc
import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import urllib3
import yaml
from kubernetes import client, config

from podfleet.simulator.config import SimulatorConfig, config_from_json, config_to_json
from podfleet.simulator.faults import FaultConfig, VerbFaults
from podfleet.simulator.server import READY_PREFIX, start_simulator


def test_config_survives_the_trip_to_a_child_process() -> None:
    original = SimulatorConfig(namespaces=["a"], history_window_seconds=5.0, token="t")
    original.cluster.nodes = 7

    copy = config_from_json(config_to_json(original))

    assert copy == original


def test_process_mode_serves_and_stops(tmp_path: Path) -> None:
    sim = start_simulator(SimulatorConfig(), mode="process")
    try:
        api = sim.api_client()
        namespaces = client.CoreV1Api(api).list_namespace()
        api.close()
        process = sim.process  # type: ignore[attr-defined]
    finally:
        sim.stop()

    assert "default" in {ns.metadata.name for ns in namespaces.items}
    assert process.poll() is not None


def test_a_process_mode_simulator_logs_to_the_file_it_is_given(tmp_path: Path) -> None:
    # Given a process-mode simulator started with a log file
    log = tmp_path / "simulator.log"
    with start_simulator(SimulatorConfig(), mode="process", log=log) as sim:
        # Then the simulator process writes its stderr there (Linux: /proc shows its fd 2)
        stderr = Path(f"/proc/{sim.process.pid}/fd/2").resolve()  # type: ignore[attr-defined]

    assert stderr == log.resolve()


def test_thread_mode_leaves_no_thread_behind() -> None:
    before = {t.name for t in threading.enumerate()}

    with start_simulator(SimulatorConfig()) as sim:
        during = {t.name for t in threading.enumerate()}
        assert sim.url.startswith("https://127.0.0.1:")

    after = {t.name for t in threading.enumerate()}
    assert "podfleet-simulator" in during
    assert "podfleet-simulator" not in after - before


def test_thread_mode_stop_ends_a_request_held_by_a_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    faults = FaultConfig(verbs={"list": VerbFaults(timeout=1.0)}, timeout_hold_s=600.0)
    sim = start_simulator(SimulatorConfig(faults=faults))
    pool = urllib3.PoolManager(ca_certs=sim.ca_file, headers=sim.auth_headers())
    try:
        # The client gives up; the server still holds the request when it is told to stop.
        with pytest.raises(urllib3.exceptions.ReadTimeoutError):
            pool.request("GET", sim.url + "/api/v1/pods", retries=False, timeout=0.3)
    finally:
        caplog.set_level(logging.ERROR, logger="asyncio")
        sim.stop()
        pool.clear()
    del sim
    gc.collect()  # a task left pending on the closed loop is reported when it is collected

    assert not [r for r in caplog.records if "pending" in r.getMessage()]


def test_official_client_loads_the_written_kubeconfig(tmp_path: Path) -> None:
    with start_simulator(SimulatorConfig()) as sim:
        path = sim.write_kubeconfig(tmp_path / "kc.yaml")
        api = config.new_client_from_config(config_file=str(path))
        try:
            nodes = client.CoreV1Api(api).list_node()
        finally:
            api.close()

    document = yaml.safe_load(path.read_text())
    assert document["current-context"] == "podfleet-sim"
    assert document["clusters"][0]["cluster"]["server"] == sim.url
    assert len(nodes.items) > 0


def test_cli_prints_its_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc.yaml"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "podfleet.simulator",
            "--port",
            "0",
            "--nodes",
            "2",
            "--namespace",
            "extra",
            "--kubeconfig-out",
            str(kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line[len(READY_PREFIX) :].strip()
        api = config.new_client_from_config(config_file=str(kubeconfig))
        try:
            core = client.CoreV1Api(api)
            nodes = core.list_node()
            namespaces = {ns.metadata.name for ns in core.list_namespace().items}
        finally:
            api.close()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(15)

    assert line.startswith(READY_PREFIX)
    assert url.startswith("https://127.0.0.1:")
    assert len(nodes.items) == 2
    assert "extra" in namespaces
    assert code == 0
