"""ServiceAccount tokens the API server recognises: minted by the TokenRequest subresource
(`serviceaccounts/{name}/token`), each naming one ServiceAccount by namespace, name and uid.

A token stops authenticating when its ServiceAccount is deleted (or recreated: the uid no
longer matches), as a bound token does on a real cluster. Tokens live in memory only; a
restarted simulator knows none of them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TokenOwner:
    """The ServiceAccount a token was minted for."""

    namespace: str
    name: str
    uid: str


@dataclass
class ServiceAccountTokens:
    """Every token minted since start, by token."""

    _owners: dict[str, TokenOwner] = field(default_factory=dict)

    def mint(self, namespace: str, name: str, uid: str) -> str:
        """A fresh token for the ServiceAccount `namespace/name` (with uid `uid`)."""
        token = "sa-" + secrets.token_urlsafe(32)
        self._owners[token] = TokenOwner(namespace, name, uid)
        return token

    def owner(self, token: str) -> TokenOwner | None:
        """Whom `token` was minted for; None when it is not a ServiceAccount token."""
        return self._owners.get(token)
