"""OpenAPI v3 (`/openapi/v3`, `/openapi/v3/api/v1`) and v2 (`/openapi/v2`) documents.

kubectl reads them before `create`, `apply` and `replace`: it validates against them (or,
seeing `fieldValidation` among a PATCH operation's parameters, leaves validation to the
server), computes `apply`'s strategic merge patches from their `x-kubernetes-patch-*`
extensions, and `kubectl explain` prints them. Both documents are generated from the
simulator's own compact type table (`schema.py`) and the core/v1 kinds it serves (the
registry, `registry.py`), so they describe exactly what this server answers. Documents are
cached per registry and version.
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

import orjson

from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.registry import KindRegistry
from podfleet.simulator.apiserver.schema import KINDS, TYPES, FieldType, definition_name, parse_type

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
PATCH = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
V3_GROUP_PATH = "api/v1"
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)

_SCALARS: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "boolean": {"type": "boolean"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
    "number": {"type": "number", "format": "double"},
    "date-time": {"type": "string", "format": "date-time"},
    "int-or-string": {"type": "string", "format": "int-or-string"},
}


def _ref(prefix: str, name: str) -> dict[str, Any]:
    return {"$ref": prefix + name}


def _item_schema(item: str, prefix: str) -> dict[str, Any]:
    if item in _SCALARS:
        return dict(_SCALARS[item])
    if item == "quantity":
        return _ref(prefix, QUANTITY)
    if item == "object":
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return _ref(prefix, definition_name(item))


def _field_schema(field: FieldType, prefix: str) -> dict[str, Any]:
    item = _item_schema(field.item, prefix)
    if field.container == "map":
        return {"type": "object", "additionalProperties": item}
    if field.container != "list":
        return item
    schema: dict[str, Any] = {"type": "array", "items": item}
    if field.merge_key:
        schema["x-kubernetes-patch-merge-key"] = field.merge_key
        schema["x-kubernetes-patch-strategy"] = "merge"
        schema["x-kubernetes-list-type"] = "map"
        schema["x-kubernetes-list-map-keys"] = [field.merge_key]
    elif field.merge_set:
        schema["x-kubernetes-patch-strategy"] = "merge"
        schema["x-kubernetes-list-type"] = "set"
    else:
        schema["x-kubernetes-list-type"] = "atomic"
    return schema


def _gvk(kind: str) -> list[dict[str, str]]:
    return [{"group": "", "kind": kind, "version": "v1"}]


def definitions(prefix: str) -> dict[str, Any]:
    """Every type of `schema.TYPES` as an OpenAPI schema, refs starting with `prefix`."""
    result: dict[str, Any] = {}
    for type_name, fields in TYPES.items():
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                name: _field_schema(parse_type(text), prefix) for name, text in fields.items()
            },
        }
        if type_name == "Container":
            schema["required"] = ["name"]
        if type_name == "PodSpec":
            schema["required"] = ["containers"]
        if type_name in KINDS:
            schema["x-kubernetes-group-version-kind"] = _gvk(type_name)
        result[definition_name(type_name)] = schema
    result[QUANTITY] = {
        "description": "A fixed-point number: 128974848, 129e6, 129M, 123Mi, 100m, ...",
        "oneOf": [{"type": "string"}, {"type": "number"}],
    }
    result[PATCH] = {"type": "object", "description": "A patch of one of the accepted types."}
    return result


# --------------------------------------------------------------------- operations


def _param(name: str, kind: str = "string", where: str = "query") -> dict[str, Any]:
    param: dict[str, Any] = {"name": name, "in": where, "schema": {"type": kind}}
    if where == "path":
        param["required"] = True
    return param


_WRITE_PARAMS = [_param("dryRun"), _param("fieldManager"), _param("fieldValidation")]
_LIST_PARAMS = [
    _param("allowWatchBookmarks", "boolean"),
    _param("continue"),
    _param("fieldSelector"),
    _param("labelSelector"),
    _param("limit", "integer"),
    _param("resourceVersion"),
    _param("resourceVersionMatch"),
    _param("sendInitialEvents", "boolean"),
    _param("timeoutSeconds", "integer"),
    _param("watch", "boolean"),
]


def _operation(
    verb: str, op_id: str, kind: str, responses: dict[str, str], *, body: str | None = None,
    body_types: tuple[str, ...] = ("application/json",), params: list[dict[str, Any]] = (),  # type: ignore[assignment]
    subresource: str = "",
) -> dict[str, Any]:  # fmt: skip
    """One v3 operation: ids, parameters, the request body and responses (by definition)."""
    operation: dict[str, Any] = {
        "operationId": op_id,
        "tags": ["core_v1"],
        "parameters": list(params),
        "responses": {
            code: {
                "description": "OK" if code < "300" else "Unauthorized",
                "content": {"application/json": {"schema": _ref("", definition)}},
            }
            for code, definition in responses.items()
        },
        "x-kubernetes-action": verb,
        "x-kubernetes-group-version-kind": _gvk(kind)[0],
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {content: {"schema": _ref("", body)} for content in body_types},
        }
    if subresource:
        operation["x-kubernetes-subresource"] = subresource
    return operation


def _paths(rtype: Kind) -> dict[str, dict[str, Any]]:
    """The v3 path items of one resource: collection, item and subresources."""
    kind = rtype.kind
    obj = definition_name(kind)
    list_def = definition_name(kind + "List")
    status = definition_name("Status")
    scope = "Namespaced" if rtype.namespaced else ""
    base = "/api/v1/namespaces/{namespace}/" if rtype.namespaced else "/api/v1/"
    path_params = [_param("namespace", where="path")] if rtype.namespaced else []
    name_param = _param("name", where="path")
    verbs = set(rtype.verbs)
    paths: dict[str, dict[str, Any]] = {}

    collection: dict[str, Any] = {"parameters": [*path_params, _param("pretty")]}
    if "list" in verbs:
        collection["get"] = _operation(
            "list", f"listCoreV1{scope}{kind}", kind, {"200": list_def}, params=_LIST_PARAMS
        )
    if "create" in verbs:
        collection["post"] = _operation(
            "post", f"createCoreV1{scope}{kind}", kind,
            {"200": obj, "201": obj, "202": obj}, body=obj, params=_WRITE_PARAMS,
        )  # fmt: skip
    if "deletecollection" in verbs:
        collection["delete"] = _operation(
            "deletecollection", f"deleteCoreV1Collection{scope}{kind}", kind,
            {"200": status}, body=definition_name("DeleteOptions"), params=_LIST_PARAMS,
        )  # fmt: skip
    paths[base + rtype.resource] = collection
    if rtype.namespaced and "list" in verbs:
        paths[f"/api/v1/{rtype.resource}"] = {
            "get": _operation(
                "list", f"listCoreV1{kind}ForAllNamespaces", kind, {"200": list_def},
                params=_LIST_PARAMS,
            ),
            "parameters": [_param("pretty")],
        }  # fmt: skip

    def item(suffix: str, subresource: str) -> dict[str, Any]:
        noun = kind + ("Status" if subresource == "status" else "")
        entry: dict[str, Any] = {"parameters": [name_param, *path_params, _param("pretty")]}
        if "get" in verbs:
            entry["get"] = _operation(
                "get", f"readCoreV1{scope}{noun}", kind, {"200": obj}, subresource=subresource
            )
        if "update" in verbs:
            entry["put"] = _operation(
                "put", f"replaceCoreV1{scope}{noun}", kind, {"200": obj, "201": obj},
                body=obj, params=_WRITE_PARAMS, subresource=subresource,
            )  # fmt: skip
        if "patch" in verbs:
            entry["patch"] = _operation(
                "patch", f"patchCoreV1{scope}{noun}", kind, {"200": obj, "201": obj},
                body=PATCH, body_types=PATCH_TYPES, subresource=subresource,
                params=[*_WRITE_PARAMS, _param("force", "boolean")],
            )  # fmt: skip
        if "delete" in verbs and not subresource:
            entry["delete"] = _operation(
                "delete", f"deleteCoreV1{scope}{kind}", kind, {"200": obj, "202": obj},
                body=definition_name("DeleteOptions"),
                params=[_param("dryRun"), _param("gracePeriodSeconds", "integer"),
                        _param("propagationPolicy")],
            )  # fmt: skip
        return entry

    paths[f"{base}{rtype.resource}/{{name}}"] = item("", "")
    for sub in (subresource.name for subresource in rtype.subresources):
        if sub == "binding":
            paths[f"{base}{rtype.resource}/{{name}}/binding"] = {
                "parameters": [name_param, *path_params, _param("pretty")],
                "post": _operation(
                    "post", f"createCoreV1{scope}{kind}Binding", "Binding",
                    {"200": definition_name("Binding"), "201": definition_name("Binding")},
                    body=definition_name("Binding"), params=_WRITE_PARAMS,
                    subresource="binding",
                ),
            }  # fmt: skip
        elif sub == "status":
            paths[f"{base}{rtype.resource}/{{name}}/status"] = item("/status", "status")
    return paths


def _with_prefix(value: Any, prefix: str) -> Any:
    """Rewrite the bare `$ref`s of operations to `prefix` + name."""
    if isinstance(value, dict):
        return {
            key: (prefix + item if key == "$ref" and not item.startswith("#") else
                  _with_prefix(item, prefix))
            for key, item in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [_with_prefix(item, prefix) for item in value]
    return value


def _all_paths(kinds: KindRegistry, prefix: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for rtype in kinds.in_group_version("", "v1"):
        if rtype.kind in TYPES:  # a kind the schema does not describe has no paths here
            paths.update(_paths(rtype))
    rewritten: dict[str, Any] = _with_prefix(paths, prefix)
    return rewritten


# --------------------------------------------------------------------- documents


def _security() -> dict[str, Any]:
    return {"BearerToken": {"type": "apiKey", "name": "authorization", "in": "header",
                            "description": "Bearer Token authentication"}}  # fmt: skip


@cache
def v3_group_document(kinds: KindRegistry, git_version: str) -> bytes:
    """`GET /openapi/v3/api/v1`: the core group's paths and component schemas."""
    prefix = "#/components/schemas/"
    document = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": git_version},
        "paths": _all_paths(kinds, prefix),
        "components": {"schemas": definitions(prefix), "securitySchemes": _security()},
        "security": [{"BearerToken": []}],
    }
    return orjson.dumps(document)


