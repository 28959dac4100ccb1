"""The kinds one API server serves, looked up by group, version and resource.

Adding a kind is writing its `Kind` subclass in a module of its own (kinds that differ only in
names and scope share one, as the RBAC kinds do in `rbacobjects.py`) and adding an instance to
`served_kinds()`; routing, discovery, OpenAPI, tables, selectors and the verbs follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from podfleet.simulator.apiserver.events import EventKind
from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.namespaces import NamespaceKind
from podfleet.simulator.apiserver.nodes import NodeKind
from podfleet.simulator.apiserver.pods import PodKind
from podfleet.simulator.apiserver.priorityclasses import PriorityClassKind
from podfleet.simulator.apiserver.rbacobjects import (
    ClusterRoleBindingKind,
    ClusterRoleKind,
    RoleBindingKind,
    RoleKind,
)
from podfleet.simulator.apiserver.resourcequotas import ResourceQuotaKind
from podfleet.simulator.apiserver.selfsubjectaccessreviews import SelfSubjectAccessReviewKind
from podfleet.simulator.apiserver.serviceaccounts import ServiceAccountKind


class KindRegistry:
    """Kinds by (group, version, resource), in the order they were registered."""

    def __init__(self, kinds: Iterable[Kind] = ()) -> None:
        self._kinds: dict[tuple[str, str, str], Kind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: Kind) -> None:
        key = (kind.group, kind.version, kind.resource)
        if key in self._kinds:
            raise ValueError(f"{kind.api_version} {kind.resource} is registered twice")
        self._kinds[key] = kind

    def get(self, group: str, version: str, resource: str) -> Kind | None:
        return self._kinds.get((group, version, resource))

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._kinds.values())

    def in_group_version(self, group: str, version: str) -> list[Kind]:
        return [k for k in self._kinds.values() if (k.group, k.version) == (group, version)]

    def group_versions(self) -> list[tuple[str, str]]:
        """The (group, version) pairs served, first-registered first ("" = core)."""
        return list(dict.fromkeys((k.group, k.version) for k in self._kinds.values()))


def served_kinds() -> KindRegistry:
    """Every kind the simulator serves."""
    return KindRegistry([
        PodKind(), NodeKind(), NamespaceKind(), EventKind(), ResourceQuotaKind(),
        PriorityClassKind(), ServiceAccountKind(),
        RoleKind(), ClusterRoleKind(), RoleBindingKind(), ClusterRoleBindingKind(),
        SelfSubjectAccessReviewKind(),
    ])
