"""The singleton watcher's lease: a Redis hash with an expiry and a fencing token.

Exactly one watcher may publish at a time. Holding the lease is necessary but not enough - a
process can pause (GC, swap, a partition) past its lease and wake up believing it still holds
it - so every acquisition takes a new, strictly larger *fencing token* from a counter, and
every write the watcher makes (``publish.lua``) checks that token against the lease in the same
script. A stale watcher's writes are refused by Redis itself, not by its own clock.

The lease is renewed by a background thread every third of the lease time. The holder also
tracks a local deadline (the moment before its last successful renewal was sent, plus the lease
time): past it, it stops doing unfenced side effects (pod deletions) even if Redis cannot be
reached to learn that someone else took over.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

import redis

from podfleet.contracts.redis_keys import RedisKeys
from podfleet.monitoring.metrics import WATCHER_LEASE_HELD, WATCHER_TAKEOVERS

log = logging.getLogger(__name__)

REDIS_ERRORS: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)


def lua_script(name: str) -> str:
    """The text of one of the watcher's Lua scripts (``workers/watcher/<name>``)."""
    return (resources.files("podfleet.workers.watcher") / name).read_text()


class LeaseLost(Exception):
    """The watcher no longer holds the lease (expired, or taken by a newer token)."""


@dataclass(frozen=True, slots=True)
class LeaseHolder:
    """Who holds the lease right now, as read from Redis."""

    holder: str
    token: int
    ttl_seconds: float


def default_holder_name() -> str:
    """``host:pid:random``: unique per acquisition attempt, readable by an operator."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def current_holder(client: redis.Redis, keys: RedisKeys) -> LeaseHolder | None:
    """The lease's holder, or None when no watcher holds it (for ``Executor.sync``'s check)."""
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.watcher_lease, "holder", "token")
    pipe.pttl(keys.watcher_lease)
    (holder, token), ttl_ms = pipe.execute()
    if token is None or ttl_ms is None or ttl_ms < 0:
        return None
    text = holder.decode() if isinstance(holder, bytes) else str(holder or "")
    return LeaseHolder(text, int(token), ttl_ms / 1000)


class WatcherLease:
    """One attempt to be the watcher: acquire once, renew in the background, release at the end.

    Thread-safe. ``lost`` is set when the lease is lost for any reason (including release), so
    the watch loop can wait on it.
    """

    def __init__(self, client: redis.Redis, keys: RedisKeys, *, lease_seconds: float,
                 holder: str | None = None) -> None:
        self.client = client
        self.keys = keys
        self.lease_seconds = lease_seconds
        self.holder = holder or default_holder_name()
        self.token: int | None = None
        self.lost = threading.Event()
        self._deadline = 0.0  # time.monotonic() after which the lease may have expired
        self._lock = threading.Lock()
        self._renewer: threading.Thread | None = None
        self._stop_renewing = threading.Event()
        self._acquire: Any = client.register_script(lua_script("acquire.lua"))
        self._renew: Any = client.register_script(lua_script("renew.lua"))
        self._release: Any = client.register_script(lua_script("release.lua"))

    @property
    def ttl_ms(self) -> int:
        return max(1, int(self.lease_seconds * 1000))

    @property
    def held(self) -> bool:
        """True while this process may still hold the lease by its own clock."""
        return (self.token is not None and not self.lost.is_set()
                and time.monotonic() < self._deadline)

    def check(self) -> int:
        """The token, or LeaseLost when the lease is (or may be) gone."""
        if not self.held:
            self.mark_lost("local deadline passed")
            raise LeaseLost(f"watcher lease lost by {self.holder}")
        assert self.token is not None
        return self.token

    def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this object now holds it."""
        if self.token is not None:
            raise RuntimeError("a WatcherLease is acquired once; make a new one to retry")
        sent = time.monotonic()
        result = self._acquire(keys=[self.keys.watcher_lease, self.keys.watcher_fence],
                               args=[self.holder, self.ttl_ms])
        if int(result[0]) != 1:
            return False
        with self._lock:
            self.token = int(result[1])
            self._deadline = sent + self.lease_seconds
        WATCHER_LEASE_HELD.labels(cluster=self.keys.cluster).set(1)
        WATCHER_TAKEOVERS.labels(cluster=self.keys.cluster).inc()
        log.info("watcher lease acquired by %s with token %s", self.holder, self.token)
        return True

    def renew(self) -> bool:
        """Extend the lease once; False (and ``lost`` set) when it is no longer ours."""
        if self.token is None or self.lost.is_set():
            return False
        sent = time.monotonic()
        renewed = self._renew(keys=[self.keys.watcher_lease],
                              args=[self.token, self.holder, self.ttl_ms])
        if int(renewed) != 1:
            self.mark_lost("renewal refused: expired or taken over")
            return False
        with self._lock:
            self._deadline = max(self._deadline, sent + self.lease_seconds)
        return True

    def start_renewing(self) -> None:
        """Renew every third of the lease time in a daemon thread until lost or released."""
        if self._renewer is None:
            self._renewer = threading.Thread(target=self._renew_forever, daemon=True,
                                             name="podfleet-watcher-lease")
            self._renewer.start()

    def _renew_forever(self) -> None:
        interval = self.lease_seconds / 3
        retry = min(0.5, self.lease_seconds / 10)
        wait = interval
        while not self._stop_renewing.wait(wait) and not self.lost.is_set():
            try:
                self.renew()
                wait = interval
            except redis.RedisError as exc:  # unreachable, or refusing (READONLY): retry
                if time.monotonic() >= self._deadline:
                    self.mark_lost(f"Redis unreachable past the lease time: {exc}")
                    return
                wait = retry

    def release(self) -> None:
        """Stop renewing and give the lease up so another watcher can start at once."""
        self._stop_renewing.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=5)
        token = self.token
        was_lost = self.lost.is_set()
        self.mark_lost("released")
        if token is not None and not was_lost:
            try:
                self._release(keys=[self.keys.watcher_lease], args=[token, self.holder])
            except REDIS_ERRORS as exc:  # it will expire on its own
                log.warning("could not release the watcher lease: %s", exc)

    def mark_lost(self, why: str) -> None:
        with self._lock:
            if self.lost.is_set():
                return
            self.lost.set()
            self._deadline = 0.0
        if self.token is not None:
            WATCHER_LEASE_HELD.labels(cluster=self.keys.cluster).set(0)
            log.info("watcher lease of %s (token %s) ended: %s", self.holder, self.token, why)
