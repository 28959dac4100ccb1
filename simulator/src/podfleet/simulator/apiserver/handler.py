"""The HTTP face of the simulator: one catch-all aiohttp handler shaped as a real API server.

Each request is classified into a `RequestInfo` (`routing.py`), checked for the bearer token,
passed through fault injection and counted, then handed to the verbs (`verbs.py`), a
subresource's own server, or the non-resource documents (discovery, OpenAPI). Owning the
routing means unknown paths and methods answer with proper `Status` bodies too, and the hot
paths (create, get, list) do no work beyond parsing, validating and one orjson dump.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import orjson
from aiohttp import web

from podfleet.simulator.apiserver import openapi
from podfleet.simulator.apiserver.authentication import USER_KEY, authenticate
from podfleet.simulator.apiserver.authorization import RbacAuthorizer, forbidden
from podfleet.simulator.apiserver.discovery import (
    api_group,
    api_group_list,
    api_resource_list,
    api_versions,
    version_info,
)
from podfleet.simulator.apiserver.errors import (
    ApiError,
    method_not_allowed,
    page_not_found,
    resource_not_found,
)
from podfleet.simulator.apiserver.kind import ApiContext, Kind
from podfleet.simulator.apiserver.registry import KindRegistry, served_kinds
from podfleet.simulator.apiserver.requestinfo import RequestInfo
from podfleet.simulator.apiserver.responses import dumps, json_response
from podfleet.simulator.apiserver.routing import classify
from podfleet.simulator.apiserver.verbs import ResourceVerbs
from podfleet.simulator.audit import AccessRequest
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.store import PODS

log = logging.getLogger(__name__)

_RUNTIME_KEY: web.AppKey[SimulatorRuntime] = web.AppKey("podfleet_sim_runtime", SimulatorRuntime)
#: How long requests still being handled at shutdown may take before they are cancelled.
_SHUTDOWN_GRACE_S = 1.0
_UNPROTECTED = frozenset({"/healthz", "/readyz", "/livez"})
#: Verbs a cluster-wide path (no namespace) of a namespaced kind is served with.
_CLUSTER_WIDE_VERBS = frozenset({"get", "list", "watch"})


class ApiServer:
    """Serves the registry's kinds over the runtime's stores."""

    def __init__(self, runtime: SimulatorRuntime, kinds: KindRegistry) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.kinds = kinds
        self.context = ApiContext(runtime, asyncio.Event())
        self.verbs = ResourceVerbs(self.context)
        self.authorizer = RbacAuthorizer(runtime.store)
        #: Tasks of the requests being handled now, so that shutdown can finish them.
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def closing(self) -> asyncio.Event:
        """Set at shutdown: streaming answers (watch, log follow) end."""
        return self.context.closing

    # ---------------------------------------------------------------- entry point

    async def handle(self, request: web.Request) -> web.StreamResponse:
        task = request.task
        self._in_flight.add(task)
        try:
            return await self._handle(request)
        finally:
            self._in_flight.discard(task)

    async def finish_in_flight(self, grace_s: float) -> None:
        """Give the requests still being handled `grace_s` to end, then cancel and await them.

        aiohttp's own shutdown only reaches requests whose connection is still open: a held
        (fault-injected) timeout whose client has gone away would stay pending on the loop
        past the server's end ("Task was destroyed but it is pending!").
        """
        pending = set(self._in_flight)
        if not pending:
            return
        _, pending = await asyncio.wait(pending, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=grace_s)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        method = request.method
        if path in _UNPROTECTED:
            return web.Response(text="ok", content_type="text/plain")
        info, kind = classify(method, path, request.query, self.kinds)
        stats = self.runtime.stats
        is_pod_create = info.verb == "create" and info.resource == PODS and not info.subresource
        try:
            self.authorize(request, info)
            faults = self.runtime.faults
            if faults is not None and info.verb:
                injected = await faults.intercept(info)
                if injected is not None:
                    stats.requests[(info.verb, info.resource, injected.status)] += 1
                    if is_pod_create:
                        stats.record_create(injected.status, _reason_of(injected))
                    return injected
            response = await self.dispatch(request, info, kind)
        except ApiError as exc:
            response = exc.response()
            if is_pod_create:
                stats.record_create(exc.code, exc.reason)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as exc:  # a bug must still answer with a Status, and only this request
            log.exception("%s %s failed", method, path)
            response = ApiError(500, "InternalError", f"Internal error occurred: {exc}").response()
            if is_pod_create:
                stats.record_create(500, "InternalError")
        else:
            if is_pod_create:
                stats.record_create(response.status, "")
        stats.requests[(info.verb, info.resource, response.status)] += 1
        return response

    def authorize(self, request: web.Request, info: RequestInfo) -> None:
        """Authenticate the bearer token (401) and, for a user RBAC restricts, authorise the
        request (403, counted in `runtime.audit` either way)."""
        user = authenticate(request, self.runtime)
        if user.unrestricted:
            return
        request[USER_KEY] = user
        if info.verb:
            asked = AccessRequest(user.name, info.verb, info.api_group, info.resource,
                                  info.subresource, info.namespace)
        else:
            asked = AccessRequest(user.name, info.method.lower(), "", "", "", "", info.path)
        decision = self.authorizer.authorize(user, asked, info.name)
        self.runtime.audit.record(asked, decision.allowed)
        if not decision.allowed:
            raise forbidden(user, asked, info.name, decision.reason)

    async def dispatch(
        self, request: web.Request, info: RequestInfo, kind: Kind | None
    ) -> web.StreamResponse:
        """Check the request against what the kind serves, then run its verb."""
        if not info.verb:
            return self.non_resource(request)
        if kind is None:
            raise resource_not_found(info.api_group, info.resource, info.name)
        if info.namespace and not kind.namespaced:
            raise page_not_found()
        verb = info.verb
        subresource = kind.subresource(info.subresource) if info.subresource else None
        if info.subresource and subresource is None:
            raise page_not_found()
        if kind.namespaced and not info.namespace and verb not in _CLUSTER_WIDE_VERBS:
            raise method_not_allowed(request.method)
        served_verbs = subresource.verbs if subresource is not None else kind.verbs
        if verb not in served_verbs:
            raise method_not_allowed(request.method)
        kind.before_request(self.runtime)
        if not kind.stored:
            return await kind.respond(self.context, request, info)
        if subresource is not None and subresource.serve is not None:
            return await subresource.serve(self.context, request, info)
        verbs = self.verbs
        if verb == "get":
            return verbs.get(info, kind, request)
        if verb == "list":
            return verbs.list(request, info, kind)
        if verb == "watch":
            return await verbs.watch(request, info, kind)
        if verb == "create":
            if info.name:
                raise method_not_allowed(request.method)
            return await verbs.create(request, info, kind)
        if verb in ("update", "patch"):
            return await verbs.update(request, info, kind)
        if verb == "delete":
            return await verbs.delete(request, info, kind)
        if verb == "deletecollection":
            return await verbs.delete_collection(request, info, kind)
        raise method_not_allowed(request.method)

    def non_resource(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise method_not_allowed(request.method)
        path = request.path.rstrip("/")
        if path == "/version":
            return json_response(dumps(version_info(self.config.git_version)))
        if path == "/api":
            return json_response(dumps(api_versions(f"{request.host}")))
        if path == "/apis":
            return json_response(dumps(api_group_list(self.kinds)))
        if path.startswith("/openapi/"):
            return self.openapi_document(request, path)
        parts = path.split("/")[1:]
        document = None
        if parts[:2] == ["api", "v1"] and len(parts) == 2:
            document = api_resource_list(self.kinds, "", "v1")
        elif parts[0] == "apis" and len(parts) == 2:
            document = api_group(self.kinds, parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            document = api_resource_list(self.kinds, parts[1], parts[2])
        if document is None:
            raise page_not_found()
        return json_response(dumps(document))

    def openapi_document(self, request: web.Request, path: str) -> web.Response:
        """The OpenAPI documents kubectl validates and computes `apply` patches with."""
        version = self.config.git_version
        if path == "/openapi/v3":
            return json_response(openapi.v3_root_document(self.kinds, version))
        if path == "/openapi/v3/" + openapi.V3_GROUP_PATH:
            return json_response(openapi.v3_group_document(self.kinds, version))
        if path == "/openapi/v2":
            accept = request.headers.get("Accept", "")
            if accept and "json" not in accept and "*/*" not in accept:
                # client-go asks for protobuf only; the simulator speaks JSON (and v3).
                raise ApiError(406, "NotAcceptable", "only application/json is served")
            return json_response(openapi.v2_document(self.kinds, version))
        raise page_not_found()


def _reason_of(response: web.StreamResponse) -> str:
    body = getattr(response, "body", None)
    if isinstance(body, bytes | bytearray):
        try:
            reason = orjson.loads(body).get("reason", "")
            return str(reason)
        except (orjson.JSONDecodeError, AttributeError):
            pass
    return str(response.status)


def build_api_app(
    runtime: SimulatorRuntime,
    *,
    setup_extra: Callable[[web.Application], object] | None = None,
    kinds: KindRegistry | None = None,
) -> web.Application:
    """The aiohttp application: admin routes (if any) first, then the catch-all API handler.

    `kinds`: what is served (default: `served_kinds()`).
    """
    app = web.Application(client_max_size=runtime.config.max_body_bytes + 1024)
    app[_RUNTIME_KEY] = runtime
    api = ApiServer(runtime, kinds if kinds is not None else served_kinds())
    if setup_extra is not None:
        setup_extra(app)

    async def finish_requests(_: web.Application) -> None:
        api.closing.set()  # watches end their streams
        runtime.store.wake_all()
        await api.finish_in_flight(_SHUTDOWN_GRACE_S)

    app.on_shutdown.append(finish_requests)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app
