"""Ending a pod on purpose: the ``DisruptionTarget`` condition, then a graceful delete.

What the scheduler's preemption, the taint-eviction controller and the Eviction API do to a
pod: first a status write adding ``DisruptionTarget=True`` with the reason
(``PreemptionByScheduler``, ``DeletionByTaintManager``, ``EvictionByEvictionAPI``), then a
delete with the pod's grace period (``deletionTimestamp`` set; the kubelet stops the
containers and removes the pod), as the API server deletes a bound, running pod.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from podfleet.simulator.store import PODS, now_rfc3339

if TYPE_CHECKING:
    from podfleet.simulator.store import ObjectStore

Json = dict[str, Any]

PREEMPTION_BY_SCHEDULER = "PreemptionByScheduler"
DELETION_BY_TAINT_MANAGER = "DeletionByTaintManager"
EVICTION_BY_EVICTION_API = "EvictionByEvictionAPI"


def disruption_condition(reason: str, message: str) -> Json:
    return {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(), "reason": reason, "message": message}


def add_disruption_condition(store: ObjectStore, namespace: str, name: str,
                             condition: Json) -> bool:
    """Add (or replace) the pod's DisruptionTarget condition; False if the pod is gone."""

    def mark(pod: Json) -> None:
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or ()
                      if c.get("type") != "DisruptionTarget"]
        conditions.append(condition)
        status["conditions"] = conditions

    return store.update(PODS, namespace, name, mark) is not None


def delete_gracefully(store: ObjectStore, namespace: str, name: str, grace_s: int) -> None:
    """Delete a pod as the API server does: at once when unbound, ended or grace 0, else
    marked with ``deletionTimestamp`` and removed after the grace (or when the kubelet has
    stopped it)."""
    record = store.get(PODS, namespace, name)
    if record is None or record.deleting:
        return
    grace = max(0, int(grace_s))
    if grace == 0 or not record.node_name or record.phase in ("Succeeded", "Failed"):
        store.delete_pod(namespace, name)
        return
    stamp = (datetime.now(UTC) + timedelta(seconds=grace)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def mark(pod: Json) -> None:
        pod["metadata"]["deletionTimestamp"] = stamp
        pod["metadata"]["deletionGracePeriodSeconds"] = grace

    if store.update(PODS, namespace, name, mark) is not None:
        store.schedule_deletion(namespace, name, record.uid, grace)
