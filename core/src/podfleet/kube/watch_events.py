"""Pod watch events decoded to the fields podfleet reads, and nothing else.

A pod on the wire is mostly its spec (containers, env, volumes, tolerations) and managed
fields; the watcher reads a few dozen scalars of its metadata and status. Decoding every watch
line whole with a general JSON parser builds all of it as Python objects only to drop it, and
was the largest single cost of the worker pool (about a fifth of its CPU at 10,000 pods).
:func:`decode_watch_event` parses the line with msgspec against the schema below, which names
only what :func:`podfleet.contracts.judgement.judge`, :mod:`podfleet.contracts.pod_status`,
:func:`podfleet.contracts.naming.task_identity` and the watcher read: unknown keys are skipped
by the parser without being built.

The result has the shape the API sends (``{"type", "object"}`` with camelCase keys), a plain
dict with only the listed keys present, so the same functions judge a watched pod and a listed
one. An ERROR event's object (a ``Status``) and any line that does not fit the schema (a value
of an unexpected type) are decoded whole, as before, so odd input is handled exactly as the
general parser handled it.

To read a new pod field in the watcher, add it to the schema here; ``tests/kube`` checks that
the judgement of every sample pod is the same whole and decoded.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

import msgspec
import orjson


# Each level is a TypedDict with total=False: msgspec decodes it into a plain dict, leaves out
# keys the line does not have, and skips keys the schema does not name. Key names are the API's.
class ContainerStateWaiting(TypedDict, total=False):
    reason: str
    message: str


class ContainerStateRunning(TypedDict, total=False):
    startedAt: str


class ContainerStateTerminated(TypedDict, total=False):
    exitCode: int
    reason: str
    message: str
    startedAt: str
    finishedAt: str


class ContainerState(TypedDict, total=False):
    waiting: ContainerStateWaiting
    running: ContainerStateRunning
    terminated: ContainerStateTerminated


class ContainerStatus(TypedDict, total=False):
    name: str
    state: ContainerState


class PodCondition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str


class PodStatus(TypedDict, total=False):
    phase: str
    reason: str
    message: str
    conditions: list[PodCondition]
    containerStatuses: list[ContainerStatus]
    initContainerStatuses: list[ContainerStatus]


class Container(TypedDict, total=False):
    name: str


class PodSpec(TypedDict, total=False):
    nodeName: str
    containers: list[Container]


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    resourceVersion: str
    creationTimestamp: str
    deletionTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]


class WatchedPod(TypedDict, total=False):
    """The fields of a pod the watcher reads; nothing else of a watched pod is decoded."""

    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus


class WatchEvent(TypedDict):
    type: str
    object: WatchedPod


# One pass over the line: the envelope and the pod in it, unknown keys skipped unbuilt.
_DECODER = msgspec.json.Decoder(WatchEvent)
_POD_EVENTS = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK"})


def decode_watch_event(line: bytes) -> dict[str, Any]:
    """One watch line as ``{"type": ..., "object": ...}``.

    For ADDED, MODIFIED, DELETED and BOOKMARK the object holds only the fields of
    :data:`WatchedPod`; for anything else (ERROR's Status) it is the whole object. A line that
    is not JSON raises ``orjson.JSONDecodeError`` (a ``ValueError``), as before.
    """
    try:
        event = _DECODER.decode(line)
    except msgspec.DecodeError:
        event = None  # not the expected shape: the general parser decides, as it always did
    if event is not None and event["type"] in _POD_EVENTS:
        return cast(dict[str, Any], event)
    decoded: dict[str, Any] = orjson.loads(line)
    return decoded
