"""``python -m podfleet.cli``: the ``podfleet`` command, for a program that starts it by module
(the local fleet starts its worker pools so)."""

from __future__ import annotations

import sys

from podfleet.cli import main

sys.exit(main())
