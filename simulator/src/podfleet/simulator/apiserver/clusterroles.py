"""ClusterRoles (rbac.authorization.k8s.io/v1, cluster-scoped):
rules: the verbs on resources (and non-resource URLs) it grants.

The RBAC authorizer (`authorization.py`) reads them from the store at every decision, so a
change applies to the next request.
"""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.rbacobjects import validate_role
from podfleet.simulator.runtime import SimulatorRuntime


class ClusterRoleKind(Kind):
    group = "rbac.authorization.k8s.io"
    resource = "clusterroles"
    singular = "clusterrole"
    kind = "ClusterRole"
    namespaced = False
    #: How 422 messages name it (`ClusterRole.rbac.authorization.k8s.io "x" is invalid`).
    qualified_kind = "ClusterRole.rbac.authorization.k8s.io"

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_role(obj, self.qualified_kind, namespaced=False)

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        validate_role(new, self.qualified_kind, namespaced=False)
