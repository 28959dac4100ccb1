"""The HTTP face of the simulator: core/v1 REST and watch, shaped as a real API server's.

One catch-all aiohttp handler classifies each request into a `RequestInfo` (verb, resource,
namespace, name, subresource) the way the API server's own request-info resolver does, runs
fault injection and counting around it, and dispatches to the verb handlers below. Owning the
routing means unknown paths and methods answer with proper `Status` bodies too, and the hot
paths (create, get, list) do no work beyond parsing, validating and one orjson dump.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from podfleet.simulator import openapi
from podfleet.simulator import patch as patching
from podfleet.simulator.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    invalid_object,
    method_not_allowed,
    not_found,
    page_not_found,
    required,
    too_large,
    unauthorized,
    unsupported_media_type,
)
from podfleet.simulator.fieldvalidation import check_fields, directive, warning_headers
from podfleet.simulator.metadata import (
    GET_KINDS,
    LIST_KINDS,
    WATCH_KINDS,
    metadata_target,
    partial_list,
    partial_object_bytes,
)
from podfleet.simulator.podlogs import PodLogReader
from podfleet.simulator.queryparams import query_bool
from podfleet.simulator.requestinfo import RequestInfo
from podfleet.simulator.resources import (
    RESOURCES,
    SUBRESOURCES,
    ResourceType,
    api_group_list,
    api_resource_list,
    api_versions,
    version_info,
)
from podfleet.simulator.runtime import SimulatorRuntime
from podfleet.simulator.selectors import Selector, parse_selector
from podfleet.simulator.store import (
    EVENTS,
    NAMESPACES,
    NODES,
    PODS,
    AlreadyExistsError,
    ConflictError,
    ObjectStore,
    Record,
)
from podfleet.simulator.tables import table, wants_table
from podfleet.simulator.validation import (
    decode_body,
    decode_object,
    default_pod,
    validate_namespace,
    validate_node,
    validate_pod,
    validate_pod_update,
)
from podfleet.simulator.watch import WatchRequest, serve_watch

log = logging.getLogger(__name__)

JSON = "application/json"
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_RUNTIME_KEY: web.AppKey[SimulatorRuntime] = web.AppKey("podfleet_sim_runtime", SimulatorRuntime)
_TOO_LARGE_WAIT_S = 3.0
#: How long requests still being handled at shutdown may take before they are cancelled.
_SHUTDOWN_GRACE_S = 1.0
_UNPROTECTED = frozenset({"/healthz", "/readyz", "/livez"})


def json_response(body: bytes, status: int = 200, warnings: Sequence[str] = ()) -> web.Response:
    if not warnings:
        return web.Response(body=body, status=status, headers={"Content-Type": JSON})
    headers = CIMultiDict([("Content-Type", JSON), *warning_headers(warnings)])
    return web.Response(body=body, status=status, headers=headers)


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


# --------------------------------------------------------------------- request classification


def classify(method: str, path: str, query: Any) -> tuple[RequestInfo, ResourceType | None]:
    """Turn a method and path into a RequestInfo (and the resource it names, if any)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) < 2 or parts[0] != "api" or parts[1] != "v1" or len(parts) == 2:
        return RequestInfo("", "", "", "", "", path, method), None
    rest = parts[2:]
    watch_prefix = False
    if rest[0] == "watch":
        watch_prefix = True
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == NAMESPACES and rest[2] in RESOURCES and rest[2] != NAMESPACES:
        namespace = rest[1]
        rest = rest[2:]
    if not rest:
        return RequestInfo("", "", "", "", "", path, method), None
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        return RequestInfo("", resource, subresource, namespace, name, path, method), None
    rtype = RESOURCES.get(resource)
    if method == "GET":
        watching = watch_prefix or query_bool(query, "watch")
        verb = "watch" if watching else ("get" if name else "list")
    elif method == "POST":
        verb = "create"
    elif method == "PUT":
        verb = "update"
    elif method == "PATCH":
        verb = "patch"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = method.lower()
    return RequestInfo(verb, resource, subresource, namespace, name, path, method), rtype


# --------------------------------------------------------------------- the API


