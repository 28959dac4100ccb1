"""ResourceQuotas (core/v1, namespaced; `status`): spec.hard validated, status kept by the
server (`quota.py` counts the pods and enforces the hard limits on pod creates).

`kubectl get quota` prints NAME AGE REQUEST LIMIT (`pods: 1/10, requests.cpu: 500m/2`), as
the real server's table does; `kubectl describe quota` reads status.hard and status.used.
"""

from __future__ import annotations

from typing import Any

from podfleet.kube.rules import QUANTITY_MESSAGE
from podfleet.simulator.apiserver.errors import FieldError, invalid, invalid_object
from podfleet.simulator.apiserver.kind import Kind, Subresource
from podfleet.simulator.apiserver.quota import QuotaLedger, milli
from podfleet.simulator.apiserver.tables import TablePrinter, column
from podfleet.simulator.apiserver.validation import validate_metadata
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import RESOURCEQUOTAS

_AFTER_AGE = (
    column("Request", "Request represents a minimum amount of cpu/memory that a container may "
                      "consume."),
    column("Limit", "Limits control the maximum amount of cpu/memory that a container may use "
                    "independent of contention on the node."),
)


def _cells(obj: dict[str, Any], now: float) -> list[Any]:
    status = obj.get("status") or {}
    hard = status.get("hard") or {}
    used = status.get("used") or {}
    requests: list[str] = []
    limits: list[str] = []
    for name in sorted(hard):
        cell = f"{name}: {used.get(name, '0')}/{hard[name]}"
        (limits if name.startswith("limits.") else requests).append(cell)
    return [
        ", ".join(requests),
        ", ".join(limits),
    ]


def validate_quota(obj: dict[str, Any]) -> None:
    """Name and metadata; spec.hard a map of non-negative quantities."""
    meta = obj["metadata"]
    errors: list[FieldError] = validate_metadata(meta)
    spec = obj.get("spec")
    if spec is None:
        spec = obj["spec"] = {}
    hard = spec.get("hard") if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or (hard is not None and not isinstance(hard, dict)):
        errors.append(invalid("spec.hard", hard, "must be a map of quantities"))
    else:
        for name, value in (hard or {}).items():
            path = f"spec.hard[{name}]"
            try:
                amount = milli(value)
            except (ValueError, TypeError):
                errors.append(invalid(path, value, QUANTITY_MESSAGE))
                continue
            if amount < 0:
                errors.append(invalid(path, value, "must be greater than or equal to 0"))
            elif (name == "pods" or name.startswith("count/")) and amount % 1000:
                errors.append(invalid(path, value, "must be an integer"))
    if errors:
        raise invalid_object("ResourceQuota", str(meta.get("name", "")), errors)


class ResourceQuotaKind(Kind):
    resource = RESOURCEQUOTAS
    singular = "resourcequota"
    kind = "ResourceQuota"
    namespaced = True
    short_names = ("quota",)
    subresources = (Subresource("status"),)
    printer = TablePrinter.named(_cells, after_age=_AFTER_AGE)

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_quota(obj)
        namespace = obj["metadata"].get("namespace", "")
        hard = obj["spec"].get("hard") or {}
        obj["status"] = QuotaLedger.of(runtime.store).status(namespace, hard)

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        # The ledger restates status.hard and status.used as soon as the update is stored.
        validate_quota(new)
        new["status"] = old.get("status", {})
