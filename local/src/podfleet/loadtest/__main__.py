"""``python -m podfleet.loadtest``: print the locustfile's path (``locust -f "$(…)"``)."""

from __future__ import annotations

from podfleet.loadtest import LOCUSTFILE

print(LOCUSTFILE)
