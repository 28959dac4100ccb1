"""The README's first command: ``podfleet demo`` runs a mixed fleet end to end and says so."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from podfleet.local.demo import Fate, make_fleet, parse_mix


def podfleet(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "podfleet.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=_clean_env())


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PODFLEET_")}


def test_small_demo_fleet_ends_as_every_fate_asked() -> None:
    result = podfleet("demo", "--tasks", "60", "--no-progress", "--timeout", "150",
                      "--mix", "70,10,10,10", "--duration", "0.3", "--seed", "7")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "every task reached the state its fate asked for" in out
    assert "OOMKilled" in out and "ErrImagePull" in out
    assert "launch (submit → pod accepted)" in out
    assert "60/60 finished" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--tasks", "0"], "--tasks must be ≥ 1"),
    (["--mix", "1,2"], "--mix needs four percentages"),
    (["--mix", "a,b,c,d"], "--mix must be numbers"),
    (["--processes", "0"], "--processes and --threads must be ≥ 1"),
])
def test_bad_demo_arguments_exit_2_with_a_reason(args: list[str], message: str) -> None:
    result = podfleet("demo", *args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr


def test_fleet_mix_follows_the_requested_proportions() -> None:
    import random

    fleet = make_fleet(4000, parse_mix("50,30,20,0"), 1.0, random.Random(1))
    share = {k: sum(f.kind == k for f in fleet) / len(fleet) for k in ("success", "error", "oom")}
    assert abs(share["success"] - 0.5) < 0.03 and abs(share["oom"] - 0.2) < 0.03
    assert not any(f.kind == "image_pull" for f in fleet)


@pytest.mark.parametrize(("fate", "state", "reason", "ok"), [
    (Fate("success", 1), "success", None, True),
    (Fate("success", 1), "failed", "Error", False),
    (Fate("oom", 1), "failed", "OOMKilled", True),
    (Fate("oom", 1), "failed", "Error", False),
    (Fate("image_pull", 1), "failed", "ImagePullBackOff", True),
    (Fate("error", 1), "success", None, False),
])
def test_fate_judges_final_states(fate: Fate, state: str, reason: str | None, ok: bool) -> None:
    assert fate.satisfied_by(state, reason) is ok


@pytest.mark.slow  # the demo smoke above runs in CI; this one starts a second simulator
def test_a_two_cluster_demo_ends_every_task_and_shows_each_cluster() -> None:
    # When the demo runs a small fleet over two simulated clusters
    result = podfleet("demo", "--clusters", "2", "--tasks", "20", "--processes", "1",
                      "--no-progress", "--timeout", "150", "--mix", "100,0,0,0",
                      "--duration", "0.3", "--seed", "7")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # Then every task ended as asked
    assert "20/20 finished" in out
    assert "every task reached the state its fate asked for" in out
    # And the per-cluster table has a row for each cluster, its tasks all succeeded, and
    # together they are the fleet (launches spread over both by their ids' hash)
    assert "tasks per cluster" in out
    per_cluster = {m["cluster"]: (int(m["tasks"]), int(m["success"]), int(m["failed"]))
                   for m in re.finditer(r"│ (?P<cluster>default|c2)\s+│\s+(?P<tasks>\d+) │"
                                        r"\s+(?P<success>\d+) │\s+(?P<failed>\d+) │", out)}
    assert set(per_cluster) == {"default", "c2"}, out[-3000:]
    assert all(tasks == success and failed == 0 for tasks, success, failed in
               per_cluster.values())
    assert sum(tasks for tasks, _, _ in per_cluster.values()) == 20
