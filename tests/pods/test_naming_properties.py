"""Pod names and label values always pass Kubernetes' own validation (property-based)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from podfleet.contracts.keys import TaskKey
from podfleet.contracts.naming import pod_name, safe_label_value, task_annotations, task_labels
from podfleet.kube.rules import (
    DNS1123_LABEL_MAX,
    LABEL_VALUE_MAX,
    dns1123_label_errors,
    label_key_errors,
    label_value_errors,
)

ids = st.from_regex(r"[\w.-]{1,250}", fullmatch=True)
run_ids = st.text(st.characters(min_codepoint=32, blacklist_categories=("Cs",)),
                  min_size=1, max_size=250).filter(lambda s: "\x7f" not in s)
launch_ids = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
keys = st.builds(TaskKey, ids, ids, run_ids, st.integers(-1, 10_000), st.integers(0, 100))
label_inputs = st.text(max_size=300)


@given(label_inputs)
def test_safe_label_values_are_valid_labels(raw: str) -> None:
    value = safe_label_value(raw)
    assert label_value_errors(value) == []
    assert len(value) <= LABEL_VALUE_MAX


@given(label_inputs)
def test_safe_label_values_are_deterministic_and_keep_valid_values(raw: str) -> None:
    assert safe_label_value(raw) == safe_label_value(raw)
    if not label_value_errors(raw):
        assert safe_label_value(raw) == raw


@given(label_inputs, label_inputs)
def test_distinct_label_inputs_stay_distinct(a: str, b: str) -> None:
    if a != b:
        assert safe_label_value(a) != safe_label_value(b)


@given(keys, launch_ids)
def test_pod_names_are_valid_dns1123_labels(key: TaskKey, launch_id: str) -> None:
    name = pod_name(key, launch_id)
    assert dns1123_label_errors(name) == []
    assert len(name) <= DNS1123_LABEL_MAX
    assert name == pod_name(key, launch_id)


@given(keys, launch_ids, launch_ids)
def test_each_launch_of_a_task_gets_its_own_pod_name(key: TaskKey, first: str,
                                                     second: str) -> None:
    if first != second:
        assert pod_name(key, first) != pod_name(key, second)


@given(keys, launch_ids, ids)
def test_task_labels_and_annotation_keys_are_always_accepted(key: TaskKey, launch_id: str,
                                                             executor_id: str) -> None:
    labels = task_labels(key, launch_id, executor_id)
    for label, value in labels.items():
        assert label_key_errors(label) == []
        assert label_value_errors(value) == [], (label, value)
    for annotation in task_annotations(key, launch_id, executor_id, 1.5):
        assert label_key_errors(annotation) == []
