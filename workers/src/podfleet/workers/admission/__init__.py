"""Admission: a pod is created only when the cluster, the namespace and the queue have room.

Every create takes one permit from :class:`~podfleet.workers.admission.permits.Admission`,
which checks in one Redis script (``permit.lua``, which documents every key it touches) the
cap on pods that exist but are not yet Running (per namespace and in total, counted from the
watcher's fenced view: :mod:`podfleet.workers.admission.pending_view`), the queue's weighted
fair share of the launch rate among the queues that have work, the queue's own ceiling
(``PODFLEET_QUEUE_RATES``) and the cluster's launch rate. docs/architecture.md ("Admission")
says why it is built so.
"""

from __future__ import annotations

from podfleet.workers.admission.permits import Admission, Permit

__all__ = ["Admission", "Permit"]
