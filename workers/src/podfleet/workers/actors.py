"""The module ``podfleet worker`` hands to dramatiq: every actor a worker process runs.

The broker is configured first (:func:`podfleet.workers.runtime.worker_broker`), then the
launcher's actor is declared, then the watcher's (``podfleet.workers.watcher.actor``) when
it exists and ``PODFLEET_WORKER_NO_WATCHER`` is not set (``podfleet worker --no-watcher``).
"""

from __future__ import annotations

import importlib
import importlib.util
import os

from podfleet.workers.cli import NO_WATCHER_VARIABLE
from podfleet.workers.runtime import worker_broker

WATCHER_ACTOR_MODULE = "podfleet.workers.watcher.actor"

broker = worker_broker()

from podfleet.workers.launcher import actor as launcher_actor  # noqa: E402

watcher_actor = None
if os.environ.get(NO_WATCHER_VARIABLE, "") != "1":
    try:
        found = importlib.util.find_spec(WATCHER_ACTOR_MODULE) is not None
    except ImportError:
        found = False
    if found:
        watcher_actor = importlib.import_module(WATCHER_ACTOR_MODULE)

__all__ = ["broker", "launcher_actor", "watcher_actor"]
