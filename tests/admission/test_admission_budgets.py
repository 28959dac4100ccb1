"""Admission's budgets against a real Redis: the cap on pods not yet Running, per namespace
and in total, and the queues' weighted, work-conserving shares of the launch rate."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from podfleet.contracts.redis_keys import RedisKeys
from podfleet.monitoring.metrics import Budget
from podfleet.settings import Settings
from podfleet.workers.admission import Admission
from podfleet.workers.admission.pending_view import pending_counts


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    made = redis.Redis.from_url(redis_url)
    yield made
    made.close()


def admission(client: redis.Redis, redis_url: str, **env: str) -> Admission:
    settings = Settings.from_env({"PODFLEET_REDIS_URL": redis_url, **env})
    return Admission(settings, client)


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(n)]


def test_the_pending_cap_grants_only_what_fits(client: redis.Redis, redis_url: str) -> None:
    # Given a cap of 3 pods not yet Running and no rate limit
    gate = admission(client, redis_url, PODFLEET_MAX_PENDING_PODS="3", PODFLEET_LAUNCH_RATE="0")
    # When a round asks for 5 creates, then another for 1
    first = gate.reserve(None, "default", names("a", 5))
    second = gate.reserve(None, "default", names("b", 1))
    # Then 3 are granted and the next is refused by the pending budget
    assert first.granted == 3
    assert second.granted == 0 and second.budget is Budget.PENDING
    assert pending_counts(client, RedisKeys()) == {"default": 3}


def test_a_released_reservation_makes_room(client: redis.Redis, redis_url: str) -> None:
    # Given a namespace at its cap of 2
    gate = admission(client, redis_url, PODFLEET_MAX_PENDING_PODS="2", PODFLEET_LAUNCH_RATE="0")
    assert gate.reserve(None, "default", ["a", "b"]).granted == 2
    # When one create fails and gives its reservation back
    gate.release(None, "default", ["a"])
    # Then one more create fits
    assert gate.reserve(None, "default", ["c", "d"]).granted == 1


def test_a_namespace_override_caps_that_namespace_alone(client: redis.Redis,
                                                        redis_url: str) -> None:
    # Given a total cap of 10 and team-a capped at 2
    gate = admission(client, redis_url, PODFLEET_MAX_PENDING_PODS="10",
                     PODFLEET_NAMESPACE_MAX_PENDING_PODS="team-a=2",
                     PODFLEET_TASK_NAMESPACES="default,team-a",
                     PODFLEET_WATCH_NAMESPACES="default,team-a", PODFLEET_LAUNCH_RATE="0")
    # When both namespaces ask for 5
    team_a = gate.reserve(None, "team-a", names("a", 5))
    default = gate.reserve(None, "default", names("d", 5))
    # Then team-a gets its 2 and default its 5
    assert (team_a.granted, default.granted) == (2, 5)


def test_the_total_cap_spans_namespaces(client: redis.Redis, redis_url: str) -> None:
    # Given a total cap of 4 over two namespaces
    gate = admission(client, redis_url, PODFLEET_MAX_PENDING_PODS="4",
                     PODFLEET_TASK_NAMESPACES="default,team-a",
                     PODFLEET_WATCH_NAMESPACES="default,team-a", PODFLEET_LAUNCH_RATE="0")
    # When one namespace takes 3
    assert gate.reserve(None, "default", names("d", 3)).granted == 3
    # Then the other gets only the one left
    assert gate.reserve(None, "team-a", names("a", 3)).granted == 1


def test_an_unconfirmed_reservation_expires(client: redis.Redis, redis_url: str) -> None:
    # Given reservations that expire after 0.2 s (a launcher that died before creating)
    settings = Settings.from_env({"PODFLEET_REDIS_URL": redis_url,
                                  "PODFLEET_MAX_PENDING_PODS": "1", "PODFLEET_LAUNCH_RATE": "0"})
    gate = Admission(settings, client, reservation_ttl_s=0.2)
    assert gate.reserve(None, "default", ["a"]).granted == 1
    assert gate.reserve(None, "default", ["b"]).granted == 0
    # When nobody confirms it in time
    time.sleep(0.3)
    # Then its slot is free again
    assert gate.reserve(None, "default", ["b"]).granted == 1


def test_a_watcher_confirmed_pod_does_not_expire(client: redis.Redis, redis_url: str) -> None:
    # Given a reservation the watcher has confirmed (it saw the pod Pending)
    settings = Settings.from_env({"PODFLEET_REDIS_URL": redis_url,
                                  "PODFLEET_MAX_PENDING_PODS": "1", "PODFLEET_LAUNCH_RATE": "0"})
    gate = Admission(settings, client, reservation_ttl_s=0.2)
    assert gate.reserve(None, "default", ["a"]).granted == 1
    client.zadd(RedisKeys().admission_pending("default"), {"a": float("inf")})
    # When the reservation's time passes
    time.sleep(0.3)
    # Then the pod still counts: it exists and is not Running
    assert gate.reserve(None, "default", ["b"]).granted == 0


def granted_in(gate: Admission, queue: str | None, seconds: float) -> int:
    """Permits one queue takes, asking as fast as it may, for ``seconds``."""
    total = 0
    until = time.monotonic() + seconds
    n = 0
    while time.monotonic() < until:
        permit = gate.acquire(queue, "default", [f"{queue}-{n}"], 0.2)
        total += permit.granted
        n += 1
    return total


def test_a_queue_alone_takes_the_whole_rate(client: redis.Redis, redis_url: str) -> None:
    # Given a launch rate of 40/s and weights etl=3, default=1
    gate = admission(client, redis_url, PODFLEET_LAUNCH_RATE="40", PODFLEET_LAUNCH_BURST="1",
                     PODFLEET_QUEUE_RATES="etl=0", PODFLEET_QUEUE_WEIGHTS="etl=3",
                     PODFLEET_MAX_PENDING_PODS="0")
    # When only the default queue (weight 1) has work for 2 s
    granted = granted_in(gate, None, 2.0)
    # Then it took the whole rate, not a quarter (work-conserving): about 80 permits
    assert granted >= 60, granted


def test_busy_queues_share_the_rate_by_weight(client: redis.Redis, redis_url: str) -> None:
    import threading

    # Given a launch rate of 40/s and weights etl=3, default=1
    gate = admission(client, redis_url, PODFLEET_LAUNCH_RATE="40", PODFLEET_LAUNCH_BURST="1",
                     PODFLEET_QUEUE_RATES="etl=0", PODFLEET_QUEUE_WEIGHTS="etl=3",
                     PODFLEET_MAX_PENDING_PODS="0")
    counts: dict[str, int] = {}

    def ask(queue: str) -> None:
        counts[queue] = granted_in(gate, queue, 3.0)

    # When both queues ask as fast as they may for 3 s
    threads = [threading.Thread(target=ask, args=(q,)) for q in ("etl", "default")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then etl took about three times what default took, and together about the rate
    assert 2.0 <= counts["etl"] / max(1, counts["default"]) <= 4.5, counts
    assert sum(counts.values()) <= 40 * 3 + 10, counts


def test_a_zero_weight_queue_waits_while_another_has_work(client: redis.Redis,
                                                          redis_url: str) -> None:
    # Given etl weighs 0 and the default queue has work
    gate = admission(client, redis_url, PODFLEET_LAUNCH_RATE="40",
                     PODFLEET_QUEUE_RATES="etl=0", PODFLEET_QUEUE_WEIGHTS="etl=0",
                     PODFLEET_MAX_PENDING_PODS="0")
    assert gate.reserve(None, "default", ["d"]).granted == 1
    # When etl asks
    refused = gate.reserve("etl", "default", ["e"])
    # Then it is refused by its share, and the reason is kept for `podfleet status`
    assert refused.granted == 0 and refused.budget is Budget.SHARE
    assert client.hget(RedisKeys().admission_waiting, "etl").startswith(b"share ")


def test_a_queue_at_its_pool_cap_waits_and_others_do_not(client: redis.Redis,
                                                         redis_url: str) -> None:
    # Given etl may have 2 pods not finished (a pool) and no other cap
    gate = admission(client, redis_url, PODFLEET_QUEUE_RATES="etl=0",
                     PODFLEET_QUEUE_MAX_RUNNING="etl=2", PODFLEET_MAX_PENDING_PODS="0",
                     PODFLEET_LAUNCH_RATE="0")
    # When etl asks for 3 creates, then 1 more, and the default queue asks for 3
    first = gate.reserve("etl", "default", names("e", 3))
    second = gate.reserve("etl", "default", ["e-3"])
    default = gate.reserve(None, "default", names("d", 3))
    # Then etl got 2 and waits at its pool; the default queue is not held by it
    assert first.granted == 2
    assert second.granted == 0 and second.budget is Budget.POOL
    assert default.granted == 3
    # And once one of etl's pods ends (the watcher removes it), etl may launch one more
    client.zrem(RedisKeys().admission_active("etl", "default"), "e-0")
    assert gate.reserve("etl", "default", ["e-3"]).granted == 1


def started(client: redis.Redis, namespace: str, *pods: str) -> None:
    """The watcher saw ``pods`` Running: they leave the namespace's pending view."""
    client.zrem(RedisKeys().admission_pending(namespace), *pods)