@cache
def v3_root_document(kinds: KindRegistry, git_version: str) -> bytes:
    """`GET /openapi/v3`: where each group version's document is, with a content hash."""
    digest = hashlib.sha512(v3_group_document(kinds, git_version)).hexdigest().upper()
    return orjson.dumps(
        {"paths": {V3_GROUP_PATH: {"serverRelativeURL": f"/openapi/v3/api/v1?hash={digest}"}}}
    )


def _v2_operation(operation: dict[str, Any]) -> dict[str, Any]:
    """A v3 operation in swagger 2.0 form (the body is a parameter, schemas inline)."""
    result = {k: v for k, v in operation.items() if k not in ("requestBody", "responses")}
    result["parameters"] = [
        {"name": p["name"], "in": p["in"], "type": p["schema"]["type"], "uniqueItems": True}
        for p in operation.get("parameters", [])
    ]
    body = operation.get("requestBody")
    if body is not None:
        content = body["content"]
        result["consumes"] = list(content)
        schema = next(iter(content.values()))["schema"]
        result["parameters"].append(
            {"name": "body", "in": "body", "required": True, "schema": schema}
        )
    result["produces"] = ["application/json"]
    result["schemes"] = ["https"]
    result["responses"] = {
        code: {"description": response["description"],
               "schema": response["content"]["application/json"]["schema"]}
        for code, response in operation["responses"].items()
    }  # fmt: skip
    return result


@cache
def v2_document(kinds: KindRegistry, git_version: str) -> bytes:
    """`GET /openapi/v2` (JSON): the same paths and definitions in swagger 2.0 form."""
    prefix = "#/definitions/"
    paths: dict[str, Any] = {}
    for path, item in _all_paths(kinds, prefix).items():
        converted: dict[str, Any] = {}
        for key, value in item.items():
            if key == "parameters":
                converted[key] = [
                    {"name": p["name"], "in": p["in"], "type": p["schema"]["type"],
                     "uniqueItems": True, **({"required": True} if p["in"] == "path" else {})}
                    for p in value
                ]  # fmt: skip
            else:
                converted[key] = _v2_operation(value)
        paths[path] = converted
    document = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": git_version},
        "paths": paths,
        "definitions": definitions(prefix),
        "securityDefinitions": _security(),
        "security": [{"BearerToken": []}],
    }
    return orjson.dumps(document)
