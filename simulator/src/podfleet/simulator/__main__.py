"""`python -m podfleet.simulator`: the same as `podfleet sim`."""

from __future__ import annotations

import sys

from podfleet.simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
