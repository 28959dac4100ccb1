"""docs/configuration.md: the reference of every PODFLEET_* setting, made from its declaration
(``python -m podfleet.settings > docs/configuration.md``; a test keeps the file true)."""

from __future__ import annotations

from podfleet.settings import VARIABLES


def variables_markdown() -> str:
    """The Markdown of docs/configuration.md: one table row per variable, in declaration order."""
    lines = [
        "# Configuration",
        "",
        "podfleet reads its configuration from environment variables, once, at start "
        "(`podfleet.settings.Settings.from_env`). An invalid value stops the process with a "
        "message naming the variable. This file is generated from the settings' declarations "
        "(`core/src/podfleet/settings/__init__.py`): `python -m podfleet.settings > "
        "docs/configuration.md`.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for var in VARIABLES:
        default = f"`{var.default}`" if var.default else "(empty)"
        lines.append(f"| `{var.name}` | {default} | {var.doc} |")
    return "\n".join(lines) + "\n"
