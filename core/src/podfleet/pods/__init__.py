"""Task pods: executor_config validation, and building a pod's JSON from a launch request."""

from __future__ import annotations

from podfleet.pods.config import (
    KNOWN_FIELDS,
    InvalidExecutorConfig,
    task_namespace,
    validate_executor_config,
)
from podfleet.pods.factory import PodFactory

__all__ = ["KNOWN_FIELDS", "InvalidExecutorConfig", "PodFactory", "task_namespace",
           "validate_executor_config"]
