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

__all__ = ["ViewChange", "active_view", "pending_counts", "pending_view", "view_changes"]

#: (key suffix under ``<prefix>:admission:``, namespace, pod name, True to confirm / False
#: to remove): one change of a view, as the watcher's fenced script takes it.
ViewChange = tuple[str, str, str, bool]


def pending_view(namespace: str) -> str:
    """The key suffix of ``namespace``'s pending view (RedisKeys.admission_pending)."""
    return f"pending:{namespace}"


def active_view(queue: str, namespace: str) -> str:
    """The key suffix of a queue's pods not finished in ``namespace`` (its pool)."""
    return f"active:{queue}:{namespace}"


def view_changes(prior: Published | None, after: Published | None, namespace: str,
                 name: str, queue: str | None) -> list[ViewChange]:
    """The views' changes for one pod whose record went from ``prior`` to ``after``: in the
    pending view while it is Pending, in its queue's pool (when ``queue`` is known) until
    it finishes or goes; nothing when the views already say so."""
    if after == prior or not name:
        return []
    changes: list[ViewChange] = []
    pending = pending_view(namespace)
    if after is not None and after.stage is Stage.PENDING:
        changes.append((pending, namespace, name, True))
    elif prior is None or prior.stage is Stage.PENDING:
        changes.append((pending, namespace, name, False))
    if queue is not None:
        pool = active_view(queue, namespace)
        if after is not None and not after.stage.is_final:
            if prior is None:
                changes.append((pool, namespace, name, True))
        elif prior is None or not prior.stage.is_final:
            changes.append((pool, namespace, name, False))
    return changes


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
