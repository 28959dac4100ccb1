"""The enumerated label values cover what the code can record."""

from __future__ import annotations

from podfleet.kube.client import RETRYABLE_STATUS
from podfleet.monitoring.metrics import LaunchRetryReason


def test_every_retryable_status_has_a_launch_retry_reason() -> None:
    # A retry is counted under its HTTP status; a status without a member would raise there
    assert {str(status) for status in RETRYABLE_STATUS} <= {r.value for r in LaunchRetryReason}
