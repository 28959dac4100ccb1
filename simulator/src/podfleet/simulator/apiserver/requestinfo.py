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
    #: The plural resource named by the path (served or not); "" for non-resource paths
    #: (/version, /api, /apis/{group}, ...).
    resource: str
    subresource: str
    namespace: str
    name: str
    path: str
    method: str
    #: The API group ("" = core, also for non-resource paths) and version of the path.
    api_group: str = ""
    api_version: str = ""
