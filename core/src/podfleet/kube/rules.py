"""Kubernetes' own validation rules for names, labels and resource quantities.

The API server rejects an object whose name, label or quantity breaks these rules with a
422 ``Invalid``. podfleet checks the same rules at its own edge (submit, pod building) so a bad
task is refused with a clear message before it is queued, and the simulator uses them to answer
exactly as a real server would. Messages follow apimachinery's wording, so a user who has seen
a real API server's error recognises them.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_VALUE_MAX = 63
QUALIFIED_NAME_MAX = 63

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED_NAME + ")?"
_QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"

_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN)
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE)

DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{_DNS1123_LABEL}')"
)
DNS1123_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{_DNS1123_SUBDOMAIN}')"
)
QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    f"used for validation is '{_QUALIFIED_NAME}')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')"
)
QUANTITY_MESSAGE = f"quantities must match the regular expression '{_QUANTITY}'"


def _max_length_error(limit: int) -> str:
    return f"must be no more than {limit} characters"


def dns1123_label_errors(value: str) -> list[str]:
    """Errors for ``value`` as an RFC 1123 label (container names, namespaces); [] if valid."""
    errors: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errors.append(_max_length_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.fullmatch(value):
        errors.append(DNS1123_LABEL_MESSAGE)
    return errors


def dns1123_subdomain_errors(value: str) -> list[str]:
    """Errors for ``value`` as an RFC 1123 subdomain (pod names); [] if valid."""
    errors: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errors.append(_max_length_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errors.append(DNS1123_SUBDOMAIN_MESSAGE)
    return errors


def label_key_errors(key: str) -> list[str]:
    """Errors for ``key`` as a label or annotation key: ``[prefix/]name``; [] if valid."""
    parts = key.split("/")
    if len(parts) == 1:
        prefix, name = "", parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return ["prefix part must be non-empty"]
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  "
            f"or '123-abc', regex used for validation is '{_QUALIFIED_NAME}') with an optional "
            "DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    errors: list[str] = []
    if not name:
        errors.append("name part must be non-empty")
    else:
        if len(name) > QUALIFIED_NAME_MAX:
            errors.append("name part " + _max_length_error(QUALIFIED_NAME_MAX))
        if not _QUALIFIED_NAME_RE.fullmatch(name):
            errors.append(QUALIFIED_NAME_MESSAGE)
    if prefix:
        errors.extend("prefix part " + e for e in dns1123_subdomain_errors(prefix))
    return errors


def label_value_errors(value: str) -> list[str]:
    """Errors for ``value`` as a label value (≤ 63, alphanumeric ends); [] if valid."""
    errors: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errors.append(_max_length_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(LABEL_VALUE_MESSAGE)
    return errors


_BINARY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_SUFFIXES = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
_QUANTITY_RE = re.compile(_QUANTITY)
_EXPONENT_RE = re.compile(r"[eE]([-+]?[0-9]+)")


def parse_quantity(text: str | int | float) -> Decimal:
    """Parse a Kubernetes resource quantity (``"500m"``, ``"2Gi"``, ``"1e3"``, ``4``) to a Decimal.

    Raises ValueError with the API server's message when ``text`` is not a quantity.
    """
    if isinstance(text, bool):
        raise ValueError(QUANTITY_MESSAGE)
    if isinstance(text, int | float):
        return Decimal(str(text))
    match = _QUANTITY_RE.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(QUANTITY_MESSAGE)
    number, suffix = match.groups()
    try:
        value = Decimal(number)
    except InvalidOperation:
        raise ValueError(QUANTITY_MESSAGE) from None
    if suffix in _BINARY_SUFFIXES:
        return value * _BINARY_SUFFIXES[suffix]
    if suffix in _DECIMAL_SUFFIXES:
        return value * _DECIMAL_SUFFIXES[suffix]
    exponent = _EXPONENT_RE.fullmatch(suffix)
    if exponent is not None:
        return value.scaleb(int(exponent.group(1)))
    raise ValueError(QUANTITY_MESSAGE)
