"""The launcher: creates the pods of launch messages, rate-limited, in slow-start rounds.

* ``launch``     - :class:`Launcher`: one message in, verified, built, claimed, handed back.
* ``slow_start`` - the rounds of creates (1, 2, 4, … 64) under the task queue's rate limit.
* ``outcome``    - what each create came to, as the task's event; the :class:`LaunchReport`.
* ``actor``      - the dramatiq actor, declared by :func:`podfleet.workers.boot.boot`.
"""

from __future__ import annotations

from podfleet.workers.launcher.launch import Launcher
from podfleet.workers.launcher.outcome import LaunchReport

__all__ = ["LaunchReport", "Launcher"]
