"""Messages that do not verify or do not parse launch nothing and are dead-lettered."""

from __future__ import annotations

from launcher_support import Fleet, wait_until  # type: ignore[import-not-found]

from podfleet.contracts.messages import LaunchBatch
from podfleet.contracts.signing import MessageSigner


def test_forged_and_malformed_messages_launch_nothing_and_are_dead_lettered(
        fleet: Fleet) -> None:
    # Given a message signed with another key, one whose body is not JSON (but signed), one
    # with a bad field (signed), one that is not an envelope at all, and one valid message
    forger = MessageSigner(b"not-the-shared-secret-at-all")
    forged = LaunchBatch(requests=(fleet.request(0),)).seal(forger)
    signer = MessageSigner(fleet.env["PODFLEET_SIGNING_KEY"].encode())
    garbage = "{not json"
    not_json = {"v": 1, "body": garbage, "sig": signer.sign(garbage.encode())}
    bad_field = LaunchBatch(requests=(fleet.request(1),)).to_body().replace(
        b'"namespace":"default"', b'"namespace":""')
    malformed = {"v": 1, "body": bad_field.decode(), "sig": signer.sign(bad_field)}
    valid = fleet.request(2)
    fleet.send_envelopes([forged, not_json, malformed, "just a string"])  # type: ignore[list-item]
    fleet.send([valid])
    fleet.start_worker()

    # When the worker has handled all five
    wait_until(lambda: fleet.queue_sizes()["dead"] == 4, 30,
               f"dead letters: {fleet.queue_sizes()}\n{fleet.worker_logs()[-3000:]}")
    (event,) = fleet.wait_for_events(1)

    # Then only the valid message created a pod, and each refusal was logged with its reason
    assert event.launch_id == valid.launch_id
    assert len(fleet.pods()) == 1
    assert fleet.sim.admin.stats().creates.accepted == 1
    logs = fleet.worker_logs()
    assert "signature does not match" in logs
    assert "body is not JSON" in logs
    assert "namespace must be a non-empty string" in logs
    assert fleet.queue_sizes()["ready"] == 0
