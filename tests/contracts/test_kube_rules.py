"""Kubernetes' naming and quantity rules, as the API server applies them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from podfleet.kube.rules import (
    dns1123_label_errors,
    dns1123_subdomain_errors,
    label_key_errors,
    label_value_errors,
    parse_quantity,
)


@pytest.mark.parametrize(("text", "value"), [
    ("500m", Decimal("0.5")), ("2Gi", Decimal(2**31)), ("1e3", Decimal(1000)),
    ("128974848", Decimal(128974848)), ("129M", Decimal(129_000_000)), (4, Decimal(4)),
    ("0.5", Decimal("0.5")), ("1Ki", Decimal(1024)),
])
def test_quantities_parse(text: str | int, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "5Xi", "1 Gi", "--1", "Gi"])
def test_bad_quantities_are_refused_with_the_servers_message(text: str) -> None:
    with pytest.raises(ValueError, match="quantities must match the regular expression"):
        parse_quantity(text)


@pytest.mark.parametrize(("name", "valid"), [
    ("my-pod", True), ("a.b.c", True), ("My-Pod", False), ("-x", False), ("x" * 253, True),
    ("x" * 254, False), ("", False),
])
def test_pod_names_are_dns1123_subdomains(name: str, valid: bool) -> None:
    assert (dns1123_subdomain_errors(name) == []) is valid


def test_labels_are_at_most_63_characters() -> None:
    assert dns1123_label_errors("a" * 63) == []
    assert "must be no more than 63 characters" in dns1123_label_errors("a" * 64)
    assert "must be no more than 63 characters" in label_value_errors("a" * 64)


@pytest.mark.parametrize(("key", "valid"), [
    ("app", True), ("example.com/app", True), ("a/b/c", False), ("/app", False),
    ("Example.com/app", False), ("app-", False), ("x" * 64, False),
])
def test_label_keys(key: str, valid: bool) -> None:
    assert (label_key_errors(key) == []) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("", True), ("v1.2_3", True), ("-v", False), ("v/", False), ("a b", False)])
def test_label_values(value: str, valid: bool) -> None:
    assert (label_value_errors(value) == []) is valid
