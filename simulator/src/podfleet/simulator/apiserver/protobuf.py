"""Just enough of Kubernetes' protobuf encoding to accept what kubectl's typed commands send.

`kubectl create namespace x` posts a protobuf-encoded Namespace (the `k8s\\0` envelope around a
`runtime.Unknown`). The simulator speaks JSON; it decodes the envelope and the object's
ObjectMeta (name, generateName, namespace, labels, annotations, finalizers), which is all a
Namespace carries that matters here. Other protobuf bodies are refused with 415.
"""

from __future__ import annotations

from typing import Any

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"
# Kinds whose protobuf body carries nothing the simulator needs beyond metadata.
METADATA_ONLY_KINDS = frozenset({"Namespace"})


class ProtobufError(ValueError):
    """The body is not protobuf the simulator can read."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message; length-delimited values stay bytes."""
    result: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            value = data[pos : pos + length]
            pos += length
        elif wire == 1:
            value = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        elif wire == 5:
            value = int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        result.append((number, value))
    return result


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string field")
    return value.decode()


def _string_map(entries: list[bytes]) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in entries:
        key = value = ""
        for number, item in fields(entry):
            if number == 1:
                key = _text(item)
            elif number == 2:
                value = _text(item)
        result[key] = value
    return result


def object_meta(data: bytes) -> dict[str, Any]:
    """ObjectMeta: the fields a client sets on create."""
    meta: dict[str, Any] = {}
    labels: list[bytes] = []
    annotations: list[bytes] = []
    finalizers: list[str] = []
    names = {1: "name", 2: "generateName", 3: "namespace"}
    for number, value in fields(data):
        if number in names and isinstance(value, bytes) and value:
            meta[names[number]] = _text(value)
        elif number == 11 and isinstance(value, bytes):
            labels.append(value)
        elif number == 12 and isinstance(value, bytes):
            annotations.append(value)
        elif number == 14:
            finalizers.append(_text(value))
    if labels:
        meta["labels"] = _string_map(labels)
    if annotations:
        meta["annotations"] = _string_map(annotations)
    if finalizers:
        meta["finalizers"] = finalizers
    return meta


_RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource",
                        6: "subresource", 7: "name"}
_NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _strings(data: bytes, names: dict[int, str]) -> dict[str, str]:
    return {names[n]: _text(v) for n, v in fields(data) if n in names and isinstance(v, bytes)}


def access_review_spec(raw: bytes) -> dict[str, Any]:
    """A SelfSubjectAccessReview's spec (resource or non-resource attributes)."""
    spec: dict[str, Any] = {}
    for number, value in fields(raw):
        if number != 2 or not isinstance(value, bytes):
            continue
        for sub, item in fields(value):
            if sub == 1 and isinstance(item, bytes):
                spec["resourceAttributes"] = _strings(item, _RESOURCE_ATTRIBUTES)
            elif sub == 2 and isinstance(item, bytes):
                spec["nonResourceAttributes"] = _strings(item, _NON_RESOURCE_ATTRIBUTES)
    return spec


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object of a metadata-only kind, as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf envelope")
    api_version = kind = ""
    raw = b""
    for number, value in fields(body[len(MAGIC) :]):
        if number == 1 and isinstance(value, bytes):
            for sub, item in fields(value):
                if sub == 1:
                    api_version = _text(item)
                elif sub == 2:
                    kind = _text(item)
        elif number == 2 and isinstance(value, bytes):
            raw = value
    if kind == "SelfSubjectAccessReview":  # what `kubectl auth can-i` posts
        return {"apiVersion": api_version, "kind": kind, "metadata": {},
                "spec": access_review_spec(raw)}
    if kind not in METADATA_ONLY_KINDS:
        raise ProtobufError(f"protobuf bodies of kind {kind or '?'} are not supported")
    obj: dict[str, Any] = {"apiVersion": api_version or "v1", "kind": kind, "metadata": {}}
    for number, value in fields(raw):
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = object_meta(value)
    return obj
