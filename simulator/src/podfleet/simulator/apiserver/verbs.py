"""The verbs every kind is served with: get, list, watch, create, update, patch (apply
included), delete and deletecollection, over the kind's store.

What they share is here: resourceVersions and conflicts, list chunking (`limit`/`continue`),
watches from a resourceVersion, label and field selectors, Table and PartialObjectMetadata
answers, field validation, dry runs, generateName, and the metadata an update may not change.
What differs between kinds (validation, defaults, admission, deletion, the store, printing)
comes from the kind's hooks (`kind.py`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
from collections.abc import Sequence
from typing import Any

import orjson
from aiohttp import web

from podfleet.simulator.apiserver import patch as patching
from podfleet.simulator.apiserver.body import read_body
from podfleet.simulator.apiserver.errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    invalid_object,
    method_not_allowed,
    not_found,
    required,
    unsupported_media_type,
)
from podfleet.simulator.apiserver.fieldvalidation import check_fields, directive
from podfleet.simulator.apiserver.kind import ApiContext, Kind
from podfleet.simulator.apiserver.metadata import (
    GET_KINDS,
    LIST_KINDS,
    WATCH_KINDS,
    metadata_target,
    partial_list,
    partial_object_bytes,
)
from podfleet.simulator.apiserver.queryparams import query_bool, query_int
from podfleet.simulator.apiserver.requestinfo import RequestInfo
from podfleet.simulator.apiserver.responses import JSON, dumps, json_response
from podfleet.simulator.apiserver.selectors import Selector, parse_selector
from podfleet.simulator.apiserver.tables import table, wants_table
from podfleet.simulator.apiserver.validation import decode_body, decode_object
from podfleet.simulator.apiserver.watch import WatchRequest, serve_watch
from podfleet.simulator.store import (
    NAMESPACES,
    AlreadyExistsError,
    ConflictError,
    ObjectStore,
    Record,
)

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_TOO_LARGE_WAIT_S = 3.0
#: Metadata the server owns: a create drops what the body says, an update keeps the old value.
_MANAGED_ON_UPDATE = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "namespace",
    "name",
    "generateName",
)


class ResourceVerbs:
    """The generic verbs, over any kind."""

    def __init__(self, context: ApiContext) -> None:
        self.context = context
        self.runtime = context.runtime
        self.config = context.runtime.config
        self.closing = context.closing

    # ---------------------------------------------------------------- reads

    def get(self, info: RequestInfo, kind: Kind, request: web.Request) -> web.Response:
        record = kind.store(self.runtime).get(kind.resource, info.namespace, info.name)
        if record is None:
            raise not_found(kind.resource, info.name)
        metadata = metadata_target(request.headers.get("Accept", ""), GET_KINDS)
        if metadata is not None:
            return json_response(partial_object_bytes(record.raw, metadata))
        if wants_table(request.headers.get("Accept", "")):
            body = table(
                kind.printer,
                [record],
                resource_version=str(record.rv),
                include_object=request.query.get("includeObject", "Metadata"),
            )
            return json_response(dumps(body))
        return json_response(record.raw)

    def _selector(self, request: web.Request, kind: Kind) -> Selector:
        query = request.query
        return parse_selector(
            query.get("labelSelector"), query.get("fieldSelector"), kind.field_selectors
        )

    def _matching(self, kind: Kind, namespace: str, selector: Selector) -> list[Record]:
        """Objects in `namespace` ("" = all) that match, sorted by namespace and name."""
        store = kind.store(self.runtime)
        name = selector.name_pin()
        pinned_ns = selector.namespace_pin()
        if pinned_ns is not None and namespace and pinned_ns != namespace:
            return []
        ns: str | None = namespace or pinned_ns
        if not kind.namespaced:
            ns = ""
        if name is not None and ns is not None:
            record = store.get(kind.resource, ns, name)
            records = [record] if record is not None else []
        else:
            records = store.list(kind.resource, ns)
        if selector.empty:
            return records
        matches = selector.matches
        return [r for r in records if matches(r)]

    def list(self, request: web.Request, info: RequestInfo, kind: Kind) -> web.Response:
        query = request.query
        selector = self._selector(request, kind)
        limit = query_int(query, "limit") or 0
        token = query.get("continue", "")
        store = kind.store(self.runtime)
        list_rv = store.resource_version
        records = self._matching(kind, info.namespace, selector)
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
                kind.printer,
                records,
                resource_version=str(list_rv),
                include_object=query.get("includeObject", "Metadata"),
                continue_token=next_token,
            )
            return json_response(dumps(body))
        return _list_response(kind, meta, records)

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
        self, request: web.Request, info: RequestInfo, kind: Kind
    ) -> web.StreamResponse:
        query = request.query
        selector = self._selector(request, kind)
        if info.name:
            by_name = parse_selector(None, f"metadata.name={info.name}", kind.field_selectors)
            selector = Selector(selector.labels, (*selector.fields, *by_name.fields))
        rv_text = query.get("resourceVersion", "")
        if rv_text not in ("", "0"):
            try:
                int(rv_text)
            except ValueError:
                raise bad_request(f'invalid resource version "{rv_text}"') from None
        store = kind.store(self.runtime)
        if rv_text not in ("", "0"):
            if self.runtime.faults is not None and self.runtime.faults.expire_watch():
                raise ApiError(410, "Expired", f"too old resource version: {rv_text} "
                               f"({store.resource_version})")
            await self._wait_for_version(store, int(rv_text))
        drop_after = self.runtime.faults.watch_drop_seconds() if self.runtime.faults else None
        spec = WatchRequest(
            resource=kind.resource,
            kind=kind.kind,
            namespace=info.namespace,
            selector=selector,
            resource_version=rv_text,
            timeout_s=_float_param(query, "timeoutSeconds"),
            bookmarks=query_bool(query, "allowWatchBookmarks"),
            send_initial_events=query_bool(query, "sendInitialEvents"),
            bookmark_interval_s=self.config.bookmark_interval_seconds,
            drop_after_s=drop_after,
            drop_after=self.runtime.faults.watch_drop_seconds if self.runtime.faults else None,
            table=kind.printer if wants_table(request.headers.get("Accept", "")) else None,
            as_metadata=metadata_target(request.headers.get("Accept", ""), WATCH_KINDS),
            include_object=query.get("includeObject", "Metadata"),
            api_version=kind.api_version,
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

    def _check_namespace(self, namespace: str) -> None:
        if self.runtime.store.get(NAMESPACES, "", namespace) is None:
            raise not_found(NAMESPACES, namespace)

    async def create(
        self, request: web.Request, info: RequestInfo, kind: Kind
    ) -> web.Response:
        body = await read_body(request, self.config.max_body_bytes)
        obj = decode_object(body, request.content_type, kind.kind, kind.api_version)
        return self._create_object(request, info, kind, obj)

    def _create_object(
        self, request: web.Request, info: RequestInfo, kind: Kind, obj: dict[str, Any]
    ) -> web.Response:
        warnings = check_fields(directive(request.query), kind.kind, obj)
        meta = obj["metadata"]
        if kind.namespaced:
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
            meta["name"] = self._generated_name(kind, info.namespace, generate)
        kind.prepare_create(obj, self.runtime)
        if kind.namespaced:
            self._check_namespace(info.namespace)
        kind.admit(obj, info.namespace, self.runtime)
        if request.query.get("dryRun"):
            return json_response(dumps(obj), status=201, warnings=warnings)
        try:
            record = kind.store(self.runtime).create(kind.resource, obj)
        except AlreadyExistsError:
            raise already_exists(kind.resource, meta["name"]) from None
        return json_response(record.raw, status=201, warnings=warnings)

    def _generated_name(self, kind: Kind, namespace: str, prefix: str) -> str:
        base = prefix[: 63 - 5] if len(prefix) > 58 else prefix
        for _ in range(8):
            name = base + "".join(random.choices(_GENERATE_ALPHABET, k=5))
            store = kind.store(self.runtime)
            if store.get(kind.resource, namespace if kind.namespaced else "", name) is None:
                return name
        return name

    async def update(
        self, request: web.Request, info: RequestInfo, kind: Kind
    ) -> web.Response:
        if not info.name:
            raise method_not_allowed(request.method)
        body = await read_body(request, self.config.max_body_bytes)
        namespace = info.namespace if kind.namespaced else ""
        record = kind.store(self.runtime).get(kind.resource, namespace, info.name)
        how = directive(request.query)
        if info.verb == "patch":
            content_type = request.content_type
            if content_type == patching.APPLY:
                return self.apply(request, info, kind, body, record)
            if content_type not in patching.SUPPORTED:
                raise unsupported_media_type(content_type, patching.SUPPORTED)
            if record is None:
                raise not_found(kind.resource, info.name)
            patch_doc = decode_body(body, JSON, kind.kind)
            old = record.object()
            new = patching.apply_patch(content_type, record.object(), patch_doc)
            if not isinstance(new, dict) or not isinstance(new.get("metadata"), dict):
                raise bad_request("the patched object is not a valid object")
            requested_rv = _patch_rv(patch_doc)
        else:
            new = decode_object(body, request.content_type, kind.kind, kind.api_version)
            if record is None:
                raise not_found(kind.resource, info.name)
            old = record.object()
            requested_rv = new["metadata"].get("resourceVersion") or None
            body_name = new["metadata"].get("name")
            if body_name and body_name != info.name:
                raise bad_request(
                    "the name of the object "
                    f"({body_name}) does not match the name on the URL ({info.name})"
                )
        warnings = check_fields(how, kind.kind, new)
        return self._store_update(info, kind, record, old, new, requested_rv, warnings)

    def apply(
        self,
        request: web.Request,
        info: RequestInfo,
        kind: Kind,
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
                kind.kind,
                info.name,
                [required("fieldManager", "is required for apply patch")],
            )
        applied = decode_object(body, "application/yaml", kind.kind, kind.api_version)
        name = applied["metadata"].get("name")
        if name and name != info.name:
            raise bad_request(
                f"the name of the object ({name}) does not match the name on the URL "
                f"({info.name})"
            )
        applied["metadata"]["name"] = info.name
        if record is None:
            if info.subresource:
                raise not_found(kind.resource, info.name)
            response = self._create_object(request, info, kind, applied)
            response.set_status(201)
            return response
        warnings = check_fields(directive(request.query), kind.kind, applied)
        old = record.object()
        new = patching.apply_patch(patching.STRATEGIC, record.object(), applied)
        requested_rv = applied["metadata"].get("resourceVersion") or None
        return self._store_update(info, kind, record, old, new, requested_rv, warnings)

    def _store_update(
        self,
        info: RequestInfo,
        kind: Kind,
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
                    kind.kind,
                    info.name,
                    [invalid("metadata.resourceVersion", requested_rv, "must be an integer")],
                ) from None
            if expected != record.rv:
                raise conflict(kind.resource, info.name)
        result = self._merge_update(kind, old, new, info.subresource)
        if result == old:
            return json_response(record.raw, warnings=warnings)  # a no-op makes no version
        try:
            stored = kind.store(self.runtime).replace(kind.resource, result, expected_rv=record.rv)
        except ConflictError:
            raise conflict(kind.resource, info.name) from None
        return json_response(stored.raw, warnings=warnings)

    def _merge_update(
        self, kind: Kind, old: dict[str, Any], new: dict[str, Any], subresource: str
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
                kind.kind,
                old_meta["name"],
                [invalid("metadata.name", new_name, "field is immutable")],
            )
        for managed in _MANAGED_ON_UPDATE:
            if managed in old_meta:
                meta[managed] = old_meta[managed]
            else:
                meta.pop(managed, None)
        meta["resourceVersion"] = old_meta.get("resourceVersion")
        new["kind"] = kind.kind
        new["apiVersion"] = kind.api_version
        kind.prepare_update(old, new)
        return new

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        body = await read_body(request, self.config.max_body_bytes)
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
        self, request: web.Request, info: RequestInfo, kind: Kind
    ) -> web.Response:
        options = await self._delete_options(request)
        namespace = info.namespace if kind.namespaced else ""
        record = kind.store(self.runtime).get(kind.resource, namespace, info.name)
        if record is None:
            raise not_found(kind.resource, info.name)
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != record.uid:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {kind.resource} "{info.name}": Precondition '
                f"failed: UID in precondition: {preconditions['uid']}, UID in object meta: "
                f"{record.uid}",
                {"name": info.name, "kind": kind.resource},
            )
        if preconditions.get("resourceVersion") and str(preconditions["resourceVersion"]) != str(
            record.rv
        ):
            raise conflict(kind.resource, info.name)
        if request.query.get("dryRun"):
            return json_response(record.raw)
        return json_response(kind.delete(record, options, self.runtime).raw)

    async def delete_collection(
        self, request: web.Request, info: RequestInfo, kind: Kind
    ) -> web.Response:
        options = await self._delete_options(request)
        selector = self._selector(request, kind)
        records = self._matching(kind, info.namespace, selector)
        results = [kind.delete(r, options, self.runtime) for r in records]
        meta = {"resourceVersion": str(kind.store(self.runtime).resource_version)}
        return _list_response(kind, meta, results)



def _patch_rv(patch_doc: Any) -> str | None:
    if isinstance(patch_doc, dict):
        meta = patch_doc.get("metadata")
        if isinstance(meta, dict) and meta.get("resourceVersion"):
            return str(meta["resourceVersion"])
    return None


def _list_response(kind: Kind, metadata: dict[str, Any], records: list[Record]) -> web.Response:
    """A list of `kind` holding `records`, their stored JSON spliced in as it is."""
    head = (
        b'{"kind":"'
        + kind.list_kind.encode()
        + b'","apiVersion":"'
        + kind.api_version.encode()
        + b'","metadata":'
        + dumps(metadata)
        + b',"items":['
    )
    return json_response(head + b",".join(r.raw for r in records) + b"]}")


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
    data = dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": f"{namespace}/{name}"})
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