class CoreApi:
    """Handlers for core/v1 over the runtime's store."""

    def __init__(self, runtime: SimulatorRuntime) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.config = runtime.config
        self.closing = asyncio.Event()
        self.logs = PodLogReader(runtime, self.closing)
        #: Tasks of the requests being handled now, so that shutdown can finish them.
        self._in_flight: set[asyncio.Task[None]] = set()

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
        info, rtype = classify(method, path, request.query)
        stats = self.runtime.stats
        is_pod_create = info.verb == "create" and info.resource == PODS and not info.subresource
        try:
            if self.config.token is not None:
                header = request.headers.get("Authorization", "")
                if header != f"Bearer {self.config.token}":
                    raise unauthorized()
            faults = self.runtime.faults
            if faults is not None and info.verb:
                injected = await faults.intercept(info)
                if injected is not None:
                    stats.requests[(info.verb, info.resource, injected.status)] += 1
                    if is_pod_create:
                        stats.record_create(injected.status, _reason_of(injected))
                    return injected
            response = await self.dispatch(request, info, rtype)
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

    async def dispatch(
        self, request: web.Request, info: RequestInfo, rtype: ResourceType | None
    ) -> web.StreamResponse:
        if not info.verb:
            return self.non_resource(request)
        if rtype is None:
            raise page_not_found()
        if info.subresource and info.subresource not in SUBRESOURCES.get(rtype.name, ()):
            raise page_not_found()
        if rtype.namespaced is False and info.namespace:
            raise page_not_found()
        verb = info.verb
        if rtype.namespaced and not info.namespace and verb not in ("get", "list", "watch"):
            raise method_not_allowed(request.method)
        if info.subresource == "log":
            if verb != "get":
                raise method_not_allowed(request.method)
            return await self.logs.serve(request, info.namespace, info.name)
        if rtype.name == EVENTS:
            if verb not in rtype.verbs or info.subresource:
                raise method_not_allowed(request.method)
            self.runtime.events.expire()
        if verb == "get":
            return self.get(info, rtype, request)
        if verb == "list":
            return self.list(request, info, rtype)
        if verb == "watch":
            return await self.watch(request, info, rtype)
        if verb == "create":
            if info.subresource == "binding":
                return await self.bind(request, info)
            if info.name:
                raise method_not_allowed(request.method)
            return await self.create(request, info, rtype)
        if verb in ("update", "patch"):
            return await self.update(request, info, rtype)
        if verb == "delete":
            if info.subresource:
                raise method_not_allowed(request.method)
            return await self.delete(request, info, rtype)
        if verb == "deletecollection":
            return await self.delete_collection(request, info, rtype)
        raise method_not_allowed(request.method)

    def non_resource(self, request: web.Request) -> web.Response:
        if request.method != "GET":
            raise method_not_allowed(request.method)
        path = request.path.rstrip("/")
        if path == "/version":
            return json_response(_dumps(version_info(self.config.git_version)))
        if path == "/api":
            return json_response(_dumps(api_versions(f"{request.host}")))
        if path == "/api/v1":
            return json_response(_dumps(api_resource_list()))
        if path == "/apis":
            return json_response(_dumps(api_group_list()))
        if path.startswith("/openapi/"):
            return self.openapi_document(request, path)
        raise page_not_found()

    def openapi_document(self, request: web.Request, path: str) -> web.Response:
        """The OpenAPI documents kubectl validates and computes `apply` patches with."""
        version = self.config.git_version
        if path == "/openapi/v3":
            return json_response(openapi.v3_root_document(version))
        if path == "/openapi/v3/" + openapi.V3_GROUP_PATH:
            return json_response(openapi.v3_group_document(version))
        if path == "/openapi/v2":
            accept = request.headers.get("Accept", "")
            if accept and "json" not in accept and "*/*" not in accept:
                # client-go asks for protobuf only; the simulator speaks JSON (and v3).
                raise ApiError(406, "NotAcceptable", "only application/json is served")
            return json_response(openapi.v2_document(version))
        raise page_not_found()

    # ---------------------------------------------------------------- reads

    def _store_of(self, rtype: ResourceType) -> ObjectStore:
        """Events live in a store of their own (eventstore.py); everything else in the main one."""
        return self.runtime.events.objects if rtype.name == EVENTS else self.store

    def get(self, info: RequestInfo, rtype: ResourceType, request: web.Request) -> web.Response:
        record = self._store_of(rtype).get(rtype.name, info.namespace, info.name)
        if record is None:
            raise not_found(rtype.name, info.name)
        metadata = metadata_target(request.headers.get("Accept", ""), GET_KINDS)
        if metadata is not None:
            return json_response(partial_object_bytes(record.raw, metadata))
        if wants_table(request.headers.get("Accept", "")):
            body = table(
                rtype.name,
                [record],
                resource_version=str(record.rv),
                include_object=request.query.get("includeObject", "Metadata"),
            )
            return json_response(_dumps(body))
        return json_response(record.raw)

    def _selector(self, request: web.Request, rtype: ResourceType) -> Selector:
        query = request.query
        return parse_selector(query.get("labelSelector"), query.get("fieldSelector"), rtype.name)

    def _matching(self, rtype: ResourceType, namespace: str, selector: Selector) -> list[Record]:
        """Objects in `namespace` ("" = all) that match, sorted by namespace and name."""
        store = self._store_of(rtype)
        name = selector.name_pin()
        pinned_ns = selector.namespace_pin()
        if pinned_ns is not None and namespace and pinned_ns != namespace:
            return []
        ns: str | None = namespace or pinned_ns
        if not rtype.namespaced:
            ns = ""
        if name is not None and ns is not None:
            record = store.get(rtype.name, ns, name)
            records = [record] if record is not None else []
        else:
            records = store.list(rtype.name, ns)
        if selector.empty:
            return records
        matches = selector.matches
        return [r for r in records if matches(r)]

    def list(self, request: web.Request, info: RequestInfo, rtype: ResourceType) -> web.Response:
        query = request.query
        selector = self._selector(request, rtype)
        limit = _int_param(query, "limit", 0)
        token = query.get("continue", "")
        store = self._store_of(rtype)
        list_rv = store.resource_version
        records = self._matching(rtype, info.namespace, selector)
        next_token = ""
        remaining: int | None = None
        if token:
            start_key, token_rv = self._decode_continue(token, store)
            list_rv = token_rv
            records = [r for r in records if (r.namespace, r.name) > start_key]
        if limit > 0 and len(records) > limit:
            remaining = len(records) - limit
            records = records[:limit]
            last = records[-1]
            next_token = _encode_continue(last.namespace, last.name, list_rv)
        meta: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if next_token:
            meta["continue"] = next_token
            if remaining is not None and selector.empty:
                meta["remainingItemCount"] = remaining
        metadata = metadata_target(request.headers.get("Accept", ""), LIST_KINDS)
        if metadata is not None:
            return json_response(partial_list((r.raw for r in records), metadata, meta))
        if wants_table(request.headers.get("Accept", "")):
            body = table(
                rtype.name,
                records,
                resource_version=str(list_rv),
                include_object=query.get("includeObject", "Metadata"),
                continue_token=next_token,
            )
            return json_response(_dumps(body))
        head = (
            b'{"kind":"'
            + rtype.list_kind.encode()
            + b'","apiVersion":"v1","metadata":'
            + _dumps(meta)
            + b',"items":['
        )
        return json_response(head + b",".join(r.raw for r in records) + b"]}")

    def _decode_continue(self, token: str, store: ObjectStore) -> tuple[tuple[str, str], int]:
        try:
            data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            start = data["start"]
            rv = int(data["rv"])
            namespace, _, name = start.partition("/")
        except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
            raise bad_request(f"invalid continue token: {token}") from None
        if rv < store.window_start_rv:
            raise expired(
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter, or use the "
                "continue token in this response to retrieve the remainder of the results. "
                "Continuing with the provided token results in an inconsistent list - objects "
                "that were created, modified, or deleted between the time the first chunk was "
                "returned and now may show up in the list."
            )
        return (namespace, name), rv

    async def watch(
        self, request: web.Request, info: RequestInfo, rtype: ResourceType
    ) -> web.StreamResponse:
        query = request.query
        selector = self._selector(request, rtype)
        if info.name:
            selector = Selector(
                selector.labels,
                (
                    *selector.fields,
                    *parse_selector(None, f"metadata.name={info.name}", rtype.name).fields,
                ),
            )
        rv_text = query.get("resourceVersion", "")
        if rv_text not in ("", "0"):
            try:
                int(rv_text)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv_text}"') from None
        store = self._store_of(rtype)
        if rv_text not in ("", "0"):
            if self.runtime.faults is not None and self.runtime.faults.expire_watch():
                raise ApiError(410, "Expired", f"too old resource version: {rv_text} "
                               f"({store.resource_version})")
            await self._wait_for_version(store, int(rv_text))
        drop_after = self.runtime.faults.watch_drop_seconds() if self.runtime.faults else None
        spec = WatchRequest(
            resource=rtype.name,
            kind=rtype.kind,
            namespace=info.namespace,
            selector=selector,
            resource_version=rv_text,
            timeout_s=_float_param(query, "timeoutSeconds"),
            bookmarks=query_bool(query, "allowWatchBookmarks"),
            send_initial_events=query_bool(query, "sendInitialEvents"),
            bookmark_interval_s=self.config.bookmark_interval_seconds,
            drop_after_s=drop_after,
            drop_after=self.runtime.faults.watch_drop_seconds if self.runtime.faults else None,
            as_table=wants_table(request.headers.get("Accept", "")),
            as_metadata=metadata_target(request.headers.get("Accept", ""), WATCH_KINDS),
            include_object=query.get("includeObject", "Metadata"),
        )
        stats = self.runtime.stats
        stats.watches_open += 1
        stats.watches_total += 1
        try:
            return await serve_watch(request, store, spec, self.closing)
        finally:
            stats.watches_open -= 1

    async def _wait_for_version(self, store: ObjectStore, rv: int) -> None:
        """Like the watch cache: wait up to 3 s for a version from the future, then 504."""
        deadline = asyncio.get_running_loop().time() + _TOO_LARGE_WAIT_S
        while store.resource_version < rv:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise ApiError(
                    504,
                    "Timeout",
                    f"Too large resource version: {rv}, current: {store.resource_version}",
                    {
                        "causes": [
                            {
                                "reason": "ResourceVersionTooLarge",
                                "message": "Too large resource version",
                            }
                        ],
                        "retryAfterSeconds": 1,
                    },
                )
            await store.wait_for_change(store.resource_version, remaining)

    # ---------------------------------------------------------------- writes

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        length = request.content_length
        if length is not None and length > limit:
            raise too_large(limit)
        if length == 0:
            return b""  # aiohttp's readexactly(0) on a finished body raises
        if length is not None:
            # The usual case (a client sends Content-Length): one read, no copies.
            try:
                return await request.content.readexactly(length)
            except asyncio.IncompleteReadError:
                raise ConnectionResetError("the client sent less than its Content-Length") from None
        body = bytearray()
        async for chunk in request.content.iter_chunked(65536):
            body += chunk
            if len(body) > limit:
                raise too_large(limit)
        return bytes(body)

    def _check_namespace(self, namespace: str) -> None:
        if self.store.get(NAMESPACES, "", namespace) is None:
            raise not_found(NAMESPACES, namespace)

    async def create(
        self, request: web.Request, info: RequestInfo, rtype: ResourceType
    ) -> web.Response:
        body = await self._read_body(request)
        obj = decode_object(body, request.content_type, rtype.kind)
        return self._create_object(request, info, rtype, obj)

    def _create_object(
        self, request: web.Request, info: RequestInfo, rtype: ResourceType, obj: dict[str, Any]
    ) -> web.Response:
        warnings = check_fields(directive(request.query), rtype.kind, obj)
        meta = obj["metadata"]
        if rtype.namespaced:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != info.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = info.namespace
        for managed in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            meta.pop(managed, None)
        generate = meta.get("generateName")
        if not meta.get("name") and isinstance(generate, str) and generate:
            meta["name"] = self._generated_name(rtype, info.namespace, generate)
        if rtype.name == PODS:
            validate_pod(obj)
            default_pod(obj, grace_period_s=self.config.default_termination_grace_period_s)
        elif rtype.name == NAMESPACES:
            validate_namespace(obj)
            obj.pop("spec", None)
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        elif rtype.name == NODES:
            validate_node(obj)
        if rtype.namespaced:
            self._check_namespace(info.namespace)
        faults = self.runtime.faults
        if rtype.name == PODS and faults is not None:
            # Admission with no await before the store write, so a pod quota stays exact
            # however many creates are in flight.
            refused = faults.admit_pod(info.namespace, obj)
            if refused is not None:
                raise refused
        if request.query.get("dryRun"):
            return json_response(_dumps(obj), status=201, warnings=warnings)
        try:
            record = self.store.create(rtype.name, obj)
        except AlreadyExistsError:
            raise already_exists(rtype.name, meta["name"]) from None
        return json_response(record.raw, status=201, warnings=warnings)

    def _generated_name(self, rtype: ResourceType, namespace: str, prefix: str) -> str:
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        for _ in range(8):
            name = base + "".join(random.choices(_GENERATE_ALPHABET, k=5))
            if self.store.get(rtype.name, namespace if rtype.namespaced else "", name) is None:
                return name
        return name

    async def update(
        self, request: web.Request, info: RequestInfo, rtype: ResourceType
    ) -> web.Response:
        if not info.name:
            raise method_not_allowed(request.method)
        body = await self._read_body(request)
        namespace = info.namespace if rtype.namespaced else ""
        record = self.store.get(rtype.name, namespace, info.name)
        how = directive(request.query)
        if info.verb == "patch":
            content_type = request.content_type
            if content_type == patching.APPLY:
                return self.apply(request, info, rtype, body, record)
            if content_type not in patching.SUPPORTED:
                raise unsupported_media_type(content_type, patching.SUPPORTED)
            if record is None:
                raise not_found(rtype.name, info.name)
            patch_doc = decode_body(body, JSON, rtype.kind)
            old = record.object()
            new = patching.apply_patch(content_type, record.object(), patch_doc)
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise bad_request("the patched object is not a valid object")
            requested_rv = _patch_rv(patch_doc)
        else:
            new = decode_object(body, request.content_type, rtype.kind)
            if record is None:
                raise not_found(rtype.name, info.name)
            old = record.object()
            requested_rv = new["metadata"].get("resourceVersion") or None
            body_name = new["metadata"].get("name")
            if body_name and body_name != info.name:
                raise bad_request(
                    "the name of the object "
                    f"({body_name}) does not match the name on the URL ({info.name})"
                )
        warnings = check_fields(how, rtype.kind, new)
        return self._store_update(info, rtype, record, old, new, requested_rv, warnings)

    def apply(
        self,
        request: web.Request,
        info: RequestInfo,
        rtype: ResourceType,
        body: bytes,
        record: Record | None,
    ) -> web.Response:
        """Server-side apply, simplified: create the object, or merge the applied fields in.

        The applied configuration is merged as a strategic merge patch; there is no field
        ownership (managedFields), so no conflicts and no removal of fields an earlier apply
        set and this one leaves out.
        """
        if not request.query.get("fieldManager"):
            raise invalid_object(
                rtype.kind,
                info.name,
                [required("fieldManager", "is required for apply patch")],
            )
        applied = decode_object(body, "application/yaml", rtype.kind)
        name = applied["metadata"].get("name")
        if name and name != info.name:
            raise bad_request(
                f"the name of the object ({name}) does not match the name on the URL "
                f"({info.name})"
            )
        applied["metadata"]["name"] = info.name
        if record is None:
            if info.subresource:
                raise not_found(rtype.name, info.name)
            response = self._create_object(request, info, rtype, applied)
            response.set_status(201)
            return response
        warnings = check_fields(directive(request.query), rtype.kind, applied)
        old = record.object()
        new = patching.apply_patch(patching.STRATEGIC, record.object(), applied)
        requested_rv = applied["metadata"].get("resourceVersion") or None
        return self._store_update(info, rtype, record, old, new, requested_rv, warnings)

    def _store_update(
        self,
        info: RequestInfo,
        rtype: ResourceType,
        record: Record,
        old: dict[str, Any],
        new: dict[str, Any],
        requested_rv: Any,
        warnings: Sequence[str] = (),
    ) -> web.Response:
        """Store `new` in place of `record`, unless the resourceVersion asked for is stale."""
        if requested_rv is not None:
            try:
                expected = int(requested_rv)
            except (TypeError, ValueError):
                raise invalid_object(
                    rtype.kind,
                    info.name,
                    [invalid("metadata.resourceVersion", requested_rv, "must be an integer")],
                ) from None
            if expected != record.rv:
                raise conflict(rtype.name, info.name)
        result = self._merge_update(rtype, old, new, info.subresource)
        if result == old:
            return json_response(record.raw, warnings=warnings)  # a no-op makes no version
        try:
            stored = self.store.replace(rtype.name, result, expected_rv=record.rv)
        except ConflictError:
            raise conflict(rtype.name, info.name) from None
        return json_response(stored.raw, warnings=warnings)

    def _merge_update(
        self, rtype: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """What an update stores: a status update changes only status, others keep status."""
        if subresource == "status":
            result = dict(old)
            result["status"] = new.get("status", {})
            return result
        meta = new["metadata"]
        old_meta = old["metadata"]
        new_name = meta.get("name")
        if new_name is not None and new_name != old_meta["name"]:
            raise invalid_object(
                rtype.kind,
                old_meta["name"],
                [invalid("metadata.name", new_name, "field is immutable")],
            )
        for managed in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
            "generateName",
        ):
            if managed in old_meta:
                meta[managed] = old_meta[managed]
            else:
                meta.pop(managed, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        new["kind"] = rtype.kind
        new["apiVersion"] = "v1"
        if rtype.name == PODS:
            new["status"] = old.get("status", {})
            validate_pod_update(old, new)
        elif rtype.name == NODES:
            new.setdefault("status", old.get("status", {}))
            validate_node(new)
        elif rtype.name == NAMESPACES:
            new["status"] = old.get("status", {})
            new["spec"] = old.get("spec", {})
            validate_namespace(new)
        return new

    async def bind(self, request: web.Request, info: RequestInfo) -> web.Response:
        """`POST pods/x/binding`: what a scheduler sends to set spec.nodeName."""
        body = await self._read_body(request)
        binding = decode_object(body, request.content_type, "Binding")
        target = (binding.get("target") or {}).get("name")
        if not target:
            raise invalid_object(
                "Binding", info.name, [invalid("target.name", target, "must be set")]
            )
        record = self.store.get(PODS, info.namespace, info.name)
        if record is None:
            raise not_found(PODS, info.name)
        if record.node_name:
            raise conflict(PODS, info.name)
        self.store.bind_pod(info.namespace, info.name, target)
        return json_response(
            _dumps(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "code": 201,
                }
            ),
            status=201,
        )

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        body = await self._read_body(request)
        options: dict[str, Any] = {}
        if body.strip():
            decoded = decode_body(body, request.content_type, "DeleteOptions")
            if not isinstance(decoded, dict):
                raise bad_request("DeleteOptions must be a JSON object")
            options = decoded
        grace = request.query.get("gracePeriodSeconds")
        if grace is not None:
            try:
                options["gracePeriodSeconds"] = int(grace)
            except ValueError:
                raise bad_request(f"invalid gracePeriodSeconds: {grace}") from None
        return options

    async def delete(
        self, request: web.Request, info: RequestInfo, rtype: ResourceType
    ) -> web.Response:
        options = await self._delete_options(request)
        namespace = info.namespace if rtype.namespaced else ""
        record = self.store.get(rtype.name, namespace, info.name)
        if record is None:
            raise not_found(rtype.name, info.name)
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != record.uid:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rtype.name} "{info.name}": Precondition '
                f"failed: UID in precondition: {preconditions['uid']}, UID in object meta: "
                f"{record.uid}",
                {"name": info.name, "kind": rtype.name},
            )
        if preconditions.get("resourceVersion") and str(preconditions["resourceVersion"]) != str(
            record.rv
        ):
            raise conflict(rtype.name, info.name)
        if request.query.get("dryRun"):
            return json_response(record.raw)
        return json_response(self._delete_record(rtype, record, options).raw)

    def _delete_record(
        self, rtype: ResourceType, record: Record, options: dict[str, Any]
    ) -> Record:
        """Delete one object, gracefully for bound running pods. Returns what to answer."""
        store = self.store
        if rtype.name == NAMESPACES:
            for pod in store.list(PODS, record.name):
                store.delete(PODS, pod.namespace, pod.name)
            self.runtime.events.delete_namespace(record.name)
        if rtype.name != PODS:
            deleted = store.delete(rtype.name, record.namespace, record.name)
            return deleted or record
        grace = options.get("gracePeriodSeconds")
        obj = record.object()
        if grace is None:
            grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds")
        if grace is None:
            grace = self.config.default_termination_grace_period_s
        grace = max(0, int(grace))
        immediate = grace == 0 or not record.node_name or record.phase in ("Succeeded", "Failed")
        finalizers = obj["metadata"].get("finalizers")
        if immediate and not finalizers:
            deleted = store.delete(PODS, record.namespace, record.name)
            return deleted or record
        if record.deleting:
            current_grace = obj["metadata"].get("deletionGracePeriodSeconds")
            if current_grace is not None and grace >= current_grace:
                return record  # a longer or equal grace never extends a running one
        deadline = datetime.now(UTC) + timedelta(seconds=grace if not immediate else 0)
        stamp = deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
        effective = grace if not immediate else 0

        def mark(pod: dict[str, Any]) -> None:
            pod["metadata"]["deletionTimestamp"] = stamp
            pod["metadata"]["deletionGracePeriodSeconds"] = effective

        marked = store.update(PODS, record.namespace, record.name, mark)
        if marked is None:
            return record
        store.schedule_deletion(record.namespace, record.name, record.uid, effective)
        return marked

    async def delete_collection(
        self, request: web.Request, info: RequestInfo, rtype: ResourceType
    ) -> web.Response:
        if rtype.name == NAMESPACES:
            raise method_not_allowed(request.method)
        options = await self._delete_options(request)
        selector = self._selector(request, rtype)
        records = self._matching(rtype, info.namespace, selector)
        results = [self._delete_record(rtype, r, options) for r in records]
        head = (
            b'{"kind":"'
            + rtype.list_kind.encode()
            + b'","apiVersion":"v1","metadata":'
            + _dumps({"resourceVersion": str(self.store.resource_version)})
            + b',"items":['
        )
        return json_response(head + b",".join(r.raw for r in results) + b"]}")


