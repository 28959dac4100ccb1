"""How the API server reads query parameters, where that differs from a naive reading.

Kubernetes converts a boolean query parameter by one rule (apimachinery's
``Convert_Slice_string_To_bool``): absent, ``"0"`` and ``"false"`` in any case are false;
any other value, the empty string included, is true. ``kubernetes_asyncio`` sends
``watch=True``, so reading only ``"true"`` and ``"1"`` would make its watches lists.
An integer parameter (``limit``, ``tailLines``, …) goes through Go's ``strconv.ParseInt``,
whose error is the 400's message.
"""

from __future__ import annotations

from collections.abc import Mapping

from podfleet.simulator.apiserver.errors import bad_request


def query_bool(query: Mapping[str, str], name: str) -> bool:
    """The boolean parameter ``name`` as the API server reads it."""
    value = query.get(name)
    if value is None:
        return False
    return value != "0" and value.lower() != "false"


def query_int(query: Mapping[str, str], name: str) -> int | None:
    """The integer parameter ``name`` (None when absent or empty); 400 when it is not one."""
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise bad_request(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
