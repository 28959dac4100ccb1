"""Task keys, signed launch messages and task events: validated at both ends of the wire."""

from __future__ import annotations

import pytest
from launch_requests import launch_request

from podfleet.contracts.events import EventKind, EventSource, InvalidEvent, TaskEvent
from podfleet.contracts.failure import Failure
from podfleet.contracts.keys import InvalidTaskKey, TaskKey
from podfleet.contracts.messages import (
    LAST_REASON_LIMIT,
    InvalidMessage,
    LaunchBatch,
    new_launch_id,
    open_envelope,
)
from podfleet.contracts.signing import MessageSigner
from podfleet.contracts.states import TaskState, may_transition

SIGNER = MessageSigner(b"k" * 32)


@pytest.mark.parametrize("parts", [
    ("", "t", "r", -1, 1), ("d d", "t", "r", -1, 1), ("d", "t", "", -1, 1),
    ("d", "t", "r", -2, 1), ("d", "t", "r", -1, -1), ("d", "t", "r\n", -1, 1),
    ("d" * 251, "t", "r", -1, 1), ("d", "t", "r", True, 1),
])
def test_invalid_task_key_parts_are_rejected(parts: tuple[object, ...]) -> None:
    with pytest.raises(InvalidTaskKey):
        TaskKey(*parts)  # type: ignore[arg-type]


def test_airflow_style_four_part_key_gets_default_map_index() -> None:
    assert TaskKey.coerce(("d", "t", "r", 3)) == TaskKey("d", "t", "r", -1, 3)


def test_sealed_batch_opens_to_the_same_requests() -> None:
    batch = LaunchBatch((launch_request(),
                         launch_request(deadline=99.0, executor_config={"image": "x"})))
    opened = open_envelope(batch.seal(SIGNER), SIGNER)
    assert opened == batch


def test_tampered_body_is_refused() -> None:
    envelope = LaunchBatch((launch_request(),)).seal(SIGNER)
    envelope["body"] = envelope["body"].replace("airflow", "curl evil")
    with pytest.raises(InvalidMessage, match="signature does not match"):
        open_envelope(envelope, SIGNER)


def test_message_signed_with_another_key_is_refused() -> None:
    envelope = LaunchBatch((launch_request(),)).seal(MessageSigner(b"x" * 32))
    with pytest.raises(InvalidMessage, match="signature"):
        open_envelope(envelope, SIGNER)


@pytest.mark.parametrize("envelope", [None, "text", {"v": 2}, {"v": 1, "body": 3},
                                      {"v": 1, "body": "{}", "sig": None}])
def test_malformed_envelopes_are_refused(envelope: object) -> None:
    with pytest.raises(InvalidMessage):
        open_envelope(envelope, SIGNER)


@pytest.mark.parametrize("bad", [{"command": []}, {"command": "echo hi"},
                                 {"command": ["ok", 3]}, {"launch_id": "nope"},
                                 {"queued_at": "yesterday"}, {"namespace": ""}])
def test_signed_but_invalid_request_is_refused(bad: dict[str, object]) -> None:
    wire = launch_request().to_wire() | bad
    batch_body = ('{"v":1,"batch_id":"b","sent_at":1.0,"requests":[' +
                  __import__("orjson").dumps(wire).decode() + "]}").encode()
    envelope = {"v": 1, "body": batch_body.decode(), "sig": SIGNER.sign(batch_body)}
    with pytest.raises(InvalidMessage):
        open_envelope(envelope, SIGNER)


def test_a_handed_back_request_carries_its_attempts_signed_with_the_rest() -> None:
    # Given a request the launcher tried twice and hands back to the broker
    again = launch_request().handed_back(2, "TooManyRequests (429): slow down")

    # When it is sealed and opened at the other end
    opened = open_envelope(LaunchBatch((again,)).seal(SIGNER), SIGNER).requests[0]

    # Then the next delivery goes on counting from there
    assert (opened.attempts, opened.last_reason) == (2, "TooManyRequests (429): slow down")


def test_a_fresh_request_has_no_attempts_on_the_wire() -> None:
    wire = launch_request().to_wire()
    assert "attempts" not in wire and "last_reason" not in wire


def test_a_carried_reason_is_shortened_to_its_limit() -> None:
    again = launch_request().handed_back(1, "x" * (LAST_REASON_LIMIT + 10))
    assert len(again.last_reason) == LAST_REASON_LIMIT


def test_a_request_cannot_be_built_with_negative_attempts() -> None:
    with pytest.raises(InvalidMessage, match="attempts"):
        launch_request(attempts=-1)


@pytest.mark.parametrize("bad", [{"attempts": -1}, {"attempts": "2"}, {"attempts": True},
                                 {"attempts": 1, "last_reason": 5}])
def test_signed_but_invalid_carried_attempts_are_refused(bad: dict[str, object]) -> None:
    wire = launch_request().to_wire() | bad
    batch_body = ('{"v":1,"batch_id":"b","sent_at":1.0,"requests":[' +
                  __import__("orjson").dumps(wire).decode() + "]}").encode()
    envelope = {"v": 1, "body": batch_body.decode(), "sig": SIGNER.sign(batch_body)}
    with pytest.raises(InvalidMessage, match=r"attempts|last_reason"):
        open_envelope(envelope, SIGNER)


def test_event_round_trips_through_stream_fields() -> None:
    event = TaskEvent(key=TaskKey("d", "t", "r", 2, 3), launch_id=new_launch_id(),
                      executor_id="e", kind=EventKind.STATE, source=EventSource.WATCHER,
                      state=TaskState.FAILED,
                      failure=Failure("OOMKilled", "ran out of memory", 137, "base", "bye"),
                      pod_name="p", namespace="default", pod_uid="u", occurred_at=12.25,
                      detail={"node": "n1"})
    wire = {k.encode(): v.encode() for k, v in event.to_fields().items()}
    assert TaskEvent.from_fields(wire) == event


def test_state_event_without_state_is_invalid() -> None:
    fields = TaskEvent(key=TaskKey("d", "t", "r"), launch_id="x", executor_id="e",
                       kind=EventKind.STATE, source=EventSource.LAUNCHER,
                       state=TaskState.RUNNING).to_fields() | {"state": ""}
    with pytest.raises(InvalidEvent):
        TaskEvent.from_fields(fields)


@pytest.mark.parametrize(("current", "new", "allowed"), [
    (TaskState.QUEUED, TaskState.LAUNCHED, True),
    (TaskState.LAUNCHED, TaskState.RUNNING, True),
    (TaskState.QUEUED, TaskState.SUCCESS, True),
    (TaskState.RUNNING, TaskState.LAUNCHED, False),
    (TaskState.RUNNING, TaskState.RUNNING, False),
    (TaskState.SUCCESS, TaskState.FAILED, False),
    (TaskState.FAILED, TaskState.RUNNING, False),
])
def test_state_machine_only_moves_forward(current: TaskState, new: TaskState,
                                          allowed: bool) -> None:
    assert may_transition(current, new) is allowed