def _reason_of(response: web.StreamResponse) -> str:
    body = getattr(response, "body", None)
    if isinstance(body, bytes | bytearray):
        try:
            reason = orjson.loads(body).get("reason", "")
            return str(reason)
        except (orjson.JSONDecodeError, AttributeError):
            pass
    return str(response.status)


def _patch_rv(patch_doc: Any) -> str | None:
    if isinstance(patch_doc, dict):
        meta = patch_doc.get("metadata")
        if isinstance(meta, dict) and meta.get("resourceVersion"):
            return str(meta["resourceVersion"])
    return None


def _int_param(query: Any, name: str, default: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise bad_request(f"invalid {name}: {text!r}") from None


def _float_param(query: Any, name: str) -> float | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise bad_request(f"invalid {name}: {text!r}") from None
    return value if value > 0 else None


def _encode_continue(namespace: str, name: str, rv: int) -> str:
    data = _dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{namespace}/{name}"})
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def build_api_app(
    runtime: SimulatorRuntime, *, setup_extra: Callable[[web.Application], object] | None = None
) -> web.Application:
    """The aiohttp application: admin routes (if any) first, then the catch-all API handler."""
    app = web.Application(client_max_size=runtime.config.max_body_bytes + 1024)
    app[_RUNTIME_KEY] = runtime
    api = CoreApi(runtime)
    if setup_extra is not None:
        setup_extra(app)

    async def finish_requests(_: web.Application) -> None:
        api.closing.set()  # watches end their streams
        runtime.store.wake_all()
        await api.finish_in_flight(_SHUTDOWN_GRACE_S)

    app.on_shutdown.append(finish_requests)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app
