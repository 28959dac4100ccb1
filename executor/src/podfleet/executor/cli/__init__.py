"""The executor's subcommands of ``podfleet``: ``submit``, ``status`` and ``db``."""
