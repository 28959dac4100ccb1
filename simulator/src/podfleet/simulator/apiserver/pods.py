"""Pods: validation and defaults at create, admission, graceful deletion, and the
subresources `status`, `binding` (what a scheduler posts) and `log`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from podfleet.simulator.apiserver.body import read_body
from podfleet.simulator.apiserver.errors import (
    bad_request,
    conflict,
    invalid,
    invalid_object,
    not_found,
)
from podfleet.simulator.apiserver.kind import ApiContext, Kind, Subresource
from podfleet.simulator.apiserver.podlogs import PodLogReader
from podfleet.simulator.apiserver.priorityclasses import resolve_pod_priority
from podfleet.simulator.apiserver.quota import QuotaLedger
from podfleet.simulator.apiserver.requestinfo import RequestInfo
from podfleet.simulator.apiserver.responses import dumps, json_response
from podfleet.simulator.apiserver.tables import TablePrinter, column
from podfleet.simulator.apiserver.validation import (
    decode_object,
    default_pod,
    validate_pod,
    validate_pod_update,
)
from podfleet.simulator.cluster.disruption import (
    EVICTION_BY_EVICTION_API,
    add_disruption_condition,
    disruption_condition,
)
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import PODS, Record

_BEFORE_AGE = (
    column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "The aggregate status of the containers in this pod."),
    column(
        "Restarts",
        "The number of times the containers in this pod have been restarted.",
        kind="string",
    ),
)
_AFTER_AGE = (
    column("IP", "IP address allocated to the pod.", priority=1),
    column("Node", "Name of the node where the pod is scheduled.", priority=1),
    column("Nominated Node", "Name of the node nominated for preemption.", priority=1),
    column("Readiness Gates", "Pod readiness gates.", priority=1),
)


def _cells(obj: dict[str, Any], now: float) -> list[Any]:
    meta = obj.get("metadata", {})
    spec = obj.get("spec", {})
    status = obj.get("status", {})
    containers = spec.get("containers") or []
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(int(s.get("restartCount", 0)) for s in statuses)
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for s in reversed(statuses):
        state = s.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated"):
            terminated = state["terminated"]
            reason = terminated.get("reason") or (
                f"Signal:{terminated['signal']}"
                if terminated.get("signal")
                else f"ExitCode:{terminated.get('exitCode', 0)}"
            )
    if meta.get("deletionTimestamp"):
        reason = "Terminating"
    return [
        f"{ready}/{len(containers)}",
        reason,
        restarts,
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


async def _bind(context: ApiContext, request: web.Request, info: RequestInfo) -> web.Response:
    """`POST pods/x/binding`: what a scheduler sends to set spec.nodeName."""
    runtime = context.runtime
    body = await read_body(request, runtime.config.max_body_bytes)
    binding = decode_object(body, request.content_type, "Binding")
    target = (binding.get("target") or {}).get("name")
    if not target:
        raise invalid_object(
            "Binding", info.name, [invalid("target.name", target, "must be set")]
        )
    record = runtime.store.get(PODS, info.namespace, info.name)
    if record is None:
        raise not_found(PODS, info.name)
    if record.node_name:
        raise conflict(PODS, info.name)
    runtime.store.bind_pod(info.namespace, info.name, target)
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
              "code": 201}  # fmt: skip
    return json_response(dumps(status), status=201)


async def _evict(context: ApiContext, request: web.Request, info: RequestInfo) -> web.Response:
    """`POST pods/x/eviction` (policy/v1 Eviction): DisruptionTarget, then a delete with the
    Eviction's deleteOptions. PodDisruptionBudgets are not modelled: every eviction is
    allowed, as when no budget covers the pod."""
    runtime = context.runtime
    body = await read_body(request, runtime.config.max_body_bytes)
    eviction = decode_object(body, request.content_type, "Eviction", "policy/v1")
    named = (eviction.get("metadata") or {}).get("name")
    if named and named != info.name:
        raise bad_request("name in URL does not match name in Eviction object")
    record = runtime.store.get(PODS, info.namespace, info.name)
    if record is None:
        raise not_found(PODS, info.name)
    options = eviction.get("deleteOptions") or {}
    if not isinstance(options, dict):
        raise bad_request("deleteOptions must be a DeleteOptions object")
    if record.phase not in ("Succeeded", "Failed") and not record.deleting:
        add_disruption_condition(runtime.store, info.namespace, info.name, disruption_condition(
            EVICTION_BY_EVICTION_API, "Eviction API: evicting"))
        record = runtime.store.get(PODS, info.namespace, info.name) or record
    if not record.deleting:
        PodKind().delete(record, options, runtime)
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
              "code": 201}  # fmt: skip
    return json_response(dumps(status), status=201)


async def _log(context: ApiContext, request: web.Request, info: RequestInfo) -> web.StreamResponse:
    """`GET pods/x/log`: the container's output (podlogs.py)."""
    reader = PodLogReader(context.runtime, context.closing)
    return await reader.serve(request, info.namespace, info.name)


