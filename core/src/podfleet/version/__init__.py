"""podfleet's version: every part (podfleet-core, -executor, -workers, …) is released at it."""

__version__ = "0.1.0"
