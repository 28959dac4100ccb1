"""What a request asks for, in the API server's own terms (verb, resource, namespace, name).

Fault injection and the request counters key on these, as Kubernetes' audit and priority
machinery key on its RequestInfo.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class RequestInfo:
    """One API request, classified."""

    #: get, list, watch, create, update, patch, delete, deletecollection ("" for non-resource).
    verb: str
    #: pods, nodes, namespaces, events; "" for non-resource paths (/version, /api, ...).
    resource: str
    subresource: str
    namespace: str
    name: str
    path: str
    method: str
