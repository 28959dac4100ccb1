"""The load test's fixtures: locust's web UI on the load test's locustfile."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from podfleet.local.loadtest import LOCUSTFILE
from podfleet.local.ports import free_port


@pytest.fixture
def web_ui(tmp_path: Path) -> Iterator[str]:
    """locust's web UI on the load test's locustfile (no swarm: nothing else is needed), once
    it answers; its URL."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    with open(tmp_path / "locust.log", "wb") as log:
        process = subprocess.Popen(
            [str(bin_dir / "locust"), "-f", str(LOCUSTFILE),
             "--web-host", "127.0.0.1", "--web-port", str(port)],
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "locust.log").read_text()) from None
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
