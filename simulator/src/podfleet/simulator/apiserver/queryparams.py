"""How the API server reads query parameters, where that differs from a naive reading.

Kubernetes converts a boolean query parameter by one rule (apimachinery's
``Convert_Slice_string_To_bool``): absent, ``"0"`` and ``"false"`` in any case are false;
any other value, the empty string included, is true. ``kubernetes_asyncio`` sends
``watch=True``, so reading only ``"true"`` and ``"1"`` would make its watches lists.
"""

from __future__ import annotations

from collections.abc import Mapping


def query_bool(query: Mapping[str, str], name: str) -> bool:
    """The boolean parameter ``name`` as the API server reads it."""
    value = query.get(name)
    if value is None:
        return False
    return value != "0" and value.lower() != "false"
