"""``python -m podfleet.cli``: the ``podfleet`` command (the local fleet starts workers so)."""

from __future__ import annotations

import sys

from podfleet.cli import main

sys.exit(main())
