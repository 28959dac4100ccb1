"""Which dramatiq queues ``podfleet worker`` consumes, and how it shares its threads out."""

from __future__ import annotations

import pytest

from podfleet.broker import WATCH_QUEUE, worker_environment
from podfleet.settings import Settings
from podfleet.workers.cli import consumed_queues

SETTINGS = Settings.from_env({"PODFLEET_QUEUE_RATES": "etl=50,ml=10"})


def test_by_default_a_worker_consumes_every_configured_task_queue_and_the_watchers() -> None:
    assert consumed_queues(SETTINGS, None, watcher=True) == [
        "podfleet.launch", "podfleet.launch.etl", "podfleet.launch.ml", WATCH_QUEUE]


def test_queues_are_named_by_task_queue_comma_separated() -> None:
    assert consumed_queues(SETTINGS, ["etl,default"], watcher=False) == [
        "podfleet.launch.etl", "podfleet.launch"]


def test_a_dramatiq_queue_name_is_taken_as_it_is() -> None:
    assert consumed_queues(SETTINGS, [WATCH_QUEUE], watcher=True) == [WATCH_QUEUE]


def test_an_unconfigured_queue_is_refused() -> None:
    from podfleet.settings import SettingsError

    with pytest.raises(SettingsError, match="'gpu' is not a configured task queue"):
        consumed_queues(SETTINGS, ["etl,gpu"], watcher=True)


def test_one_launch_queue_keeps_todays_prefetch() -> None:
    assert worker_environment(8)["dramatiq_queue_prefetch"] == "16"


@pytest.mark.parametrize(("queues", "prefetch"), [(2, "4"), (3, "2"), (9, "1")])
def test_several_launch_queues_share_the_threads_out(queues: int, prefetch: str) -> None:
    # Each queue's consumer holds at most its share, so a flood cannot take every thread
    assert worker_environment(8, queues)["dramatiq_queue_prefetch"] == prefetch
