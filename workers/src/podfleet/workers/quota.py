"""Quota-aware waiting: launches park while their namespace's ResourceQuota is full.

A create refused with 403 ``exceeded quota`` is not a failed attempt: the quota frees as the
namespace's pods end. The launch is *parked*: it joins the namespace's waiting list in Redis
(:meth:`RedisKeys.quota_waiting`, a sorted set scored by minus the priority; each member
starts with the launch's queue time, so equal priorities go oldest first) and its message is
handed back to the broker, delayed by ``PODFLEET_QUOTA_POLL_SECONDS``. Before creating
anything in a namespace that has waiters, the launcher asks the :class:`QuotaGate`, which
walks the list in order against the room its quotas have (``status.hard − status.used``,
read at most twice per poll interval per process and namespace) and lets in only the launches
whose turn it is and that fit; a launch of the message that is not on the list yet joins it
first, so a fresh launch does not overtake those already waiting. The API server stays the
judge: a gate that let in too much (another process's creates since its read) meets the 403
and parks again, with no attempt counted.

A pod that asks more than a quota's ``hard`` for some resource can never be admitted: it
fails at once (:meth:`QuotaGate.never_fits`). Members carry their launch deadline and are
dropped once it passed, so a lost message does not hold its place for ever.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from podfleet.contracts.messages import LaunchRequest
from podfleet.contracts.redis_keys import RedisKeys
from podfleet.kube.client import KubeClient
from podfleet.kube.errors import KubeError, Unreachable
from podfleet.kube.rules import parse_quantity
from podfleet.monitoring.metrics import QUOTA_PARKED, QUOTA_WAITS

logger = logging.getLogger("podfleet.workers.quota")

#: Waiters the gate reads per namespace and check: those further back wait for a later look.
WAITERS_READ = 2000

#: Quota resource name → index into a pod's ask vector (pods, requests cpu/memory, limits).
_PODS, _REQ_CPU, _REQ_MEM, _LIM_CPU, _LIM_MEM = range(5)
MEASURED: dict[str, int] = {
    "pods": _PODS,
    "count/pods": _PODS,
    "cpu": _REQ_CPU,
    "requests.cpu": _REQ_CPU,
    "memory": _REQ_MEM,
    "requests.memory": _REQ_MEM,
    "limits.cpu": _LIM_CPU,
    "limits.memory": _LIM_MEM,
}

_EXCEEDED = re.compile(
    r"exceeded quota: (?P<quota>[^,\s]+), requested: (?P<requested>\S+), "
    r"used: (?P<used>\S+), limited: (?P<limited>\S+)$")


class UnexpectedQuotaMessage(ValueError):
    """A 403 ``exceeded quota`` whose message is not in the API server's usual form."""


@dataclass(frozen=True, slots=True)
class ExceededQuota:
    """What a 403 ``exceeded quota`` says: the quota's name and the resources it refused."""

    quota: str
    requested: dict[str, str]
    used: dict[str, str]
    limited: dict[str, str]


def parse_exceeded(message: str) -> ExceededQuota:
    """Read ``exceeded quota: q, requested: r=1,…, used: …, limited: …`` out of ``message``.

    Raises :class:`UnexpectedQuotaMessage` (one line, naming what was wrong) for any other
    shape; the caller still parks the launch, with the message as it came.
    """
    at = message.find("exceeded quota: ")
    match = _EXCEEDED.search(message[at:].strip()) if at >= 0 else None
    if match is None:
        raise UnexpectedQuotaMessage(
            f"quota message in an unexpected form: {one_line(message)!r}")
    try:
        return ExceededQuota(match["quota"], _resource_list(match["requested"]),
                             _resource_list(match["used"]), _resource_list(match["limited"]))
    except ValueError as exc:
        raise UnexpectedQuotaMessage(
            f"quota message in an unexpected form ({exc}): {one_line(message)!r}") from None


