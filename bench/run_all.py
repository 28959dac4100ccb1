"""Run every benchmark in bench/ and print its numbers.

    python bench/run_all.py            full runs (minutes; numbers for the closing notes)
    python bench/run_all.py --quick    a smoke of each (seconds; what CI runs)

Benchmarks are separate scripts (``bench_*.py``) each accepting ``--quick``; a failing one
fails the run. Performance targets live here, never in timed unit tests.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

#: How much of a failed benchmark's output is printed again at the end.
TAIL_LINES = 80


def _run(cmd: list[str], timeout: float | None) -> tuple[int, list[str]]:
    """Run one benchmark, its output passed through as it comes; its exit code and lines.
    Past ``timeout`` seconds it is killed (a hung smoke must not hold CI)."""
    lines: list[str] = []
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace")
    watchdog = threading.Timer(timeout, process.kill) if timeout is not None else None
    if watchdog is not None:
        watchdog.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))
        code = process.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()
    if code == -signal.SIGKILL and timeout is not None:
        lines.append(f"(killed after {timeout:g} s)")
    return code, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke runs (CI)")
    parser.add_argument("names", nargs="*", help="only these benchmarks (e.g. simulator)")
    args = parser.parse_args()
    here = Path(__file__).parent
    scripts = sorted(here.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} {'(quick)' if args.quick else ''}", flush=True)
        started = time.monotonic()
        cmd = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        code, output = _run(cmd, timeout=None if not args.quick else 300)
        print(f"=== {script.stem}: exit {code} in {time.monotonic() - started:.1f}s", flush=True)
        if code != 0:
            failed.append((script.stem, output))
    if failed:
        # Again at the end, where a CI log that keeps only its tail still shows them.
        for name, output in failed:
            print(f"\n=== {name} failed; the last {TAIL_LINES} lines it printed:")
            print("\n".join(output[-TAIL_LINES:]))
        print(f"\nbenchmarks failed: {', '.join(name for name, _ in failed)}", file=sys.stderr)
        return 1
    print(f"\n{len(scripts)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
