"""Settings of the simulator: where it listens, how much history it keeps, request limits.

The cluster's behaviour (nodes, latencies) and the faults it injects are configured by their own
dataclasses, nested here, so one object describes a whole simulator. Process mode ships that
object to the child as JSON, which is why every field is a plain JSON type or a dataclass.
"""

from __future__ import annotations

import dataclasses
import secrets
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

import orjson

from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.faults import FaultConfig
from podfleet.simulator.tls import TlsConfig, with_generated_material

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


@dataclass
class SimulatorConfig:
    """Everything needed to start one simulator."""

    host: str = "127.0.0.1"
    #: 0 picks a free port.
    port: int = 0
    #: Watch history kept for resuming from a resourceVersion, in events (store-wide).
    history_window_events: int = 100_000
    #: ... and in seconds (None = no age limit). Whichever is shorter applies.
    history_window_seconds: float | None = None
    #: Namespaces created at start, besides the four every cluster has.
    namespaces: list[str] = field(default_factory=list)
    #: Largest request body accepted; a real API server refuses more than 3 MiB with 413.
    max_body_bytes: int = 3 * 1024 * 1024
    #: How often a watch with allowWatchBookmarks=true gets a BOOKMARK, in seconds.
    bookmark_interval_seconds: float = 60.0
    #: Default of spec.terminationGracePeriodSeconds when a pod does not set it (real: 30).
    default_termination_grace_period_s: int = 30
    #: When set, any request without "Authorization: Bearer <token>" gets 401. With TLS on and
    #: no token given, `prepared` makes one up (so HTTPS always comes with bearer-token auth).
    token: str | None = None
    #: HTTPS with a generated CA (on by default); `TlsConfig(enabled=False)` serves plain HTTP.
    tls: TlsConfig = field(default_factory=TlsConfig)
    #: Record Event objects where a real scheduler and kubelet do (Scheduled, Pulling,
    #: Started, ...). Off, nothing is recorded and event lists are empty.
    record_events: bool = True
    #: Seconds an event is kept after its last write (the API server's --event-ttl).
    event_ttl_seconds: float = 3600.0
    #: Most events kept; beyond it the oldest are dropped (bounds memory in load tests).
    event_limit: int = 20_000
    #: Version reported by /version.
    git_version: str = "v1.32.0-podfleet-sim"
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)

    def all_namespaces(self) -> list[str]:
        """The namespaces that exist at start, defaults first, without duplicates."""
        return list(dict.fromkeys([*DEFAULT_NAMESPACES, *self.namespaces]))


def prepared(config: SimulatorConfig) -> SimulatorConfig:
    """A copy of `config` ready to serve: TLS material generated and a token chosen if needed.

    Done once, by whoever starts the simulator, so that a child process serves with exactly
    the CA and token its parent gives to clients.
    """
    tls = with_generated_material(config.tls, config.host)
    token = config.token
    if tls.enabled and token is None:
        token = secrets.token_urlsafe(24)
    return dataclasses.replace(config, tls=tls, token=token)


def config_to_json(config: SimulatorConfig) -> bytes:
    """Serialise a config (with its nested cluster and fault configs) for a child process."""
    return orjson.dumps(dataclasses.asdict(config))


T = TypeVar("T")


def config_from_json(data: bytes | str) -> SimulatorConfig:
    """Rebuild a config written by `config_to_json`."""
    return _from_plain(SimulatorConfig, orjson.loads(data))


def _from_plain(cls: type[T], value: Any) -> T:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in value:
            kwargs[f.name] = _convert(hints[f.name], value[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        for option in typing.get_args(hint):
            if option is type(None):
                continue
            return _convert(option, value)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _from_plain(hint, value)
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1]
        return origin(_convert(item, v) for v in value)
    if origin is dict:
        _, item = typing.get_args(hint)
        return {k: _convert(item, v) for k, v in value.items()}
    return value
