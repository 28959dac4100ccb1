"""The quota gate's pieces: reading a 403's quota message (an unexpected shape gives a
one-line reason, never a crash), what a pod counts against a quota, and the pods that can
never fit."""

from __future__ import annotations

import pytest

from podfleet.workers.quota import (
    QuotaRoom,
    UnexpectedQuotaMessage,
    never_fits_reason,
    parse_exceeded,
    pod_asks,
    quota_message,
)

API_MESSAGE = ('pods "t-1" is forbidden: exceeded quota: q, requested: pods=1,requests.cpu=2, '
               "used: pods=5,requests.cpu=9, limited: pods=5,requests.cpu=10")


def test_an_exceeded_quota_message_is_read_into_its_quota_and_resources() -> None:
    parsed = parse_exceeded(API_MESSAGE)
    assert parsed.quota == "q"
    assert parsed.requested == {"pods": "1", "requests.cpu": "2"}
    assert parsed.used == {"pods": "5", "requests.cpu": "9"}
    assert parsed.limited == {"pods": "5", "requests.cpu": "10"}


@pytest.mark.parametrize("message", [
    "exceeded quota",
    'pods "x" is forbidden: exceeded quota: q, requested: cpu, used: x, limited: y',
    "exceeded quota: q\nrequested: pods=1\n used: pods=1",
    "",
])
def test_a_quota_message_in_an_unexpected_form_gives_a_one_line_reason(message: str) -> None:
    with pytest.raises(UnexpectedQuotaMessage) as caught:
        parse_exceeded(message)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("quota message in an unexpected form")
    assert quota_message(message) == str(caught.value)


def test_the_quota_part_of_a_well_formed_message_is_kept_as_the_reason() -> None:
    assert quota_message(API_MESSAGE) == API_MESSAGE[API_MESSAGE.index("exceeded quota"):]


def test_a_pod_counts_its_containers_summed_and_a_request_defaults_to_its_limit() -> None:
    pod = {"spec": {"containers": [
        {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
        {"resources": {"limits": {"cpu": "1", "memory": "512Mi"}}}],
        "initContainers": [{"resources": {"requests": {"cpu": "4"}}}]}}
    pods, req_cpu, req_mem, lim_cpu, lim_mem = pod_asks(pod)
    assert pods == 1000
    assert req_cpu == 4000  # the init container is larger than the sum
    assert req_mem == (1024 + 512) * 2**20 * 1000
    assert (lim_cpu, lim_mem) == (1000, 512 * 2**20 * 1000)


def test_a_pod_asking_more_than_a_hard_limit_can_never_fit() -> None:
    room = QuotaRoom.of({"metadata": {"name": "q"}, "status": {
        "hard": {"requests.cpu": "10", "pods": "100"},
        "used": {"requests.cpu": "0", "pods": "0"}}})
    asks = pod_asks({"spec": {"containers": [{"resources": {"requests": {"cpu": "64"}}}]}})
    assert never_fits_reason([room], asks) == (
        "exceeded quota: q, requested: requests.cpu=64, limited: requests.cpu=10 "
        "(the pod asks more than the quota allows at all)")
    small = pod_asks({"spec": {"containers": [{"resources": {"requests": {"cpu": "10"}}}]}})
    assert never_fits_reason([room], small) is None
