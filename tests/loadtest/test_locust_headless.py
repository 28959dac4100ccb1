"""A short headless locust run against a private stack (simulator, Redis, worker pool).

Locust monkey-patches the process with gevent, so it runs only in subprocesses, through
``python -m podfleet.local.loadtest.run_headless`` exactly as a user runs it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from podfleet.local.loadtest import run_headless


@pytest.mark.slow
def test_short_headless_run_reports_launch_latencies_without_failures(tmp_path: Path) -> None:
    # When two users submit tasks for a few seconds against a one-process pool
    result = subprocess.run(
        [sys.executable, "-m", "podfleet.local.loadtest.run_headless", "--users", "2",
         "--run-time", "8", "--tasks-per-second", "5", "--worker-processes", "1",
         "--worker-threads", "4", "--nodes", "5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(s for s in result.stdout.splitlines() if s.startswith("JSON "))
    summary = json.loads(line[len("JSON "):])

    # Then locust saw pod launches with latencies, and nothing failed
    assert summary["launches"] > 0
    assert 0 < summary["launch_ms"]["50"] <= summary["launch_ms"]["99"]
    assert summary["tasks_finished"] > 0
    assert sum(summary["failures"].values()) == 0
    # And the workers' metrics counted every pod locust saw launched, and no more than it sent
    created = summary["pods_created_metric"]
    assert summary["launches"] <= created <= summary["tasks_submitted"]
    # And locust wrote its usual CSV files, a row per kind under a request type of its own
    assert (tmp_path / "podfleet_stats.csv").exists()
    with open(tmp_path / "podfleet_stats.csv", newline="") as handle:
        kinds = {(row["Type"], row["Name"]) for row in csv.DictReader(handle)}
    assert {("launch", "pod"), ("end-to-end", "task"), ("submit", "submit_many")} <= kinds


def test_failures_are_counted_once_not_again_in_locusts_aggregated_row(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given locust's stats CSV as it writes it: a row per request kind with failures, then
    # its "Aggregated" total (an empty Type), which sums them again
    header = "Type,Name,Request Count,Failure Count,50%,95%,99%\n"
    (tmp_path / "podfleet_stats.csv").write_text(
        header + "launch,pod,10,2,5,9,9\nsubmit,submit_many,4,0,1,2,2\n"
        "end-to-end,task,8,1,50,90,90\n,Aggregated,22,3,9,90,90\n")
    args = run_headless._parse_args([])

    summary = run_headless.summarise(run_headless._stats(tmp_path), 10, args, 10.0, None)
    run_headless._print(summary)

    # Then the failures add up to 3, as locust counted them, and the total says 3
    assert summary["failures"] == {"launch/pod": 2, "submit/submit_many": 0,
                                   "end-to-end/task": 1}
    failures_line = next(line for line in capsys.readouterr().out.splitlines()
                         if line.startswith("failures"))
    assert failures_line.split()[1] == "3"


def test_the_web_ui_offers_podfleets_options_in_its_form(web_ui: str) -> None:
    # Given locust's web UI on the load test (no swarm started: nothing else is needed)
    import urllib.request

    with urllib.request.urlopen(web_ui + "/", timeout=5) as answer:
        page = answer.read().decode()
    # Then podfleet's own options are among the form's extra options
    for option in ("tasks_per_second", "sync_interval", "task_duration", "launch_timeout"):
        assert f'"{option}": {{' in page, option
