"""Connecting to Redis from ``PODFLEET_REDIS_URL``: a plain Redis, or a primary found through
Redis Sentinel.

Every Redis client podfleet makes (the dramatiq broker, the executor's and the watcher's state
clients, the broker collector, ``podfleet check``) comes from :func:`connect`, so one URL decides
for all of them. Besides redis-py's own schemes (``redis://``, ``rediss://``, ``unix://``) it
reads::

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]

``host:port`` pairs are the sentinels (26379 when the port is left out); ``service_name`` is
the name the sentinels monitor (``sentinel monitor <service_name> ...``); ``db`` defaults to 0;
the user and password, when given, are the primary's (sentinels without auth). The client
asks the sentinels for the primary and, when a connection to it fails, asks again, so after a
failover the next command reaches the promoted replica. What happens meanwhile is an ordinary
Redis outage, which every part of podfleet already survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
from redis.sentinel import MasterNotFoundError, Sentinel

SENTINEL_SCHEME = "redis+sentinel://"
DEFAULT_SENTINEL_PORT = 26379


class InvalidRedisUrl(ValueError):
    """A ``redis+sentinel://`` URL that cannot be read."""


@dataclass(frozen=True, slots=True)
class SentinelUrl:
    """The parts of a ``redis+sentinel://`` URL."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEME)


def parse_sentinel_url(url: str) -> SentinelUrl:
    """Read ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]``."""
    if not is_sentinel_url(url):
        raise InvalidRedisUrl(f"not a {SENTINEL_SCHEME} URL")
    rest = url[len(SENTINEL_SCHEME):]
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    sentinels: list[tuple[str, int]] = []
    for entry in hosts.split(","):
        host, colon, port = entry.strip().rpartition(":") if ":" in entry else (entry, "", "")
        host = host.strip("[]")
        if not host:
            raise InvalidRedisUrl(f"sentinel address {entry!r} has no host")
        try:
            number = int(port) if colon else DEFAULT_SENTINEL_PORT
        except ValueError:
            raise InvalidRedisUrl(f"sentinel address {entry!r} has no valid port") from None
        if not 0 < number < 65536:
            raise InvalidRedisUrl(f"sentinel address {entry!r} has no valid port")
        sentinels.append((host, number))
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if not parts or len(parts) > 2:
        raise InvalidRedisUrl("expected /service_name or /service_name/db after the sentinels")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise InvalidRedisUrl(f"db must be a number, got {parts[1]!r}")
        db = int(parts[1])
    return SentinelUrl(tuple(sentinels), unquote(parts[0]), db, username, password)


class NamingSentinel(Sentinel):
    """redis-py's Sentinel, whose "no primary" error names the sentinels and the service
    (redis-py's own carries the repr of every sentinel's connection pool, a kilobyte and more,
    and names neither address)."""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        try:
            found: tuple[str, int] = super().discover_master(  # type: ignore[no-untyped-call]
                service_name)
        except MasterNotFoundError:
            addresses = ", ".join(
                f"{pool.connection_kwargs.get('host')}:{pool.connection_kwargs.get('port')}"
                for pool in (s.connection_pool for s in self.sentinels))
            raise MasterNotFoundError(
                f"no Redis primary for service {service_name!r} from the sentinels "
                f"{addresses}: none answered with a primary it monitors under that name "
                "(sentinels unreachable, or the service name is wrong)") from None
        return found


def connect(url: str, **kwargs: Any) -> redis.Redis:
    """A client for ``url``; ``kwargs`` are redis-py connection options (timeouts, …), used
    for the sentinels as well as for the primary."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, **kwargs)
    found = parse_sentinel_url(url)
    timeouts = {k: v for k, v in kwargs.items()
                if k in ("socket_timeout", "socket_connect_timeout")}
    sentinel = NamingSentinel(  # type: ignore[no-untyped-call]
        list(found.sentinels), sentinel_kwargs=timeouts, **timeouts)
    client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        found.service_name, db=found.db, username=found.username, password=found.password,
        **kwargs)
    return client
