"""What one served kind is: its names, scope, verbs, subresources, and the rules only it has.

The verbs themselves (get, list, watch, create, update, patch, apply, delete,
deletecollection) are generic (`verbs.py`): they read and write the kind's store, keep
resourceVersions, apply selectors, print tables and check fields. A kind says only what is
special about it by overriding the hooks below; a hook it leaves alone does what the API
server does for a plain object.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from podfleet.simulator.apiserver.tables import NAME_AND_AGE, TablePrinter

if TYPE_CHECKING:
    import asyncio

    from podfleet.simulator.apiserver.requestinfo import RequestInfo
    from podfleet.simulator.runtime import SimulatorRuntime
    from podfleet.simulator.store import ObjectStore, Record

#: Every verb of a resource with nothing special about it.
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ApiContext:
    """What a request's handling may use beyond the request: the runtime and the shutdown."""

    runtime: SimulatorRuntime
    #: Set when the server shuts down; streaming answers (watch, log follow) end on it.
    closing: asyncio.Event


#: Serves a subresource request itself (log, binding) instead of the generic verbs.
SubresourceServer = Callable[
    [ApiContext, web.Request, "RequestInfo"], Awaitable[web.StreamResponse]
]


@dataclass(frozen=True)
class Subresource:
    """One subresource of a kind, as discovery lists it (`pods/status`, `pods/log`)."""

    name: str
    #: The kind its request and answer bodies are ("" = the parent's kind).
    kind: str = ""
    verbs: tuple[str, ...] = ("get", "patch", "update")
    #: None: the generic verbs on the parent object (for `status`, they change status only).
    serve: SubresourceServer | None = None
    #: The group and version of `kind` when it is not the parent's (pods/eviction: policy/v1).
    group: str = ""
    version: str = ""


class Kind:
    """One served resource. Subclass it in a module of its own and register an instance.

    Class attributes name the resource as discovery shows it; the methods are hooks the
    generic verbs call at fixed points. Hooks raise `ApiError` to refuse a request.
    """

    #: The API group ("" = the core group, served under /api).
    group: ClassVar[str] = ""
    version: ClassVar[str] = "v1"
    #: The plural resource name in URLs (`pods`).
    resource: ClassVar[str]
    singular: ClassVar[str]
    kind: ClassVar[str]
    namespaced: ClassVar[bool]
    verbs: ClassVar[tuple[str, ...]] = ALL_VERBS
    short_names: ClassVar[tuple[str, ...]] = ()
    categories: ClassVar[tuple[str, ...]] = ()
    subresources: ClassVar[tuple[Subresource, ...]] = ()
    #: The fields a field selector may name.
    field_selectors: ClassVar[frozenset[str]] = frozenset({"metadata.name", "metadata.namespace"})
    #: How `kubectl get` prints it (default: NAME and AGE).
    printer: ClassVar[TablePrinter] = NAME_AND_AGE
    #: False for a kind whose objects are never stored (reviews): `respond` answers each of
    #: its requests instead of the generic verbs.
    stored: ClassVar[bool] = True

    @property
    def api_version(self) -> str:
        """`v1` for the core group, else `group/version`, as objects carry it."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    def subresource(self, name: str) -> Subresource | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None

    # ---------------------------------------------------------------- hooks

    def store(self, runtime: SimulatorRuntime) -> ObjectStore:
        """The store its objects live in (the runtime's main store unless overridden)."""
        return runtime.store

    def before_request(self, runtime: SimulatorRuntime) -> None:
        """Called before every request for this kind is handled (e.g. to expire objects)."""

    def prepare_create(self, obj: dict[str, Any], runtime: SimulatorRuntime) -> None:
        """Validate a new object and set its defaults, in place (after its name is known)."""

    def admit(self, obj: dict[str, Any], namespace: str, runtime: SimulatorRuntime) -> None:
        """The last check before a create is stored, with no await before the write."""

    def prepare_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Make `new` (metadata already reconciled with `old`) what an update stores; validate it.

        Not called for the `status` subresource, which replaces status and nothing else.
        """

    def delete(
        self, record: Record, options: dict[str, Any], runtime: SimulatorRuntime
    ) -> Record:
        """Delete one object (DeleteOptions in `options`); returns what the answer shows."""
        deleted = self.store(runtime).delete(self.resource, record.namespace, record.name)
        return deleted or record

    async def respond(
        self, context: ApiContext, request: web.Request, info: RequestInfo
    ) -> web.StreamResponse:
        """Answer a request of a kind that is not `stored` (only such kinds override it)."""
        raise NotImplementedError(f"{self.resource} is stored: the generic verbs serve it")
