"""The load test's locustfile, kept here for ``locust -f loadtest/locustfile.py`` in a checkout.

The load test itself ships in the package (:mod:`podfleet.loadtest.locustfile`, so installed
podfleet has it: ``locust -f "$(python -m podfleet.loadtest)"``); importing it here registers
its options, its web UI tab and its user class with locust.
"""

from __future__ import annotations

from podfleet.loadtest.locustfile import PodfleetUser

__all__ = ["PodfleetUser"]
