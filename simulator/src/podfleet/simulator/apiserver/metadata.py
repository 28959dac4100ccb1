"""Metadata-only answers, as `Accept: ...;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1` asks.

Clients that only need names, labels and owners (client-go's metadata informers, the Python
``DynamicClient`` as Airflow's pod adoption uses it) ask for ``PartialObjectMetadata`` (a get,
a watch's events) or ``PartialObjectMetadataList`` (a list), in ``meta.k8s.io`` ``v1`` or
``v1beta1``. The API server negotiates over the Accept header's alternatives in order: the
first one it can serve wins; plain ``application/json`` (or ``*/*``) means the full objects.
Nothing acceptable at all is 406 ``NotAcceptable``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from podfleet.simulator.apiserver.errors import ApiError

GROUP = "meta.k8s.io"
VERSIONS = ("v1", "v1beta1")
OBJECT = "PartialObjectMetadata"
LIST = "PartialObjectMetadataList"


@dataclass(frozen=True)
class MetadataTarget:
    """What to answer with: the kind's group version (``meta.k8s.io/v1``)."""

    version: str

    @property
    def api_version(self) -> str:
        return f"{GROUP}/{self.version}"


def _clauses(accept: str) -> Iterable[tuple[str, dict[str, str]]]:
    for clause in accept.split(","):
        media, *params = (part.strip() for part in clause.split(";"))
        values: dict[str, str] = {}
        for param in params:
            key, _, value = param.partition("=")
            values[key.strip()] = value.strip()
        yield media.lower(), values


def metadata_target(accept: str, kinds: tuple[str, ...]) -> MetadataTarget | None:
    """The metadata form the Accept header asks for, None for full objects (or a Table).

    ``kinds``: what the endpoint can answer as — a get ``(OBJECT,)``, a list ``(LIST,)``,
    a watch either (its events carry single objects).
    """
    if "PartialObjectMetadata" not in accept:
        return None  # the usual case, decided without parsing
    for media, params in _clauses(accept):
        kind = params.get("as")
        json_media = media in ("application/json", "application/*", "*/*")
        if kind is None:
            if json_media:
                return None
            continue
        if kind == "Table":
            return None  # tables are served by tables.py
        version = params.get("v", "")
        if json_media and kind in kinds and params.get("g") == GROUP and version in VERSIONS:
            return MetadataTarget(version)
    raise ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, "
        + ", ".join(f"application/json;as={kind};g={GROUP};v=v1" for kind in kinds),
    )


GET_KINDS = (OBJECT,)
LIST_KINDS = (LIST,)
WATCH_KINDS = (OBJECT, LIST)


def partial_object(raw: bytes, target: MetadataTarget) -> dict[str, Any]:
    """One object as ``PartialObjectMetadata``: its metadata only."""
    metadata = orjson.loads(raw).get("metadata", {})
    return {"kind": OBJECT, "apiVersion": target.api_version, "metadata": metadata}


def partial_object_bytes(raw: bytes, target: MetadataTarget) -> bytes:
    return orjson.dumps(partial_object(raw, target))


def partial_list(
    raws: Iterable[bytes], target: MetadataTarget, list_metadata: dict[str, Any]
) -> bytes:
    """A list as ``PartialObjectMetadataList`` (its resourceVersion and continue kept)."""
    return orjson.dumps(
        {
            "kind": LIST,
            "apiVersion": target.api_version,
            "metadata": list_metadata,
            "items": [partial_object(raw, target) for raw in raws],
        }
    )