def _resource_list(text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{part!r} is not resource=quantity")
        pairs[name] = value
    return pairs


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"


def _milli(quantity: Any) -> int:
    return int((parse_quantity(quantity) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def pod_asks(pod: Mapping[str, Any]) -> tuple[int, ...]:
    """What ``pod`` counts against a quota, in thousandths, indexed as :data:`MEASURED`.

    As the API server counts it: containers summed, or the largest init container when that
    is larger; a request defaults to its limit. A quantity that does not parse counts 0 (the
    API server refuses such a pod before any quota sees it).
    """
    spec = pod.get("spec") or {}
    totals = [0, 0, 0, 0]
    for group, combine in (("containers", _add), ("initContainers", max)):
        for container in spec.get(group) or ():
            resources = container.get("resources") or {}
            limits = resources.get("limits") or {}
            requests = {**limits, **(resources.get("requests") or {})}
            for i, (where, which) in enumerate(((requests, "cpu"), (requests, "memory"),
                                                (limits, "cpu"), (limits, "memory"))):
                try:
                    amount = _milli(where[which]) if which in where else 0
                except (ValueError, TypeError):
                    amount = 0
                totals[i] = combine(totals[i], amount)
    return (1000, *totals)


def _add(a: int, b: int) -> int:
    return a + b


@dataclass(frozen=True, slots=True)
class QuotaRoom:
    """One ResourceQuota: its hard limits and what is used, in thousandths, for the
    resources the gate measures."""

    name: str
    hard: dict[str, int]
    used: dict[str, int]

    @classmethod
    def of(cls, quota: Mapping[str, Any]) -> QuotaRoom:
        status = quota.get("status") or {}
        hard_raw = status.get("hard") or (quota.get("spec") or {}).get("hard") or {}
        used_raw = status.get("used") or {}
        hard: dict[str, int] = {}
        used: dict[str, int] = {}
        for resource, value in hard_raw.items():
            if resource not in MEASURED:
                continue
            try:
                hard[resource] = _milli(value)
                used[resource] = _milli(used_raw.get(resource, 0))
            except (ValueError, TypeError):
                continue  # a value we cannot read decides nothing: the API server will
        return cls(str((quota.get("metadata") or {}).get("name", "")), hard, used)


def never_fits_reason(rooms: Iterable[QuotaRoom], asks: tuple[int, ...]) -> str | None:
    """Why a pod asking ``asks`` can never be admitted (it asks more than some quota's hard
    limit), or None."""
    for room in rooms:
        over = sorted(r for r, hard in room.hard.items() if asks[MEASURED[r]] > hard)
        if over:
            return (f"exceeded quota: {room.name}, requested: "
                    + ",".join(f"{r}={_show(asks[MEASURED[r]])}" for r in over)
                    + ", limited: " + ",".join(f"{r}={_show(room.hard[r])}" for r in over)
                    + " (the pod asks more than the quota allows at all)")
    return None


def _show(value_milli: int) -> str:
    return str(value_milli // 1000) if value_milli % 1000 == 0 else f"{value_milli}m"


@dataclass(frozen=True, slots=True)
class Waiter:
    """A parked launch as its waiting-list member encodes it."""

    member: str
    launch_id: str
    deadline: float
    asks: tuple[int, ...]

    @classmethod
    def of(cls, request: LaunchRequest, asks: tuple[int, ...]) -> Waiter:
        deadline = request.deadline or 0.0
        member = (f"{int(request.queued_at * 1000):015d}:{request.launch_id}:"
                  f"{int(deadline)}:" + ",".join(str(a) for a in asks))
        return cls(member, request.launch_id, float(int(deadline)), asks)

    @classmethod
    def parse(cls, member: str) -> Waiter | None:
        try:
            _queued, launch_id, deadline, asks = member.split(":")
            values = tuple(int(a) for a in asks.split(","))
        except ValueError:
            return None
        if len(values) != len(set(MEASURED.values())):
            return None
        return cls(member, launch_id, float(deadline), values)


@dataclass(slots=True)
class GateAnswer:
    """What the gate says about the launches of one message."""

    go: list[int]          # indexes of the launches to create now
    wait: list[int]        # … to hand back and look again later
    never: dict[int, str]  # … that can never fit: the reason each fails with
    joined: dict[int, str]  # … that joined a waiting list now: why they wait


class QuotaGate:
    """The namespaces' quotas (read through a short cache) and their waiting lists in Redis;
    one per worker process, shared by its threads."""

    def __init__(self, kube: KubeClient, redis_client: Any, keys: RedisKeys, *,
                 poll_seconds: float) -> None:
        self.kube = kube
        self.redis = redis_client
        self.keys = keys
        self.poll_seconds = poll_seconds
        self.cache_seconds = poll_seconds / 2
        self._lock = threading.Lock()
        self._rooms: dict[str, tuple[float, list[QuotaRoom] | None]] = {}
        #: Namespaces this process last saw with waiters: decided launches there leave the
        #: list (elsewhere nobody waits, and no call is made).
        self.namespaces_waiting: set[str] = set()

    # --- the quotas ------------------------------------------------------------------------

    def rooms(self, namespace: str) -> list[QuotaRoom] | None:
        """The quotas of ``namespace`` (at most one GET per cache period); None when they
        cannot be read (the API server's admission then decides alone)."""
        now = time.monotonic()
        with self._lock:
            cached = self._rooms.get(namespace)
            if cached is not None and now - cached[0] < self.cache_seconds:
                return cached[1]
            try:
                rooms: list[QuotaRoom] | None = [
                    QuotaRoom.of(q) for q in self.kube.list_resource_quotas(namespace)]
            except (KubeError, Unreachable) as exc:
                logger.warning("cannot read the ResourceQuotas of namespace %s: %s",
                               namespace, exc)
                rooms = None
            self._rooms[namespace] = (now, rooms)
            return rooms

    def never_fits(self, namespace: str, pod: Mapping[str, Any]) -> str | None:
        """Why ``pod`` can never be admitted in ``namespace`` by its quotas, or None."""
        return never_fits_reason(self.rooms(namespace) or (), pod_asks(pod))

    # --- the waiting lists -----------------------------------------------------------------

    def park(self, request: LaunchRequest, pod: Mapping[str, Any]) -> bool:
        """Put ``request`` on its namespace's waiting list; True when it was not there."""
        waiter = Waiter.of(request, pod_asks(pod))
        added = bool(self.redis.zadd(self.keys.quota_waiting(request.namespace),
                                     {waiter.member: -request.priority}, nx=True))
        self.namespaces_waiting.add(request.namespace)
        if added:
            QUOTA_WAITS.labels(namespace=request.namespace).inc()
        return added

    def leave(self, launches: Iterable[tuple[LaunchRequest, Mapping[str, Any]]]) -> None:
        """Take decided launches (created, failed, expired) off their waiting lists."""
        pipe = self.redis.pipeline(transaction=False)
        count = 0
        for request, pod in launches:
            pipe.zrem(self.keys.quota_waiting(request.namespace),
                      Waiter.of(request, pod_asks(pod)).member)
            count += 1
        if count:
            pipe.execute()

    def sort_out(self, launches: list[tuple[LaunchRequest, Mapping[str, Any]]]) -> GateAnswer:
        """Which of ``launches`` (one message's) go now, wait, or can never fit.

        A namespace without waiters costs one ZCARD (pipelined for the message) and lets its
        launches go. Otherwise they join the list, and the list is walked from the front:
        each waiter that fits the room left takes its share; a launch goes if it is reached
        and fits.
        """
        answer = GateAnswer([], [], {}, {})
        by_namespace: dict[str, list[int]] = {}
        for i, (request, _pod) in enumerate(launches):
            by_namespace.setdefault(request.namespace, []).append(i)
        pipe = self.redis.pipeline(transaction=False)
        for namespace in by_namespace:
            pipe.zcard(self.keys.quota_waiting(namespace))
        for (namespace, indexes), waiting in zip(by_namespace.items(), pipe.execute(),
                                                 strict=True):
            if not waiting:
                if namespace in self.namespaces_waiting:
                    self.namespaces_waiting.discard(namespace)
                    QUOTA_PARKED.labels(namespace=namespace).set(0)
                answer.go.extend(indexes)
                continue
            self.namespaces_waiting.add(namespace)
            self._sort_namespace(namespace, indexes, launches, answer)
        return answer

    def _sort_namespace(self, namespace: str, indexes: list[int],
                        launches: list[tuple[LaunchRequest, Mapping[str, Any]]],
                        answer: GateAnswer) -> None:
        rooms = self.rooms(namespace)
        if not rooms:  # no quota (any more), or none readable: the API server decides
            answer.go.extend(indexes)
            return
        mine: dict[str, int] = {}
        for i in indexes:
            request, pod = launches[i]
            waiter = Waiter.of(request, pod_asks(pod))
            reason = never_fits_reason(rooms, waiter.asks)
            if reason is not None:
                answer.never[i] = reason
                continue
            mine[waiter.member] = i
            if self.park(request, pod):
                answer.joined[i] = self._why_waiting(rooms, waiter.asks)
        key = self.keys.quota_waiting(namespace)
        members = [m.decode() if isinstance(m, bytes) else str(m)
                   for m in self.redis.zrange(key, 0, WAITERS_READ - 1)]
        QUOTA_PARKED.labels(namespace=namespace).set(len(members))
        left = {(r.name, res): r.hard[res] - r.used.get(res, 0)
                for r in rooms for res in r.hard}
        now = time.time()
        gone: list[str] = []
        for member in members:
            found = Waiter.parse(member)
            if found is None or (found.deadline and found.deadline < now):
                gone.append(member)  # unreadable, or its launch can no longer happen
                continue
            fits = all(found.asks[MEASURED[res]] <= room for (_n, res), room in left.items())
            if fits:
                for slot in left:
                    left[slot] -= found.asks[MEASURED[slot[1]]]
                if member in mine:
                    answer.go.append(mine.pop(member))
        if gone:
            self.redis.zrem(key, *gone)
        answer.wait.extend(mine.values())

    @staticmethod
    def _why_waiting(rooms: list[QuotaRoom], asks: tuple[int, ...]) -> str:
        for room in rooms:
            short = sorted(res for res, hard in room.hard.items()
                           if asks[MEASURED[res]] > hard - room.used.get(res, 0))
            if short:
                return (f"exceeded quota: {room.name}, requested: "
                        + ",".join(f"{r}={_show(asks[MEASURED[r]])}" for r in short)
                        + ", used: " + ",".join(f"{r}={_show(room.used.get(r, 0))}"
                                                for r in short)
                        + ", limited: " + ",".join(f"{r}={_show(room.hard[r])}"
                                                   for r in short))
        return "launches of higher or equal priority wait for the namespace's quota first"


def waiting_message(namespace: str, quota_message: str) -> str:
    """How a parked launch's wait is told (``podfleet status``, the task's reason at the
    queued timeout): ``waiting on quota in ns X: <the quota's message>``."""
    return f"waiting on quota in ns {namespace}: {one_line(quota_message)}"


def quota_message(api_message: str) -> str:
    """The quota part of a 403's message (``exceeded quota: …``), on one line; the whole
    message, flagged, when it is in an unexpected form."""
    try:
        parse_exceeded(api_message)
    except UnexpectedQuotaMessage as exc:
        return str(exc)
    return one_line(api_message[api_message.find("exceeded quota: "):])
