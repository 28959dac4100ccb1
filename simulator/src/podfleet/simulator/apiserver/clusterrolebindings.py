"""ClusterRoleBindings (rbac.authorization.k8s.io/v1, cluster-scoped):
who (subjects) gets a ClusterRole's rules, everywhere.

The RBAC authorizer (`authorization.py`) reads them from the store at every decision, so a
change applies to the next request.
"""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.rbacobjects import keep_role_ref, validate_binding
from podfleet.simulator.runtime import SimulatorRuntime


class ClusterRoleBindingKind(Kind):
    group = "rbac.authorization.k8s.io"
    resource = "clusterrolebindings"
    singular = "clusterrolebinding"
    kind = "ClusterRoleBinding"
    namespaced = False
    #: How 422 messages name it (`ClusterRoleBinding.rbac.authorization.k8s.io "x" is invalid`).
    qualified_kind = "ClusterRoleBinding.rbac.authorization.k8s.io"

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_binding(obj, self.qualified_kind, namespaced=False)

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        keep_role_ref(old, new, self.qualified_kind)
        validate_binding(new, self.qualified_kind, namespaced=False)
