"""Within a launch message the launcher creates the highest priority first; a listed task
queue's own rate is a ceiling within the cluster's launch rate, and a launch handed back for a
long retry goes back to its own queue."""

from __future__ import annotations

import dataclasses
import random

from launcher_support import SIGNING_KEY, Fleet, wait_until

from podfleet.broker import enqueue_envelopes, queue_sizes
from podfleet.contracts.messages import LaunchBatch
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState
from podfleet.simulator.faults import VerbFaults


def test_a_message_creates_its_highest_priorities_first(fleet: Fleet) -> None:
    # Given a worker limited to 10 creates/s, one at a time (so creates are spread out)
    fleet.start_worker(PODFLEET_LAUNCH_RATE="10", PODFLEET_LAUNCH_BURST="1")
    # When one message of 12 tasks with shuffled priorities arrives
    priorities = list(range(12))
    random.Random(3).shuffle(priorities)
    requests = [dataclasses.replace(fleet.request(i), priority=p)
                for i, p in enumerate(priorities)]
    fleet.send(requests)
    events = fleet.wait_for_events(len(requests), timeout=60)
    # Then the pods were created in descending priority
    by_launch = {r.launch_id: r.priority for r in requests}
    created = sorted(events, key=lambda e: e.detail["sent_at"])
    assert [by_launch[e.launch_id] for e in created] == sorted(priorities, reverse=True)


def test_a_listed_queues_rate_is_a_ceiling_within_the_launch_rate(fleet: Fleet) -> None:
    # Given a launch rate of 20 creates/s and a queue "etl" whose own rate is 5/s
    env = {"PODFLEET_LAUNCH_RATE": "20", "PODFLEET_LAUNCH_BURST": "1",
           "PODFLEET_QUEUE_RATES": "etl=5"}
    fleet.env.update(env)
    fleet.start_worker(threads=4)
    # When 10 tasks arrive on each queue at once
    default = [fleet.request(i) for i in range(10)]
    etl = [dataclasses.replace(fleet.request(100 + i), queue="etl") for i in range(10)]
    signer = MessageSigner(SIGNING_KEY.encode())
    fleet.send(default)
    enqueue_envelopes(fleet.broker, "podfleet.launch.etl",
                      [LaunchBatch(requests=tuple(etl)).seal(signer)])
    events = fleet.wait_for_events(20, timeout=60)
    # Then etl was held to its own 5/s (10 creates over about 2 s, its burst is 5) ...
    etl_ids = {r.launch_id for r in etl}
    etl_sent = sorted(e.detail["sent_at"] for e in events if e.launch_id in etl_ids)
    assert etl_sent[-1] - etl_sent[0] >= 0.8
    # ... while the default queue was not held to it: its share of 20/s is at least 10/s
    default_sent = sorted(e.detail["sent_at"] for e in events if e.launch_id not in etl_ids)
    assert default_sent[-1] - default_sent[0] < etl_sent[-1] - etl_sent[0]


def test_a_launch_handed_back_for_a_long_retry_returns_to_its_own_queue(fleet: Fleet) -> None:
    # Given an API server that throttles every create with Retry-After 4 s (a long wait, so
    # the launcher hands the launch back to the broker rather than sleeping on it)
    fleet.sim.admin.set_faults(verbs={"create": VerbFaults(error_429=1.0)}, retry_after_s=4)
    fleet.env["PODFLEET_QUEUE_RATES"] = "etl=0"
    fleet.start_worker(PODFLEET_LAUNCH_BACKOFF_MAX_SECONDS="5")
    # When a launch of the task queue "etl" arrives
    request = dataclasses.replace(fleet.request(0), queue="etl")
    enqueue_envelopes(fleet.broker, "podfleet.launch.etl", [fleet.seal([request])])
    # Then it waits, delayed, on etl's queue, not on the default one
    wait_until(lambda: queue_sizes(fleet.broker, "podfleet.launch.etl")["delayed"] == 1, 30,
               "the handed-back launch on podfleet.launch.etl")
    assert queue_sizes(fleet.broker, "podfleet.launch")["delayed"] == 0
    # And once the API server takes creates again, it launches from there
    fleet.sim.admin.clear_faults()
    (event,) = fleet.wait_for_events(1, timeout=60)
    assert event.state is TaskState.LAUNCHED and event.detail["attempts"] >= 2
