"""How ``podfleet logs`` reads TASK: the key form, a launch id or pod name, and bad input."""

from __future__ import annotations

import pytest

from podfleet.executor.cli.logs import BadTaskReference, parse_reference


@pytest.mark.parametrize(("text", "expected"), [
    ("etl/load/run-1", ("etl", "load", "run-1", -1, None)),
    ("etl/load/run-1/4", ("etl", "load", "run-1", 4, None)),
    ("etl/load/run-1/-1/2", ("etl", "load", "run-1", -1, 2)),
    ("etl/load/manual__2026-01-01T00:00:00+00:00",
     ("etl", "load", "manual__2026-01-01T00:00:00+00:00", -1, None)),
    ("3f2a9c0d4e5b6a7c8d9e0f1a2b3c4d5e", "3f2a9c0d4e5b6a7c8d9e0f1a2b3c4d5e"),
    ("etl-load-0a1b2c3d4e5f", "etl-load-0a1b2c3d4e5f"),
])
def test_accepted_forms(text: str, expected: object) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("", "TASK is empty"),
    ("etl/load", "must be dag_id/task_id/run_id"),
    ("etl//run-1", "must be dag_id/task_id/run_id"),
    ("etl/load/run/with/slashes/1/2", "run id containing '/'"),
    ("etl/load/run-1/x", "map_index must be an integer, got 'x'"),
    ("etl/load/run-1/-2", "map_index must be ≥ -1"),
    ("etl/load/run-1/0/-1", "try must be ≥ 0"),
])
def test_rejected_forms_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(BadTaskReference, match=message):
        parse_reference(text)
