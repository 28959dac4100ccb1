"""``python -m podfleet.cli``: the ``podfleet`` command (how LocalFleet starts worker processes)."""

from __future__ import annotations

import sys

from podfleet.cli import main

sys.exit(main())
