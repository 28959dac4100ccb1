"""podfleet's locust load test, shipped in the package so an installed podfleet can run it:
``locust -f "$(python -m podfleet.local.loadtest)"`` (the module prints the locustfile's path).

The locustfile itself (:mod:`podfleet.local.loadtest.locustfile`) imports locust, which
monkey-patches the process with gevent, so nothing imports it but locust. What other code
needs to know about its statistics, the request kinds, lives here.
"""

from __future__ import annotations

from pathlib import Path

#: The locustfile, for ``locust -f``.
LOCUSTFILE = Path(__file__).with_name("locustfile.py")

# Each kind of latency the load test reports is its own locust request type, so locust's
# statistics, CSV and web UI keep them apart: (request_type, name).
LAUNCH = ("launch", "pod")  # submit → pod accepted by the API server
END_TO_END = ("end-to-end", "task")  # submit → the task's terminal state
SUBMIT = ("submit", "submit_many")  # one submit_many call
KINDS = (LAUNCH, END_TO_END, SUBMIT)

__all__ = ["END_TO_END", "KINDS", "LAUNCH", "LOCUSTFILE", "SUBMIT"]
