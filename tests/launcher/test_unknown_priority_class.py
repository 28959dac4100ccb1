"""A create refused because its PriorityClass does not exist is final: the task fails at once
with the API server's own words, unlike a quota's 403, which waiting can cure."""

from __future__ import annotations

from podfleet.kube.errors import Forbidden, QuotaExceeded, error_from_status
from podfleet.workers.launcher.outcome import describe

NO_PRIORITY_CLASS = error_from_status(403, {
    "kind": "Status", "reason": "Forbidden",
    "message": 'pods "etl-load-1" is forbidden: no PriorityClass with name high was found'})
QUOTA = error_from_status(403, {
    "kind": "Status", "reason": "Forbidden",
    "message": 'pods "etl-load-1" is forbidden: exceeded quota: pods, requested: pods=1, '
               "used: pods=10, limited: pods=10"})


def test_an_unknown_priority_class_is_not_retried_but_a_quota_is() -> None:
    assert type(NO_PRIORITY_CLASS) is Forbidden
    assert isinstance(QUOTA, QuotaExceeded)
    assert not NO_PRIORITY_CLASS.retryable
    assert QUOTA.retryable


def test_an_unknown_priority_class_fails_the_task_with_the_api_servers_message() -> None:
    assert describe(NO_PRIORITY_CLASS) == (
        'Forbidden (403): pods "etl-load-1" is forbidden: no PriorityClass with name high was '
        "found")
