"""Classifying a request as the API server's request-info resolver does, and finding its kind.

Resource paths are `/api/v1/...` (the core group) and `/apis/{group}/{version}/...`, then
`[watch/][namespaces/{ns}/]{resource}[/{name}[/{subresource}]]`. Everything else
(`/version`, `/api`, `/apis`, `/apis/{group}`, `/openapi/...`) is a non-resource path: its
`RequestInfo.verb` is "".
"""

from __future__ import annotations

from collections.abc import Mapping

from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.queryparams import query_bool
from podfleet.simulator.apiserver.registry import KindRegistry
from podfleet.simulator.apiserver.requestinfo import RequestInfo

_NAMESPACES = "namespaces"
_VERB_OF_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch"}


def classify(
    method: str, path: str, query: Mapping[str, str], kinds: KindRegistry
) -> tuple[RequestInfo, Kind | None]:
    """The request's RequestInfo, and the kind it names (None if not served or not a resource)."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo("", "", "", "", "", path, method), None
    watch_prefix = rest[0] == "watch"
    if watch_prefix:
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == _NAMESPACES and not _is_namespace_subresource(
        kinds, group, version, rest[2]
    ):
        namespace = rest[1]
        rest = rest[2:]
    if not rest:
        return RequestInfo("", "", "", "", "", path, method, group, version), None
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if len(rest) > 3:
        info = RequestInfo("", resource, subresource, namespace, name, path, method, group, version)
        return info, None
    if method == "GET":
        watching = watch_prefix or query_bool(query, "watch")
        verb = "watch" if watching else ("get" if name else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERB_OF_METHOD.get(method, method.lower())
    info = RequestInfo(verb, resource, subresource, namespace, name, path, method, group, version)
    return info, kinds.get(group, version, resource)


def _is_namespace_subresource(kinds: KindRegistry, group: str, version: str, part: str) -> bool:
    """Whether `namespaces/{name}/{part}` names a subresource of a namespace, not a resource in it.

    A part the group version serves as a resource is a resource; so is one that is neither.
    """
    if kinds.get(group, version, part) is not None:
        return part == _NAMESPACES
    namespaces = kinds.get(group, version, _NAMESPACES)
    return namespaces is not None and namespaces.subresource(part) is not None
