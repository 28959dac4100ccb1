"""Launch messages: what the executor enqueues and the launcher pool consumes.

A message carries a batch of launch requests (one per task try) so that the broker's per-message
cost is paid once per batch. On the wire it is an envelope ``{"v": 1, "body": "<json>", "sig":
"<hmac>"}``; :func:`open_envelope` verifies the signature, then validates every field, and
raises :class:`InvalidMessage` with the reason for anything it refuses.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from podfleet.contracts.clusters import DEFAULT_CLUSTER, cluster_name_problem
from podfleet.contracts.keys import InvalidTaskKey, TaskKey
from podfleet.contracts.signing import MessageSigner, SignatureError

WIRE_VERSION = 1
# Longest ``last_reason`` a request may carry (an API server's message can be long).
LAST_REASON_LIMIT = 1024


class InvalidMessage(ValueError):
    """A message that does not verify or does not parse; it must launch nothing."""


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """One task try to launch as one pod.

    ``launch_id`` is assigned once when the try is queued and names the pod, so a redelivered
    request creates nothing new (the API answers 409). ``deadline`` (epoch seconds) bounds how
    late the pod may still be created; past it the launcher fails the task as "expired".
    ``priority`` (Airflow's ``priority_weight``): within a message, higher goes first. A
    message without it (an older executor) reads as 0.

    ``attempts`` and ``last_reason`` are what earlier create attempts came to when the
    launcher handed the request back to the broker for a later try: they travel signed with
    the rest, so the next delivery goes on counting towards ``max_attempts`` rather than
    starting over. A request from the executor has none (0 and ""), and its wire form leaves
    them out. Both are validated on construction and when read from the wire.

    ``clusters`` are the clusters the task may run on, in order of preference
    (``podfleet.contracts.clusters.eligible_clusters``, computed at submit); the launcher
    places the pod on one of them. A message without them (written before clusters
    existed) means :data:`~podfleet.contracts.clusters.DEFAULT_CLUSTER`.
    """

    key: TaskKey
    launch_id: str
    command: tuple[str, ...]
    executor_id: str
    namespace: str
    queued_at: float
    queue: str | None = None
    executor_config: dict[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    priority: int = 0
    attempts: int = 0
    last_reason: str = ""
    clusters: tuple[str, ...] = (DEFAULT_CLUSTER,)

    def __post_init__(self) -> None:
        problem = (carried_attempts_problem(self.attempts, self.last_reason)
                   or clusters_problem(self.clusters))
        if problem:
            raise InvalidMessage(problem)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "key": self.key.as_list(),
            "launch_id": self.launch_id,
            "command": list(self.command),
            "executor_id": self.executor_id,
            "namespace": self.namespace,
            "queued_at": self.queued_at,
            "queue": self.queue,
            "executor_config": self.executor_config,
            "deadline": self.deadline,
            "priority": self.priority,
            "clusters": list(self.clusters),
        }
        if self.attempts or self.last_reason:
            wire["attempts"] = self.attempts
            wire["last_reason"] = self.last_reason
        return wire

    def handed_back(self, attempts: int, last_reason: str) -> LaunchRequest:
        """This request with the attempts made so far, to send again later (the reason is
        shortened to :data:`LAST_REASON_LIMIT`)."""
        return dataclasses.replace(self, attempts=attempts,
                                   last_reason=last_reason[:LAST_REASON_LIMIT])

    @classmethod
    def from_wire(cls, data: Any) -> LaunchRequest:
        if not isinstance(data, dict):
            raise InvalidMessage("a launch request must be an object")
        try:
            key = TaskKey.from_list(data.get("key"))
        except InvalidTaskKey as exc:
            raise InvalidMessage(str(exc)) from None
        launch_id = data.get("launch_id")
        if not isinstance(launch_id, str) or not is_launch_id(launch_id):
            raise InvalidMessage("launch_id must be 32 lowercase hex characters")
        command = data.get("command")
        if command_problem(command):
            raise InvalidMessage(f"command: {command_problem(command)}")
        for name in ("executor_id", "namespace"):
            if not isinstance(data.get(name), str) or not data[name]:
                raise InvalidMessage(f"{name} must be a non-empty string")
        queued_at = data.get("queued_at")
        if not isinstance(queued_at, int | float) or isinstance(queued_at, bool):
            raise InvalidMessage("queued_at must be a number (epoch seconds)")
        deadline = data.get("deadline")
        if deadline is not None and (
            not isinstance(deadline, int | float) or isinstance(deadline, bool)
        ):
            raise InvalidMessage("deadline must be a number (epoch seconds) or null")
        queue = data.get("queue")
        if queue is not None and not isinstance(queue, str):
            raise InvalidMessage("queue must be a string or null")
        executor_config = data.get("executor_config") or {}
        if not isinstance(executor_config, dict):
            raise InvalidMessage("executor_config must be an object")
        priority = data.get("priority", 0)
        if not isinstance(priority, int) or isinstance(priority, bool):
            raise InvalidMessage("priority must be an integer")
        attempts = data.get("attempts", 0)
        last_reason = data.get("last_reason", "")
        clusters = data.get("clusters", [DEFAULT_CLUSTER])
        if not isinstance(clusters, list):
            raise InvalidMessage("clusters must be a list of cluster names")
        return cls(
            key=key,
            launch_id=launch_id,
            command=tuple(command),  # type: ignore[arg-type]
            executor_id=data["executor_id"],
            namespace=data["namespace"],
            queued_at=float(queued_at),
            queue=queue,
            executor_config=executor_config,
            deadline=None if deadline is None else float(deadline),
            priority=priority,
            attempts=attempts,
            last_reason=last_reason,
            clusters=tuple(clusters),
        )


@dataclass(frozen=True, slots=True)
class LaunchBatch:
    """A batch of launch requests travelling as one broker message."""

    requests: tuple[LaunchRequest, ...]
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent_at: float = field(default_factory=time.time)

    def to_body(self) -> bytes:
        return orjson.dumps(
            {
                "v": WIRE_VERSION,
                "batch_id": self.batch_id,
                "sent_at": self.sent_at,
                "requests": [r.to_wire() for r in self.requests],
            }
        )

    def seal(self, signer: MessageSigner) -> dict[str, Any]:
        """The signed envelope to put in the broker message's arguments."""
        body = self.to_body()
        return {"v": WIRE_VERSION, "body": body.decode(), "sig": signer.sign(body)}


def open_envelope(envelope: Any, signer: MessageSigner) -> LaunchBatch:
    """Verify and parse an envelope made by :meth:`LaunchBatch.seal`.

    Raises InvalidMessage (naming the reason) for a bad signature, a wire version this code does
    not speak, or any malformed field. Nothing is parsed before the signature verifies.
    """
    if not isinstance(envelope, dict):
        raise InvalidMessage("envelope must be an object")
    if envelope.get("v") != WIRE_VERSION:
        raise InvalidMessage(f"unsupported envelope version {envelope.get('v')!r}")
    body = envelope.get("body")
    if not isinstance(body, str):
        raise InvalidMessage("envelope body must be a string")
    raw = body.encode()
    try:
        signer.verify(raw, envelope.get("sig"))
    except SignatureError as exc:
        raise InvalidMessage(str(exc)) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidMessage(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != WIRE_VERSION:
        raise InvalidMessage("body must be an object with v=1")
    requests = data.get("requests")
    if not isinstance(requests, list) or not requests:
        raise InvalidMessage("requests must be a non-empty list")
    batch_id = data.get("batch_id")
    sent_at = data.get("sent_at")
    if not isinstance(batch_id, str) or not isinstance(sent_at, int | float):
        raise InvalidMessage("batch_id must be a string and sent_at a number")
    return LaunchBatch(
        requests=tuple(LaunchRequest.from_wire(r) for r in requests),
        batch_id=batch_id,
        sent_at=float(sent_at),
    )


def new_launch_id() -> str:
    """A fresh launch id: 32 lowercase hex characters, valid as a label value."""
    return uuid.uuid4().hex


def is_launch_id(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def carried_attempts_problem(attempts: Any, last_reason: Any) -> str | None:
    """Why ``attempts``/``last_reason`` are not a valid carry-over, or None."""
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
        return "attempts must be a non-negative integer"
    if not isinstance(last_reason, str) or len(last_reason) > LAST_REASON_LIMIT:
        return f"last_reason must be a string of at most {LAST_REASON_LIMIT} characters"
    return None


def clusters_problem(clusters: Any) -> str | None:
    """Why ``clusters`` is not a request's eligible clusters (a non-empty tuple of distinct
    cluster names), or None."""
    if not isinstance(clusters, tuple) or not clusters:
        return "clusters must be a non-empty list of cluster names"
    for name in clusters:
        problem = cluster_name_problem(name)
        if problem:
            return f"clusters: {problem}"
    if len(set(clusters)) != len(clusters):
        return "clusters must not name a cluster twice"
    return None


def command_problem(command: Any) -> str | None:
    """Why ``command`` is not a valid task command (a non-empty list of strings), or None."""
    if isinstance(command, str) or not isinstance(command, list | tuple):
        return "must be a list of strings, not " + type(command).__name__
    if not command:
        return "must not be empty"
    for i, part in enumerate(command):
        if not isinstance(part, str):
            return f"item {i} must be a string, not {type(part).__name__}"
        if "\x00" in part:
            return f"item {i} contains a NUL character"
    return None
