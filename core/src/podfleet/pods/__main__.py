"""``python -m podfleet.pods``: print docs/executor-config.md (generated from the fields table)."""

from __future__ import annotations

from podfleet.pods.config import executor_config_markdown

print(executor_config_markdown(), end="")
