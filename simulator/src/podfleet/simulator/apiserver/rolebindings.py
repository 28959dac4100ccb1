"""RoleBindings (rbac.authorization.k8s.io/v1, namespaced):
who (subjects) gets a role's rules, in its namespace.

The RBAC authorizer (`authorization.py`) reads them from the store at every decision, so a
change applies to the next request.
"""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.rbacobjects import keep_role_ref, validate_binding
from podfleet.simulator.runtime import SimulatorRuntime


class RoleBindingKind(Kind):
    group = "rbac.authorization.k8s.io"
    resource = "rolebindings"
    singular = "rolebinding"
    kind = "RoleBinding"
    namespaced = True
    #: How 422 messages name it (`RoleBinding.rbac.authorization.k8s.io "x" is invalid`).
    qualified_kind = "RoleBinding.rbac.authorization.k8s.io"

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        validate_binding(obj, self.qualified_kind, namespaced=True)

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        keep_role_ref(old, new, self.qualified_kind)
        validate_binding(new, self.qualified_kind, namespaced=True)
