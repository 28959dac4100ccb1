"""podfleet's version: every part (podfleet-core, -executor, -workers, …) is released at it.

The one place it is written: podfleet-core's build reads it from here, and every other part's
``pyproject.toml`` states it and pins its podfleet dependencies to it
(``tests/deploy/test_one_version.py`` checks that they agree; ``scripts/set-version.sh``
changes them all). ``podfleet --version`` prints it.
"""

__version__ = "0.1.0"
