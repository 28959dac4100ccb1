"""The three patch formats the API server accepts for built-in types.

- JSON merge patch (RFC 7386): maps merge, `null` deletes, lists are replaced.
- Strategic merge patch: a merge patch whose lists of named things (containers, env, ports,
  conditions, ...) merge by their key instead of being replaced, with `$patch: replace|delete`
  directives. This covers what kubectl and controllers send for pods; it does not read the
  OpenAPI patch metadata.
- JSON patch (RFC 6902): add, remove, replace, move, copy, test.
"""

from __future__ import annotations

import copy
from typing import Any

from podfleet.simulator.apiserver.errors import ApiError, bad_request

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
SUPPORTED = [JSON_PATCH, MERGE, STRATEGIC]

# Lists merged by a key in a strategic merge patch (field name → merge key).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "conditions": "type",
    "containerStatuses": "name",
    "initContainerStatuses": "name",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "addresses": "type",
    "taints": "key",
    "ownerReferences": "uid",
}
# Lists of scalars merged as sets.
_SET_LISTS = frozenset({"finalizers"})


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch and return the result."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any, field: str = "") -> Any:
    """Apply a strategic merge patch (keyed list merging for known fields)."""
    if isinstance(patch, list):
        return _strategic_list(target, patch, field)
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        merged = strategic_merge_patch(result.get(key), value, key)
        if merged is None and isinstance(value, dict) and value.get("$patch") == "delete":
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _strategic_list(target: Any, patch: list[Any], field: str) -> Any:
    key = _MERGE_KEYS.get(field)
    current = list(target) if isinstance(target, list) else []
    if field in _SET_LISTS:
        return current + [v for v in patch if v not in current]
    if key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy(patch)
    for item in patch:
        if item.get("$patch") == "replace":
            return [copy.deepcopy(i) for i in patch if i.get("$patch") != "replace"]
    for item in patch:
        wanted = item.get(key)
        index = next(
            (i for i, c in enumerate(current) if isinstance(c, dict) and c.get(key) == wanted),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                current.pop(index)
            continue
        if index is None:
            current.append(strategic_merge_patch({}, item))
        else:
            current[index] = strategic_merge_patch(current[index], item)
    return current


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict):
            if part not in doc:
                raise ApiError(422, "Invalid", f"jsonpatch: path does not exist: /{part}")
            doc = doc[part]
        elif isinstance(doc, list):
            try:
                doc = doc[int(part)]
            except (ValueError, IndexError):
                raise ApiError(422, "Invalid", f"jsonpatch: invalid index {part}") from None
        else:
            raise ApiError(422, "Invalid", f"jsonpatch: cannot walk into {part}")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        else:
            try:
                parent.insert(int(last), value)
            except ValueError:
                raise ApiError(422, "Invalid", f"jsonpatch: invalid index {last}") from None
    else:
        raise ApiError(422, "Invalid", f"jsonpatch: cannot add at {last}")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise ApiError(422, "Invalid", "jsonpatch: cannot remove the whole document")
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    try:
        if isinstance(parent, dict):
            return parent.pop(last)
        if isinstance(parent, list):
            return parent.pop(int(last))
    except (KeyError, ValueError, IndexError):
        pass
    raise ApiError(422, "Invalid", f"jsonpatch: path does not exist: /{'/'.join(parts)}")


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch and return the result."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise bad_request("json patch operation must be an object with an 'op'")
        op = operation["op"]
        parts = _pointer(str(operation.get("path", "")))
        if op == "add":
            doc = _add(doc, parts, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(doc, parts)
        elif op == "replace":
            _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            source = _pointer(str(operation.get("from", "")))
            value = _remove(doc, source) if op == "move" else copy.deepcopy(_walk(doc, source))
            doc = _add(doc, parts, value)
        elif op == "test":
            if _walk(doc, parts) != operation.get("value"):
                raise ApiError(422, "Invalid", "jsonpatch: test operation failed")
        else:
            raise bad_request(f"unexpected json patch operation: {op}")
    return doc


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> Any:
    """Dispatch on the request's Content-Type."""
    if content_type == JSON_PATCH:
        return json_patch(target, patch)
    if not isinstance(patch, dict):
        raise bad_request("patch body must be a JSON object")
    if content_type == MERGE:
        return merge_patch(target, patch)
    return strategic_merge_patch(target, patch)
