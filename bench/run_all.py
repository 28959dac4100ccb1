"""Run every benchmark in bench/ and print its numbers.

    python bench/run_all.py            full runs (minutes; numbers for the closing notes)
    python bench/run_all.py --quick    a smoke of each (seconds; what CI runs)

Benchmarks are separate scripts (``bench_*.py``) each accepting ``--quick``; a failing one
fails the run. Performance targets live here, never in timed unit tests.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path


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
        code = subprocess.call(cmd, timeout=None if not args.quick else 300)
        print(f"=== {script.stem}: exit {code} in {time.monotonic() - started:.1f}s", flush=True)
        if code != 0:
            failed.append(script.stem)
    if failed:
        print(f"\nbenchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"\n{len(scripts)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
