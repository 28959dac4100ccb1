"""Running one process with its wall clock skewed, for clock-skew tests and the chaos bench.

``LD_PRELOAD``-ing libfaketime with ``FAKETIME="+700s"`` moves that process's wall clock
(``time.time()``, ``datetime.now()``) and nothing else on the machine. The monotonic clock is
left alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``): faked, Python's lock and queue timeouts wait
on the real monotonic clock for a faked deadline and hang. The library is the build the
``libfaketime`` Python package ships (podfleet's dev extra): Debian bookworm's 0.9.10 makes
Python 3.11's ``time.sleep`` fail with EINVAL when the monotonic clock is left alone (fixed
upstream later).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path


class SkewedClockUnavailable(RuntimeError):
    """No working libfaketime here: the message says what to install."""


def libfaketime_path() -> Path | None:
    """The libfaketime shared library the ``libfaketime`` package ships, if installed."""
    spec = importlib.util.find_spec("libfaketime")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = Path(folder) / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
        if found.is_file():
            return found
    return None


def skewed_clock_env(seconds: float) -> dict[str, str]:
    """The environment variables that run a process ``seconds`` ahead (negative: behind).

    Raises :class:`SkewedClockUnavailable` when libfaketime is missing or does not work
    with this Python (checked by running a short probe under it)."""
    library = libfaketime_path()
    if library is None:
        raise SkewedClockUnavailable(
            "a skewed clock needs libfaketime: pip install libfaketime (podfleet's dev extra)")
    env = {"LD_PRELOAD": str(library), "FAKETIME": f"{seconds:+.0f}s",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    probe = subprocess.run(
        [sys.executable, "-c", "import time, threading; time.sleep(0.01); "
         "threading.Lock().acquire(timeout=0.01)"],
        env=env, capture_output=True, text=True, timeout=30, check=False)
    if probe.returncode != 0:
        raise SkewedClockUnavailable(
            f"libfaketime at {library} does not work with this Python: "
            f"{probe.stderr.strip()[-200:]}")
    return env