def split_gate(client: redis.Redis, redis_url: str) -> Admission:
    """A pending cap of 8, no rate limit, etl weighing 3 and the default queue 1: shares of
    6 and 2 while both have work."""
    return admission(client, redis_url, PODFLEET_MAX_PENDING_PODS="8", PODFLEET_LAUNCH_RATE="0",
                     PODFLEET_QUEUE_RATES="etl=0", PODFLEET_QUEUE_WEIGHTS="etl=3")


def test_a_queue_alone_fills_the_whole_pending_cap(client: redis.Redis,
                                                   redis_url: str) -> None:
    # Given a cap of 8 split 6:2 while both queues have work
    gate = split_gate(client, redis_url)
    # When only the default queue (weight 1) asks
    # Then it may fill the whole cap, not its share of 2 (work-conserving)
    assert gate.reserve(None, "default", names("d", 10)).granted == 8


def test_freed_slots_go_to_the_queue_under_its_share_of_the_pending_cap(
        client: redis.Redis, redis_url: str) -> None:
    # Given etl filled the cap of 8 alone, and the default queue (share 2) waits at the cap
    gate = split_gate(client, redis_url)
    assert gate.reserve("etl", "default", names("e", 8)).granted == 8
    assert gate.reserve(None, "default", ["d-0"]).budget is Budget.PENDING
    # When two of etl's pods start
    started(client, "default", "e-0", "e-1")
    # Then etl, over its share of 6, may not take the free slots: the default queue is owed them
    refused = gate.reserve("etl", "default", names("e2", 2))
    assert refused.granted == 0 and refused.budget is Budget.PENDING_SHARE
    assert client.hget(RedisKeys().admission_waiting, "etl").startswith(b"pending_share ")
    # And the default queue gets both, its share
    assert gate.reserve(None, "default", names("d", 3)).granted == 2


