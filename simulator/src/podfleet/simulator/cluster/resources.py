"""A pod's resource requests and a node's capacity, as integers (millicores, bytes, pods).

Quantities are parsed with ``podfleet.kube.rules.parse_quantity`` once per distinct string:
a fleet's pods repeat the same few values, so the cache makes scheduling 100,000 pods cheap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from podfleet.kube.rules import parse_quantity


@lru_cache(maxsize=4096)
def millicores(quantity: str | int | float) -> int:
    """CPU quantity → millicores, rounded up as the scheduler does (``"0.1"`` → 100)."""
    return math.ceil(parse_quantity(quantity) * 1000)


@lru_cache(maxsize=4096)
def byte_count(quantity: str | int | float) -> int:
    """Memory quantity → bytes, rounded up (``"1Gi"`` → 1073741824)."""
    return math.ceil(parse_quantity(quantity))


@dataclass(frozen=True, slots=True)
class Requests:
    """What one pod asks of a node."""

    cpu_m: int = 0
    memory: int = 0


NO_REQUESTS = Requests()


def _container_requests(container: Mapping[str, Any]) -> tuple[int, int]:
    resources = container.get("resources") or {}
    # The API server defaults requests to limits when only limits are given.
    requests = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    cpu = requests.get("cpu")
    memory = requests.get("memory")
    try:
        return (
            millicores(cpu) if cpu is not None else 0,
            byte_count(memory) if memory is not None else 0,
        )
    except (ValueError, TypeError):
        # Validation rejects bad quantities before a pod is stored; be lenient here anyway.
        return 0, 0


def pod_requests(spec: Mapping[str, Any]) -> Requests:
    """Effective requests of a pod spec: max(sum of containers, largest init container)."""
    cpu = memory = 0
    for container in spec.get("containers") or ():
        c, m = _container_requests(container)
        cpu += c
        memory += m
    for container in spec.get("initContainers") or ():
        c, m = _container_requests(container)
        cpu = max(cpu, c)
        memory = max(memory, m)
    if cpu == 0 and memory == 0:
        return NO_REQUESTS
    return Requests(cpu, memory)


def qos_class(spec: dict[str, Any]) -> str:
    """The pod's QoS class as Kubernetes computes it: BestEffort, Burstable or Guaranteed.

    From the cpu and memory requests and limits of every container and init container: none
    set → BestEffort; each limit set and every request equal to its limit → Guaranteed. The
    API server's defaulting (``apiserver.validation``) and the simulated kubelet both use
    this one function.
    """
    containers = [
        c for key in ("containers", "initContainers") for c in (spec.get(key) or [])
        if isinstance(c, dict)
    ]
    any_set = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            limit = limits.get(name)
            request = requests.get(name, limit)
            if limit is None or request is None or not _same_quantity(request, limit):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _same_quantity(a: Any, b: Any) -> bool:
    """Equal amounts ("1" and "1000m" are); unparsable values compare as text."""
    try:
        return parse_quantity(a) == parse_quantity(b)
    except ValueError:
        return str(a) == str(b)
