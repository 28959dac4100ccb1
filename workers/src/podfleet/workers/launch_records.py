"""Launch records: a pod is created at most once per launch id, whatever Redis redelivers.

The pod name derives from the launch id, so a second create of a pod that still exists is a
409. But with the default delete policy a finished pod is gone within seconds, and a
redelivered message (its worker died before acking, Redis lost the ack) or a replayed signed
message would then create it again and run the task twice. So before any create the launcher
claims the launch in Redis (``SET NX``), and records how it ended:

- ``claimed``      a delivery is creating the pod (or died doing so: the next one retries);
- ``created:<uid>`` the API server accepted the pod: never create it again;
- ``failed``       the launch failed for good (invalid, retries spent, expired).

A delivery that finds ``created`` or ``failed`` creates nothing.

With several clusters a record also says *where*: ``claimed@<cluster>`` while a create may
have reached that cluster (set atomically just before each round of creates,
:meth:`LaunchRecords.pin`), ``created@<cluster>:<uid>`` once it made the pod. ``claimed``
without a cluster means no create was sent anywhere yet, or every one that was is known to
have made no pod (answered 429, a stale permit, or a GET that found nothing:
:meth:`LaunchRecords.unpin`). So a launch moves to another cluster only from a bare
``claimed``, and two deliveries of one launch never create it on two clusters. A record
without ``@`` (written before clusters) is the ``default`` cluster's. The watcher's deleter also
writes ``created:<uid>`` before it deletes a pod: a delivery that died with its create in
flight (sent, no answer read) left only ``claimed``, and must not make the pod again once it
has run and gone. The records expire after
:data:`RECORD_TTL_S`, far beyond any launch deadline (the executor gives every launch one).

Behind Redis Sentinel a failover promotes a replica that may lag its primary: writes the
primary acknowledged but had not passed on are gone, among them fetches of launch messages
(so those messages are delivered again) and the records that would stop them. So the deleter
writes its records with :meth:`LaunchRecords.finish_replicated`, which waits (``WAIT``) until a
connected replica holds them, and deletes no pod before: a pod that still exists answers 409,
and one that is gone has a record every promoted replica knows.
What is left open: a Redis that loses its data (no AOF) loses the records with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from podfleet.contracts.clusters import DEFAULT_CLUSTER
from podfleet.contracts.redis_keys import RedisKeys

RECORD_TTL_S = 7 * 24 * 3600
#: How long the deleter waits for a replica to hold its records before it tries again.
REPLICA_WAIT_S = 2.0
CLAIMED = "claimed"
CREATED = "created"
FAILED = "failed"


# Pin each launch to ARGV[1] unless it is finished or pinned elsewhere; returns, per key,
# "" when pinned here, else the record as it stands (the caller reads it).
_PIN = """
local wanted = 'claimed@' .. ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if value == false or value == 'claimed' or value == wanted then
    redis.call('SET', key, wanted, 'EX', ARGV[2])
    out[i] = ''
  else
    out[i] = value
  end
end
return out
"""
# Back to a bare claim, only where the record still pins the launch to ARGV[1].
_UNPIN = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == 'claimed@' .. ARGV[1] then
    redis.call('SET', key, 'claimed', 'EX', ARGV[2])
  end
end
return 0
"""


@dataclass(frozen=True, slots=True)
class PriorLaunch:
    """What an earlier delivery of the same launch left behind."""

    state: str  # CREATED or FAILED (CLAIMED: a create may have reached ``cluster``)
    pod_uid: str | None
    cluster: str = DEFAULT_CLUSTER


def parse_record(raw: Any) -> PriorLaunch | None:
    """A record's value as a PriorLaunch (None: no record, or a bare ``claimed``)."""
    text = raw.decode() if isinstance(raw, bytes) else (raw or "")
    head, _, uid = text.partition(":")
    state, at, cluster = head.partition("@")
    if state not in (CREATED, FAILED, CLAIMED) or (state == CLAIMED and not at):
        return None
    return PriorLaunch(state, uid or None, cluster or DEFAULT_CLUSTER)


def record_value(state: str, uid: str | None, cluster: str) -> str:
    """The value of a finished record (``default`` keeps today's form)."""
    head = state if cluster == DEFAULT_CLUSTER or state == FAILED else f"{state}@{cluster}"
    return f"{head}:{uid}" if state == CREATED and uid else head


