"""Launch, end-to-end and submit latencies are kinds of their own in locust: distinct request
types in its statistics, and a web UI tab that shows each kind's percentiles side by side
(locust's own charts plot only the aggregate of every row)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from podfleet.local.loadtest import END_TO_END, KINDS, LAUNCH, LOCUSTFILE, SUBMIT


def test_each_kind_is_a_request_type_of_its_own() -> None:
    assert [kind for kind, _ in KINDS] == ["launch", "end-to-end", "submit"]
    assert len({LAUNCH, END_TO_END, SUBMIT}) == 3


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return str(answer.read().decode())


def test_the_web_ui_has_a_latency_by_kind_tab_with_a_row_per_kind(web_ui: str) -> None:
    # The page offers the tab ...
    assert '"extendedTabs": [{"key": "latency-by-kind", "title": "Latency by kind"}]' in fetch(
        web_ui + "/")
    # ... and every statistics poll carries its rows: one per kind, with its percentiles
    stats = json.loads(fetch(web_ui + "/stats/requests"))
    (tab,) = stats["extended_stats"]
    assert tab["key"] == "latency-by-kind"
    assert [(row["kind"], row["name"]) for row in tab["data"]] == list(KINDS)
    assert {"current_p50", "current_p95", "p99", "requests", "failures"} <= set(tab["data"][0])


def test_the_latency_by_kind_table_downloads_as_csv(web_ui: str) -> None:
    lines = fetch(web_ui + "/latency-by-kind/csv").splitlines()
    assert lines[0].startswith("kind,name,requests,failures,")
    assert [tuple(line.split(",")[:2]) for line in lines[1:]] == list(KINDS)


def test_an_installed_podfleet_names_its_locustfile() -> None:
    printed = subprocess.run([sys.executable, "-m", "podfleet.local.loadtest"],
                             capture_output=True, text=True, check=True,
                             timeout=60).stdout.strip()
    assert Path(printed) == LOCUSTFILE and LOCUSTFILE.is_file()
