"""ResourceQuota accounting and admission: what a namespace's pods use, and the 403 a pod
create gets when it would take a quota past its hard limit.

As kube-apiserver's ResourceQuota admission plugin and the quota controller do together:
`pods` counts the pods that have not ended (Succeeded/Failed pods free their share of
`pods`, cpu and memory), `count/pods` counts every pod object, `requests.cpu`/`cpu`,
`requests.memory`/`memory`, `limits.cpu` and `limits.memory` sum the pods' effective
requests and limits. A quota on cpu or memory requires every container to set that request
or limit (`failed quota: q: must specify limits.cpu for: main`).

The check runs in the pod kind's `admit`, synchronously before the store write, and the
usage is updated by a store listener synchronously after it, so concurrent creates cannot
overshoot a quota. `status.used` of the namespace's quotas is rewritten whenever the usage
changes. Namespaces are followed only once a quota exists in them, so a cluster without
quotas pays nothing per pod.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from podfleet.kube.rules import parse_quantity
from podfleet.simulator.apiserver.errors import ApiError
from podfleet.simulator.store import PODS, RESOURCEQUOTAS, ObjectStore, StoreEvent

Json = dict[str, Any]

#: Quota resource name → what it measures (index into a usage vector).
_PODS, _ALL_PODS, _REQ_CPU, _REQ_MEM, _LIM_CPU, _LIM_MEM = range(6)
MEASURED: dict[str, int] = {
    "pods": _PODS,
    "count/pods": _ALL_PODS,
    "cpu": _REQ_CPU,
    "requests.cpu": _REQ_CPU,
    "memory": _REQ_MEM,
    "requests.memory": _REQ_MEM,
    "limits.cpu": _LIM_CPU,
    "limits.memory": _LIM_MEM,
}
#: Resources whose quota makes every container state them: (what it needs, where, which).
_CONSTRAINED = {
    "cpu": ("requests", "cpu"),
    "requests.cpu": ("requests", "cpu"),
    "memory": ("requests", "memory"),
    "requests.memory": ("requests", "memory"),
    "limits.cpu": ("limits", "cpu"),
    "limits.memory": ("limits", "memory"),
}
_TERMINAL = ("Succeeded", "Failed")


def milli(quantity: Any) -> int:
    """A quantity in thousandths of its unit (``"500m"`` → 500, ``"1Gi"`` → 1073741824000)."""
    return math.ceil(parse_quantity(quantity) * 1000)


def format_quantity(resource: str, value_milli: int) -> str:
    """A usage as the API prints it: ``500m`` or ``2`` for cpu, ``256Mi`` for memory."""
    if value_milli % 1000:
        return f"{value_milli}m"
    whole = value_milli // 1000
    if resource.endswith("memory") and whole:
        for suffix, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
            if whole % size == 0:
                return f"{whole // size}{suffix}"
        for suffix, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("k", 10**3)):
            if whole % size == 0:
                return f"{whole // size}{suffix}"
    return str(whole)


def _container_amounts(container: Mapping[str, Any]) -> tuple[int, int, int, int]:
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    # The API server defaults a request to its limit when only the limit is given.
    requests = {**limits, **(resources.get("requests") or {})}
    try:
        return (
            milli(requests["cpu"]) if "cpu" in requests else 0,
            milli(requests["memory"]) if "memory" in requests else 0,
            milli(limits["cpu"]) if "cpu" in limits else 0,
            milli(limits["memory"]) if "memory" in limits else 0,
        )
    except (ValueError, TypeError):
        return 0, 0, 0, 0  # validation refuses bad quantities before a pod is stored


def pod_usage(pod: Mapping[str, Any]) -> list[int]:
    """What one live pod counts against a quota, indexed as `MEASURED`'s values.

    Requests and limits are the pod's effective ones: the sum over its containers, or its
    largest init container when that is larger.
    """
    spec = pod.get("spec") or {}
    totals = [0, 0, 0, 0]
    for container in spec.get("containers") or ():
        for i, amount in enumerate(_container_amounts(container)):
            totals[i] += amount
    for container in spec.get("initContainers") or ():
        for i, amount in enumerate(_container_amounts(container)):
            totals[i] = max(totals[i], amount)
    return [1000, 1000, *totals]


def _missing(pod: Mapping[str, Any], constrained: Iterable[str]) -> dict[str, list[str]]:
    """Quota resource → the containers that do not state it (the "must specify" check)."""
    spec = pod.get("spec") or {}
    containers = [*(spec.get("containers") or ()), *(spec.get("initContainers") or ())]
    missing: dict[str, list[str]] = {}
    for resource in constrained:
        where, which = _CONSTRAINED[resource]
        for container in containers:
            resources = container.get("resources") or {}
            stated = dict(resources.get(where) or {})
            if where == "requests":
                stated = {**(resources.get("limits") or {}), **stated}
            if which not in stated:
                missing.setdefault(resource, []).append(str(container.get("name", "")))
    return missing


def parse_hard(hard: Mapping[str, Any]) -> dict[str, int]:
    """spec.hard in thousandths (it has been validated)."""
    return {str(name): milli(value) for name, value in hard.items()}


def forbidden_pod(name: str, message: str) -> ApiError:
    return ApiError(403, "Forbidden", f'pods "{name}" is forbidden: {message}',
                    {"name": name, "kind": "pods"})


class QuotaLedger:
    """Per namespace with a quota: the usage of its pods, kept current by a store listener."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self._followed: set[str] = set()
        #: namespace → uid → usage vector of each pod that has not ended.
        self._live: dict[str, dict[str, list[int]]] = {}
        #: namespace → every pod object (`count/pods`).
        self._objects: dict[str, int] = {}
        store.add_listener(self._on_event)

    @classmethod
    def of(cls, store: ObjectStore) -> QuotaLedger:
        """The store's ledger (made, and following the store, on first use)."""
        ledger = _LEDGERS.get(store)
        if ledger is None:
            ledger = _LEDGERS[store] = cls(store)
        return ledger

    @staticmethod
    def existing(store: ObjectStore) -> QuotaLedger | None:
        return _LEDGERS.get(store)

    def follow(self, namespace: str) -> None:
        """Start counting a namespace's pods (a quota was created in it)."""
        if namespace in self._followed:
            return
        self._followed.add(namespace)
        live: dict[str, list[int]] = {}
        records = self._store.list(PODS, namespace)
        for record in records:
            if record.phase not in _TERMINAL:
                live[record.uid] = pod_usage(record.object())
        self._live[namespace] = live
        self._objects[namespace] = len(records)

    def used(self, namespace: str) -> list[int]:
        """The namespace's usage vector (indexed as `MEASURED`'s values), in thousandths."""
        totals = [0] * 6
        for usage in self._live.get(namespace, {}).values():
            for i in (_PODS, _REQ_CPU, _REQ_MEM, _LIM_CPU, _LIM_MEM):
                totals[i] += usage[i]
        totals[_ALL_PODS] = self._objects.get(namespace, 0) * 1000
        return totals

    def status(self, namespace: str, hard: Mapping[str, Any]) -> Json:
        """A quota's status for `hard` (spec.hard) now: `hard` and `used`."""
        self.follow(namespace)
        used = self.used(namespace)
        return {
            "hard": dict(hard),
            "used": {
                str(name): format_quantity(str(name), used[MEASURED[name]] if name in MEASURED
                                           else 0)
                for name in hard
            },
        }

    # -- admission -------------------------------------------------------------------------
    def admit_pod(self, namespace: str, pod: Json) -> None:
        """Raise the 403 the ResourceQuota plugin answers when `pod` must not be created."""
        quotas = self._store.list(RESOURCEQUOTAS, namespace)
        if not quotas:
            return
        self.follow(namespace)
        name = str(pod["metadata"].get("name", ""))
        parsed = [(q.name, q.object()) for q in quotas]
        for quota_name, quota in parsed:
            hard = (quota.get("spec") or {}).get("hard") or {}
            missing = _missing(pod, sorted(r for r in hard if r in _CONSTRAINED))
            if missing:
                wanted = "; ".join(f"{r} for: {','.join(sorted(set(c)))}"
                                   for r, c in sorted(missing.items()))
                raise forbidden_pod(name, f"failed quota: {quota_name}: must specify {wanted}")
        if (pod.get("status") or {}).get("phase") in _TERMINAL:
            delta = [0, 1000, 0, 0, 0, 0]
        else:
            delta = pod_usage(pod)
        used = self.used(namespace)
        for quota_name, quota in parsed:
            hard = parse_hard((quota.get("spec") or {}).get("hard") or {})
            exceeded = sorted(r for r, limit in hard.items()
                              if r in MEASURED and delta[MEASURED[r]]
                              and used[MEASURED[r]] + delta[MEASURED[r]] > limit)
            if not exceeded:
                continue

            def listing(values: Mapping[str, int], exceeded: list[str] = exceeded) -> str:
                return ",".join(f"{r}={format_quantity(r, values[r])}" for r in exceeded)

            requested = {r: delta[MEASURED[r]] for r in exceeded}
            current = {r: used[MEASURED[r]] for r in exceeded}
            raise forbidden_pod(
                name,
                f"exceeded quota: {quota_name}, requested: {listing(requested)}, "
                f"used: {listing(current)}, limited: {listing(hard)}",
            )

    # -- following the store ---------------------------------------------------------------
    def _on_event(self, event: StoreEvent) -> None:
        record = event.record
        if record.resource == RESOURCEQUOTAS and event.type == "MODIFIED":
            # An update of spec.hard (or a status write): restate hard and used.
            self._store.update(RESOURCEQUOTAS, record.namespace, record.name, self._restate)
            return
        if record.resource != PODS or record.namespace not in self._followed:
            return
        live = self._live[record.namespace]
        changed = False
        if event.type == "ADDED":
            self._objects[record.namespace] += 1
            changed = True
            if record.phase not in _TERMINAL:
                live[record.uid] = pod_usage(record.object())
        elif event.type == "MODIFIED":
            if record.phase in _TERMINAL and live.pop(record.uid, None) is not None:
                changed = True
        elif event.type == "DELETED":
            self._objects[record.namespace] -= 1
            live.pop(record.uid, None)
            changed = True
        if changed:
            self._refresh(record.namespace)

    def _refresh(self, namespace: str) -> None:
        """Rewrite `status.used` of the namespace's quotas (a write only where it changed)."""
        for quota in self._store.list(RESOURCEQUOTAS, namespace):
            self._store.update(RESOURCEQUOTAS, namespace, quota.name, self._restate)

    def _restate(self, quota: Json) -> bool:
        namespace = quota["metadata"].get("namespace", "")
        status = self.status(namespace, (quota.get("spec") or {}).get("hard") or {})
        if quota.get("status") == status:
            return False
        quota["status"] = status
        return True


_LEDGERS: weakref.WeakKeyDictionary[ObjectStore, QuotaLedger] = weakref.WeakKeyDictionary()