class LaunchRecords:
    """Claims and outcomes of launches, in Redis, pipelined per message."""

    def __init__(self, redis_client: Any, keys: RedisKeys) -> None:
        self.redis = redis_client
        self.keys = keys
        self._pin = redis_client.register_script(_PIN)
        self._unpin = redis_client.register_script(_UNPIN)

    def claim(self, launch_ids: Iterable[str]) -> dict[str, PriorLaunch]:
        """Claim every launch not claimed yet; return those an earlier delivery finished,
        or pinned to a cluster (state CLAIMED: a create may have reached it).

        A launch claimed but not finished by someone else (that delivery died mid-create)
        may be created again on the cluster it is pinned to: a pod that exists answers 409.
        """
        ids = list(launch_ids)
        if not ids:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for launch_id in ids:
            pipe.set(self.keys.launch_record(launch_id), CLAIMED, nx=True, ex=RECORD_TTL_S)
        taken = [launch_id for launch_id, fresh in zip(ids, pipe.execute(), strict=True)
                 if not fresh]
        if not taken:
            return {}
        return self.finished(taken)

    def finished(self, launch_ids: Iterable[str]) -> dict[str, PriorLaunch]:
        """Those of ``launch_ids`` someone already created or failed, or pinned to a cluster
        (one MGET)."""
        ids = list(launch_ids)
        if not ids:
            return {}
        values = self.redis.mget([self.keys.launch_record(i) for i in ids])
        prior: dict[str, PriorLaunch] = {}
        for launch_id, raw in zip(ids, values, strict=True):
            found = parse_record(raw)
            if found is not None:
                prior[launch_id] = found
        return prior

    def pin(self, launch_ids: Iterable[str], cluster: str) -> dict[str, PriorLaunch]:
        """Pin each launch to ``cluster`` just before its create is sent there (atomically);
        return those that could not be: finished, or pinned to another cluster.

        Asked just before each round of creates: two deliveries of one message can run at
        once (a redelivery while the first is slow), and the first may have created a pod,
        seen it finish and deleted it, or sent its create to another cluster, while the
        second waited for its permits.
        """
        ids = list(launch_ids)
        if not ids:
            return {}
        values = self._pin(keys=[self.keys.launch_record(i) for i in ids],
                           args=[cluster, RECORD_TTL_S])
        prior: dict[str, PriorLaunch] = {}
        for launch_id, raw in zip(ids, values, strict=True):
            found = parse_record(raw) if raw else None
            if found is not None:
                prior[launch_id] = found
        return prior

    def unpin(self, launch_ids: Iterable[str], cluster: str) -> None:
        """Known: no create of these launches made a pod on ``cluster`` (answered 429, a
        stale permit, a GET that found none); they may go to another cluster."""
        ids = list(launch_ids)
        if ids:
            self._unpin(keys=[self.keys.launch_record(i) for i in ids],
                        args=[cluster, RECORD_TTL_S])

    def finish(self, outcomes: Iterable[tuple[str, str, str | None, str]]) -> None:
        """Record ``(launch_id, CREATED|FAILED, pod uid, cluster)`` outcomes, in one round
        trip."""
        pipe = self._finishing(outcomes)
        if pipe is not None:
            pipe.execute()

    def finish_replicated(self, outcomes: Iterable[tuple[str, str, str | None, str]],
                          timeout_s: float = REPLICA_WAIT_S) -> bool:
        """Record outcomes as :meth:`finish` does, then wait until a replica of this Redis
        holds them (when it has any connected); False if none did within ``timeout_s``.

        ``WAIT`` counts the writes of its own connection, so it goes in the same pipeline as
        the writes. A Redis without a connected replica (a plain one) answers at once.
        """
        pipe = self._finishing(outcomes)
        if pipe is None:
            return True
        replicas = self._connected_replicas()
        if replicas:
            pipe.execute_command("WAIT", 1, max(1, int(timeout_s * 1000)))
        answers = pipe.execute()
        return not replicas or int(answers[-1]) >= 1

    def _finishing(self, outcomes: Iterable[tuple[str, str, str | None, str]]) -> Any | None:
        """A pipeline holding the writes of ``outcomes``; None when there are none."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for launch_id, state, uid, cluster in outcomes:
            pipe.set(self.keys.launch_record(launch_id), record_value(state, uid, cluster),
                     ex=RECORD_TTL_S)
            count += 1
        return pipe if count else None

    def _connected_replicas(self) -> int:
        """Replicas connected to the primary now (``INFO replication``), read on every call:
        a replica that just attached (the old primary back after a failover) may be promoted
        next."""
        info = self.redis.info("replication")
        return int(info.get("connected_slaves", 0) or 0)
