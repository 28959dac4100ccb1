"""Who sent a request: the bearer token mapped to a user, as the API server's token
authenticators do.

- The simulator's own token (`SimulatorConfig.token`, the one in every kubeconfig it writes;
  any request at all when no token is configured) is the cluster admin: user `system:admin`
  in `system:masters`, which RBAC never restricts. Every client that existed before RBAC keeps
  working unchanged.
- A token minted by the TokenRequest subresource (`serviceaccounts/{name}/token`) is the
  ServiceAccount's user `system:serviceaccount:<ns>:<name>`, in the groups
  `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`; its
  requests are authorised by RBAC (`authorization.py`).
- Anything else is 401 Unauthorized.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from podfleet.simulator.apiserver.errors import unauthorized
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import SERVICEACCOUNTS

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"



@dataclass(frozen=True)
class UserInfo:
    """An authenticated user: name and groups."""

    name: str
    groups: tuple[str, ...]

    @property
    def unrestricted(self) -> bool:
        """In `system:masters`: every request is allowed without consulting RBAC."""
        return MASTERS in self.groups


ADMIN = UserInfo("system:admin", (MASTERS, AUTHENTICATED))
#: Where a user RBAC restricts is kept on the aiohttp request (for reviews of "myself").
USER_KEY: web.RequestKey[UserInfo] = web.RequestKey("podfleet_sim_user", UserInfo)


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The user a ServiceAccount's token authenticates as."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
    )


def authenticate(request: web.Request, runtime: SimulatorRuntime) -> UserInfo:
    """The user the request's bearer token names; raises 401 `ApiError` when it names none."""
    header = request.headers.get("Authorization", "")
    token = header[7:] if header.startswith("Bearer ") else ""
    owner = runtime.tokens.owner(token) if token else None
    if owner is not None:
        account = runtime.store.get(SERVICEACCOUNTS, owner.namespace, owner.name)
        if account is None or account.uid != owner.uid:
            raise unauthorized()  # the ServiceAccount is gone: so is its token
        return service_account_user(owner.namespace, owner.name)
    admin_token = runtime.config.token
    if admin_token is not None and token != admin_token:
        raise unauthorized()
    return ADMIN
