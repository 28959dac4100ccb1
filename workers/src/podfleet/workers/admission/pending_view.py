"""The pending view: which podfleet pods exist but are not yet Running, per namespace.

The launcher reserves a pod's name in its namespace's view with the permit (``permit.lua``);
the watcher, which alone sees pods change, keeps the view true inside its fenced publish
(``publish.lua`` of :mod:`podfleet.workers.watcher`): it confirms a pod it sees Pending
(adding one it did not know, e.g. created before a Redis restart) and removes one it sees
Running, ended or gone. A relist replaces the confirmed part with what the list shows,
keeping the unconfirmed reservations, which the list cannot show yet and which expire on
their own. So the count survives a watcher takeover (the view is in Redis, written only
under the lease), a launcher crash (its reservations expire) and a Redis that restarts empty
(the watcher relists when its resourceVersion is gone, rebuilding the view).
"""

from __future__ import annotations

from typing import Any

from podfleet.contracts.redis_keys import RedisKeys
from podfleet.workers.watcher.phases import Published, Stage

__all__ = ["pending_change", "pending_counts"]


def pending_change(prior: Published | None, after: Published | None, namespace: str,
                   name: str) -> tuple[str, str, bool] | None:
    """The view's change for one pod whose record went from ``prior`` to ``after``:
    ``(namespace, name, True)`` to confirm it as pending, ``False`` to remove it, or None
    when the view already says so."""
    if after == prior or not name:
        return None
    if after is not None and after.stage is Stage.PENDING:
        return (namespace, name, True)
    if prior is None or prior.stage is Stage.PENDING:
        return (namespace, name, False)
    return None


def pending_counts(client: Any, keys: RedisKeys) -> dict[str, int]:
    """Namespace -> pods in its view now (confirmed, or reserved and not yet expired)."""
    import time

    now_ms = int(time.time() * 1000)
    counts: dict[str, int] = {}
    for raw in sorted(client.smembers(keys.admission_namespaces)):
        namespace = raw.decode() if isinstance(raw, bytes) else str(raw)
        counts[namespace] = int(client.zcount(keys.admission_pending(namespace),
                                              now_ms, "+inf"))
    return counts
