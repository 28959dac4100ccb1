"""The launcher: creates the pods of launch messages, rate-limited, in slow-start rounds."""

from __future__ import annotations

from podfleet.workers.launcher.launch import Launcher, LaunchReport

__all__ = ["LaunchReport", "Launcher"]