def test_a_queue_over_its_share_takes_what_no_queue_is_owed(client: redis.Redis,
                                                           redis_url: str) -> None:
    # Given the default queue holds its share of 2 and etl 4 of its 6
    gate = split_gate(client, redis_url)
    assert gate.reserve(None, "default", names("d", 2)).granted == 2
    assert gate.reserve("etl", "default", names("e", 4)).granted == 4
    # When etl asks for 4 more
    # Then it gets the 2 free slots: nobody else is owed them
    assert gate.reserve("etl", "default", names("e2", 4)).granted == 2
    # And once one of the default queue's pods starts while it waits at the cap, the slot
    # is the default queue's
    assert gate.reserve(None, "default", ["d-2"]).budget is Budget.PENDING
    started(client, "default", "d-0")
    assert gate.reserve("etl", "default", ["e3"]).budget is Budget.PENDING_SHARE
    assert gate.reserve(None, "default", ["d-2"]).granted == 1


def test_a_queue_under_its_share_that_no_longer_waits_at_the_cap_is_owed_nothing(
        client: redis.Redis, redis_url: str) -> None:
    # Given etl filled the cap of 8 alone, and the default queue (share 2) was refused at the
    # cap, then asked nothing for over half a second (its launchers busy elsewhere), though
    # it still counts as having work
    gate = split_gate(client, redis_url)
    assert gate.reserve("etl", "default", names("e", 8)).granted == 8
    assert gate.reserve(None, "default", ["d-0"]).budget is Budget.PENDING
    time.sleep(0.6)
    # When two of etl's pods start
    started(client, "default", "e-0", "e-1")
    # Then etl may take the free slots: nobody waiting could use them
    assert gate.reserve("etl", "default", names("e2", 2)).granted == 2


def test_a_queue_without_work_is_owed_no_share_of_the_pending_cap(client: redis.Redis,
                                                                   redis_url: str) -> None:
    # Given the default queue asked once and then had no more work for over a second
    gate = split_gate(client, redis_url)
    assert gate.reserve(None, "default", ["d-0"]).granted == 1
    time.sleep(1.2)
    # When etl asks for the whole cap
    # Then it gets every free slot: an idle queue's share goes to the busy ones
    assert gate.reserve("etl", "default", names("e", 10)).granted == 7
