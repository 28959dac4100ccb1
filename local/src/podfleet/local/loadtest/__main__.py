"""``python -m podfleet.local.loadtest``: print the locustfile's path (``locust -f "$(…)"``)."""

from __future__ import annotations

from podfleet.local.loadtest import LOCUSTFILE

print(LOCUSTFILE)
