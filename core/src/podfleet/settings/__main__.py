"""``python -m podfleet.settings``: print docs/configuration.md."""

from __future__ import annotations

from podfleet.settings.reference import variables_markdown

print(variables_markdown(), end="")
