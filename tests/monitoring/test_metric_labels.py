"""The enumerated label values cover what the code can record."""

from __future__ import annotations

import pytest

from podfleet.kube.errors import Unreachable, error_from_status
from podfleet.monitoring.metrics import LaunchRetryReason
from podfleet.workers.launcher.outcome import retry_label

RETRYABLE_ANSWERS = [408, 409, 429, 500, 501, 502, 503, 504, 507, 599]


@pytest.mark.parametrize("status", RETRYABLE_ANSWERS)
def test_every_retryable_answer_is_counted_under_a_launch_retry_reason(status: int) -> None:
    # A retry is counted under its HTTP status; a status without a member would raise there
    error = error_from_status(status, {"kind": "Status", "reason": "X", "message": "m"})

    assert isinstance(retry_label(error), LaunchRetryReason)


def test_an_exhausted_quota_is_counted_as_quota() -> None:
    error = error_from_status(403, {"kind": "Status", "reason": "Forbidden",
                                    "message": 'pods "p" is forbidden: exceeded quota: q'})

    assert retry_label(error) is LaunchRetryReason.QUOTA


def test_no_answer_is_counted_as_timeout_or_connection() -> None:
    assert retry_label(Unreachable("Timeout", "read timed out")) is LaunchRetryReason.TIMEOUT
    assert retry_label(Unreachable("ConnectionError", "refused")) is LaunchRetryReason.CONNECTION
