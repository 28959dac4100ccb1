"""Fault configuration: JSON round trips, validation, command-line flags, the admin API."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest
from cluster_support import fast_simulator

from podfleet.simulator.admin import AdminClient, AdminError
from podfleet.simulator.cluster.cli import add_arguments, apply_arguments
from podfleet.simulator.config import SimulatorConfig, config_from_json, config_to_json
from podfleet.simulator.faults import (
    FaultConfig,
    VerbFaults,
    fault_config_from_json,
    fault_config_to_json,
)
from podfleet.simulator.server import RunningSimulator


def test_a_fault_config_survives_json() -> None:
    config = FaultConfig(verbs={"create": VerbFaults(latency_ms=5, error_429=0.5)}, pod_quota=3)

    assert fault_config_from_json(fault_config_to_json(config)) == config


def test_a_simulator_config_with_faults_survives_process_mode_json() -> None:
    config = SimulatorConfig(faults=FaultConfig(verbs={"*": VerbFaults(error_500=0.1)}))

    assert config_from_json(config_to_json(config)).faults == config.faults


@pytest.mark.parametrize("bad", [
    {"verbs": {"fly": {"error_429": 0.1}}},
    {"verbs": {"create": {"error_429": 0.8, "error_500": 0.5}}},
    {"verbs": {"create": {"nonsense": 1}}},
    {"timeout_mode": "explode"},
    {"pod_quota": "many"},
    {"unknown_field": 1},
])
def test_invalid_fault_configs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        fault_config_from_json(bad)


def test_a_patch_keeps_the_fields_it_does_not_name() -> None:
    base = FaultConfig(pod_quota=5)

    patched = fault_config_from_json({"rate_limit_rps": 10}, base)

    assert (patched.pod_quota, patched.rate_limit_rps) == (5, 10)


def test_command_line_flags_build_the_configs() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([
        "--fault-429", "create=0.25", "--fault-latency", "*=3", "--pod-quota", "10",
        "--rate-limit", "500", "--watch-drop", "30", "--schedule-delay", "0.2", "--local",
    ])
    config = SimulatorConfig()

    apply_arguments(args, config)

    assert config.faults.verbs == {
        "create": VerbFaults(error_429=0.25), "*": VerbFaults(latency_ms=3)}
    assert (config.faults.pod_quota, config.faults.rate_limit_rps) == (10, 500)
    assert config.faults.watch_drop_s == 30
    assert config.cluster.schedule_delay_s == 0.2 and config.cluster.local_mode


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSimulator]:
    with fast_simulator() as simulator:
        yield simulator


def test_admin_refuses_a_bad_fault_config_with_400(sim: RunningSimulator) -> None:
    with pytest.raises(AdminError) as caught:
        sim.admin.set_faults(verbs={"create": {"error_429": 2.0}})

    assert caught.value.status == 400
    assert sim.admin.faults() == FaultConfig()


def test_admin_update_changes_only_the_named_fields(sim: RunningSimulator) -> None:
    admin: AdminClient = sim.admin
    admin.set_faults(pod_quota=7)

    result = admin.update_faults(rate_limit_rps=100)

    assert (result.pod_quota, result.rate_limit_rps) == (7, 100)
    admin.clear_faults()


def test_failing_an_unknown_node_is_404(sim: RunningSimulator) -> None:
    with pytest.raises(AdminError) as caught:
        sim.admin.fail_node("no-such-node")

    assert caught.value.status == 404


def test_an_unknown_node_failure_mode_is_400(sim: RunningSimulator) -> None:
    with pytest.raises(AdminError) as caught:
        sim.admin.fail_node("sim-node-0", "explode")

    assert caught.value.status == 400
