"""podfleet_pending_pods, podfleet_pending_cap, podfleet_queue_weight_share and
podfleet_queue_pending_pods are read from admission's real Redis keys at scrape time."""

from __future__ import annotations

import redis
from prometheus_client import CollectorRegistry

from podfleet.monitoring.admission_collector import AdmissionCollector
from podfleet.settings import Settings
from podfleet.workers.admission import Admission


def test_a_scrape_shows_pending_pods_against_the_cap_and_each_queues_due_share(
        redis_url: str) -> None:
    # Given a cap of 5, weights etl=3 (default 1), and launchers of both queues that took
    # permits for 3 pods of the default namespace just now
    settings = Settings.from_env({"PODFLEET_REDIS_URL": redis_url,
                                  "PODFLEET_MAX_PENDING_PODS": "5",
                                  "PODFLEET_QUEUE_RATES": "etl=0,ml=0",
                                  "PODFLEET_QUEUE_WEIGHTS": "etl=3"})
    client = redis.Redis.from_url(redis_url)
    admission = Admission(settings, client)
    assert admission.reserve(None, "default", ["a", "b"]).granted == 2
    assert admission.reserve("etl", "default", ["c"]).granted == 1
    # When Prometheus scrapes
    registry = CollectorRegistry()
    registry.register(AdmissionCollector(client, settings))
    # Then it sees 3 of 5 pending, and etl due 3/4 of the rate, default 1/4, idle ml none
    assert registry.get_sample_value("podfleet_pending_pods", {"cluster": "default",
                                                            "namespace": "default"}) == 3
    assert registry.get_sample_value("podfleet_pending_cap", {"cluster": "default",
                                                           "namespace": "default"}) == 5
    assert registry.get_sample_value("podfleet_pending_pods", {"cluster": "default",
                                                            "namespace": "*"}) == 3
    shares = {q: registry.get_sample_value("podfleet_queue_weight_share", {"queue": q})
              for q in ("etl", "default", "ml")}
    assert shares == {"etl": 0.75, "default": 0.25, "ml": 0.0}
    # And each queue's part of the pending pods: default 2, etl 1, ml none
    held = {q: registry.get_sample_value("podfleet_queue_pending_pods", {"queue": q})
            for q in ("etl", "default", "ml")}
    assert held == {"etl": 1, "default": 2, "ml": 0}
    client.close()
