"""The authorisation decisions the API server took for RBAC-checked users, counted.

Every request of a user outside `system:masters` (a ServiceAccount token) is checked against
RBAC; each decision is counted here by who asked for what and whether it was allowed, so tests
can assert that a set of Roles denied nothing and that every grant was used. Read and reset
through the admin endpoint (`GET /_sim/authorization`, `POST /_sim/reset-stats`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AccessRequest:
    """What one request asked for, as RBAC sees it (a non-resource request has `path`)."""

    user: str
    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    path: str = ""

    @property
    def resource_name(self) -> str:
        """`pods` or `pods/log`, as a Role's rule names it."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass
class AuthorizationAudit:
    """Decisions counted by (request, allowed)."""

    decisions: Counter[tuple[AccessRequest, bool]] = field(default_factory=Counter)

    def record(self, request: AccessRequest, allowed: bool) -> None:
        self.decisions[(request, allowed)] += 1

    def clear(self) -> None:
        self.decisions.clear()
