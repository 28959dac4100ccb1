"""Conversion of the official client's model objects (``V1Pod``, ``V1Container``, …) to API JSON.

Users hand podfleet ``kubernetes.client.models`` objects in ``executor_config["pod_override"]``,
as they do with Airflow. podfleet turns them into the API's plain JSON (camelCase keys) once,
at submit, with the client's own ``sanitize_for_serialization``: it exists under the same name
in the 36.x (hand-written ``openapi_types``/``attribute_map`` models) and 37.x (pydantic models)
clients and yields the same JSON from both.
"""

from __future__ import annotations

import functools
from typing import Any

from kubernetes.client import ApiClient


@functools.lru_cache(maxsize=1)
def _serializer() -> Any:
    # An ApiClient without a pool request: sanitize_for_serialization needs no connection.
    return ApiClient()


def is_api_model(obj: Any) -> bool:
    """True for an instance of one of the official client's generated model classes."""
    return type(obj).__module__.startswith("kubernetes.client.models")


def model_to_json(obj: Any) -> Any:
    """``obj`` (a model, or lists/dicts containing models) as the API's JSON form."""
    return _serializer().sanitize_for_serialization(obj)


def json_to_model(data: Any, model: str) -> Any:
    """API JSON as an instance of the client's model class ``model`` (e.g. ``"V1Pod"``).

    Both client lines keep the dict-to-model step as the ApiClient's private
    ``__deserialize(data, klass)``; it is the one the client uses for every response.
    """
    return _serializer()._ApiClient__deserialize(data, model)
