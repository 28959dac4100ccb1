"""Queue routes: a listed task queue gets its own dramatiq queue and bucket; every other task
(no queue, ``default``, an unlisted name) takes the default route under today's names."""

from __future__ import annotations

from podfleet.contracts.queues import QueueRoute, configured_routes, route_for
from podfleet.settings import Settings

SETTINGS = Settings.from_env({"PODFLEET_QUEUE_RATES": "etl=50,ml=0",
                              "PODFLEET_LAUNCH_RATE": "100"})


def test_a_listed_queue_has_its_own_dramatiq_queue_rate_and_bucket() -> None:
    route = route_for(SETTINGS, "etl")
    assert route == QueueRoute("etl", "podfleet.launch.etl", 50.0, 50)
    assert route.limiter_name == "launch.etl"


def test_no_queue_default_and_unlisted_queues_share_the_default_route() -> None:
    default = route_for(SETTINGS, None)
    assert default == QueueRoute("default", "podfleet.launch", 100.0, 100)
    assert default.limiter_name == "launch"  # today's bucket: nothing changes for them
    assert route_for(SETTINGS, "default") == default
    assert route_for(SETTINGS, "someone-elses") == default


def test_a_listed_queue_may_be_unlimited() -> None:
    assert route_for(SETTINGS, "ml").rate == 0


def test_the_configured_routes_are_the_default_then_the_listed_in_order() -> None:
    assert [r.broker_queue for r in configured_routes(SETTINGS)] == [
        "podfleet.launch", "podfleet.launch.etl", "podfleet.launch.ml"]


def test_the_routes_follow_a_renamed_launch_queue() -> None:
    settings = Settings.from_env({"PODFLEET_QUEUE_RATES": "etl=5",
                                  "PODFLEET_LAUNCH_QUEUE": "team-a.launch"})
    assert [r.broker_queue for r in configured_routes(settings)] == [
        "team-a.launch", "team-a.launch.etl"]