class PodKind(Kind):
    resource = PODS
    singular = "pod"
    kind = "Pod"
    namespaced = True
    short_names = ("po",)
    categories = ("all",)
    subresources = (
        Subresource("status"),
        Subresource("binding", kind="Binding", verbs=("create",), serve=_bind),
        Subresource("log", verbs=("get",), serve=_log),
        Subresource("eviction", kind="Eviction", verbs=("create",), serve=_evict,
                    group="policy", version="v1"),
    )
    field_selectors = frozenset(
        {"metadata.name", "metadata.namespace", "status.phase", "spec.nodeName"}
    )
    printer = TablePrinter.named(_cells, before_age=_BEFORE_AGE, after_age=_AFTER_AGE)

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_pod(obj)
        resolve_pod_priority(obj, runtime.store)
        default_pod(obj, grace_period_s=runtime.config.default_termination_grace_period_s)

    def admit(self, obj: dict[str, Any], namespace: str, runtime: SimulatorRuntime) -> None:
        ledger = QuotaLedger.existing(runtime.store)
        if ledger is not None:  # none until the first ResourceQuota is created
            ledger.admit_pod(namespace, obj)
        faults = runtime.faults
        if faults is not None:
            # No await before the store write, so a pod quota stays exact however many
            # creates are in flight.
            refused = faults.admit_pod(namespace, obj)
            if refused is not None:
                raise refused

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        new["status"] = old.get("status", {})
        validate_pod_update(old, new)

    def delete(
        self, record: Record, options: dict[str, Any], runtime: SimulatorRuntime
    ) -> Record:
        """At once when unbound, finished or grace 0; else marked and removed after the grace.

        Pods with finalizers stay (deleting) until a write empties them.
        """
        store = runtime.store
        grace = options.get("gracePeriodSeconds")
        obj = record.object()
        if grace is None:
            grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
        if grace is None:
            grace = runtime.config.default_termination_grace_period_s
        grace = max(0, int(grace))
        immediate = grace == 0 or not record.node_name or record.phase in ("Succeeded", "Failed")
        finalizers = obj["metadata"].get("finalizers")
        if immediate and not finalizers:
            deleted = store.delete(PODS, record.namespace, record.name)
            return deleted or record
        if record.deleting:
            current_grace = obj["metadata"].get("deletionGracePeriodSeconds")
            if current_grace is not None and grace >= current_grace:
                return record  # a longer or equal grace never extends a running one
        deadline = datetime.now(UTC) + timedelta(seconds=grace if not immediate else 0)
        stamp = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        effective = grace if not immediate else 0

        def mark(pod: dict[str, Any]) -> None:
            pod["metadata"]["deletionTimestamp"] = stamp
            pod["metadata"]["deletionGracePeriodSeconds"] = effective

        marked = store.update(PODS, record.namespace, record.name, mark)
        if marked is None:
            return record
        store.schedule_deletion(record.namespace, record.name, record.uid, effective)
        return marked
