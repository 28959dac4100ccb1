"""Fault injection: what a struggling real API server does to its clients, on demand.

Set at start (``podfleet sim`` flags, ``FaultConfig`` in ``SimulatorConfig.faults``) and changed
at run time through ``PUT/PATCH /_sim/faults``. The API server awaits
``FaultInjector.intercept`` before every API request; it sleeps for added latency and returns
the error response to send instead, shaped as a real server shapes it:

- per verb: added latency, and rates of 429 (with ``Retry-After``), 500, 503 and timeouts
  (held past a client's timeout then answered 504, or the connection closed without an answer);
- an API rate limit: 429 ``TooManyRequests`` past N requests/s, as API Priority and Fairness does;
- a pod quota: 403 ``Forbidden`` "exceeded quota", as a ResourceQuota on ``pods`` does (checked
  by ``admit_pod``, which the API server calls right before it stores a pod);
- watch connections cut every N seconds;
- a short history window, so watches and lists from an old resourceVersion get 410 ``Expired``.

Node failures are actions, not settings: ``SimulatedCluster.fail_node`` (``/_sim/nodes/...``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from podfleet.simulator.apiserver.errors import ApiError, status_response

if TYPE_CHECKING:
    from aiohttp import web

    from podfleet.simulator.apiserver.requestinfo import RequestInfo
    from podfleet.simulator.runtime import SimulatorRuntime
    from podfleet.simulator.store import StoreEvent

#: Verbs faults can target; "*" in ``FaultConfig.verbs`` applies to every verb without its own.
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
ANY_VERB = "*"
TIMEOUT_MODES = ("hold", "close")
#: Paths the injector never touches: the admin endpoint and health checks.
EXEMPT_PREFIXES = ("/_sim/", "/healthz", "/readyz", "/livez")
_TERMINAL = frozenset({"Succeeded", "Failed"})

TOO_MANY_REQUESTS_MESSAGE = "Too many requests, please try again later."


@dataclass
class VerbFaults:
    """Faults for one verb. Rates are probabilities per request (0.0-1.0), summed ≤ 1."""

    latency_ms: float = 0.0
    error_429: float = 0.0
    error_500: float = 0.0
    error_503: float = 0.0
    timeout: float = 0.0

    def error_rate(self) -> float:
        return self.error_429 + self.error_500 + self.error_503 + self.timeout


@dataclass
class FaultConfig:
    """Every injectable fault; the defaults inject nothing."""

    #: Per-verb faults, keyed by verb (``create``, ``get``, ``list``, ``watch``, ``delete``,
    #: ``patch``, …) or ``"*"`` for every verb without an entry of its own.
    verbs: dict[str, VerbFaults] = field(default_factory=dict)
    #: Seconds sent in ``Retry-After`` (and ``details.retryAfterSeconds``) with every 429.
    retry_after_s: int = 1
    #: An injected timeout either holds the request (``hold``: answered 504 after
    #: ``timeout_hold_s``, longer than a sane client timeout) or drops the connection (``close``).
    timeout_mode: str = "hold"
    timeout_hold_s: float = 60.0
    #: Most non-terminal pods per namespace; creates past it get 403 Forbidden (exceeded quota).
    pod_quota: int | None = None
    quota_name: str = "pods-quota"
    #: API requests per second accepted (token bucket, burst = ``rate_limit_burst`` or the rate);
    #: past it, 429 TooManyRequests with Retry-After.
    rate_limit_rps: float | None = None
    rate_limit_burst: int | None = None
    #: Cut every watch connection this many seconds after it starts (read while watches run:
    #: setting it cuts the open watches already that old within about a second).
    watch_drop_s: float | None = None
    #: The next this many watches that resume from a resourceVersion are answered 410 Gone
    #: (Expired), as after etcd compaction; counted down from when the field is set. One
    #: forced 410 without shrinking the history (which makes every resume fail meanwhile).
    expire_watches: int | None = None
    #: Shrink the store's watch history to this many events / seconds (forces 410 Expired).
    history_events: int | None = None
    history_seconds: float | None = None
    #: Seed of the random draws, for reproducible fault sequences.
    seed: int | None = None

    def for_verb(self, verb: str) -> VerbFaults | None:
        return self.verbs.get(verb) or self.verbs.get(ANY_VERB)

    def validate(self) -> None:
        """Raise ValueError when a field is out of range or names an unknown verb or mode."""
        for verb, faults in self.verbs.items():
            if verb != ANY_VERB and verb not in VERBS:
                raise ValueError(f"unknown verb {verb!r}; expected one of {', '.join(VERBS)}, *")
            rates = (faults.error_429, faults.error_500, faults.error_503, faults.timeout)
            if any(r < 0 or r > 1 for r in rates) or faults.error_rate() > 1 + 1e-9:
                raise ValueError(f"error rates of {verb!r} must be in [0, 1] and sum to ≤ 1")
            if faults.latency_ms < 0:
                raise ValueError(f"latency_ms of {verb!r} must be ≥ 0")
        if self.timeout_mode not in TIMEOUT_MODES:
            raise ValueError(f"timeout_mode must be one of {', '.join(TIMEOUT_MODES)}")
        for name in ("pod_quota", "rate_limit_rps", "rate_limit_burst", "watch_drop_s",
                     "expire_watches",
                     "history_events", "history_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be ≥ 0")
        if self.retry_after_s < 0 or self.timeout_hold_s < 0:
            raise ValueError("retry_after_s and timeout_hold_s must be ≥ 0")


def fault_config_to_json(config: FaultConfig) -> dict[str, Any]:
    """A FaultConfig as plain JSON types."""
    return dataclasses.asdict(config)


def fault_config_from_json(data: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
    """Build a FaultConfig from JSON; with ``base``, fields absent from ``data`` keep base's.

    Raises ValueError for unknown fields or wrong types.
    """
    if not isinstance(data, dict):
        raise ValueError("faults must be a JSON object")
    known = {f.name for f in dataclasses.fields(FaultConfig)}
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"unknown fault fields: {', '.join(sorted(unknown))}")
    values = fault_config_to_json(base) if base is not None else {}
    values.update(data)
    verbs_raw = values.pop("verbs", None) or {}
    if not isinstance(verbs_raw, dict):
        raise ValueError("verbs must be an object of verb → faults")
    verb_fields = {f.name for f in dataclasses.fields(VerbFaults)}
    verbs: dict[str, VerbFaults] = {}
    for verb, raw in verbs_raw.items():
        if not isinstance(raw, dict) or set(raw) - verb_fields:
            raise ValueError(f"faults of verb {verb!r} must be an object with fields "
                             f"{', '.join(sorted(verb_fields))}")
        try:
            verbs[verb] = VerbFaults(**{k: float(v) for k, v in raw.items()})
        except (TypeError, ValueError):
            raise ValueError(f"faults of verb {verb!r} must be numbers") from None
    try:
        config = FaultConfig(verbs=verbs, **values)
    except TypeError as error:
        raise ValueError(str(error)) from None
    for name in ("retry_after_s", "pod_quota", "rate_limit_burst", "history_events",
                 "expire_watches"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer")
    for name in ("timeout_hold_s", "rate_limit_rps", "watch_drop_s", "history_seconds"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ValueError(f"{name} must be a number")
    config.validate()
    return config


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; one token per request."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = max(1.0, burst)
        self._tokens = self.burst
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class FaultInjector:
    """Decides, per request, whether to delay it or answer with an injected fault."""

    def __init__(self, config: FaultConfig, runtime: SimulatorRuntime) -> None:
        self.runtime = runtime
        self.config = config
        #: Faults injected so far, by kind (``429``, ``500``, ``503``, ``timeout``,
        #: ``rate_limit``, ``quota``), for ``GET /_sim/stats``.
        self.injected: Counter[str] = Counter()
        self._random = random.Random(config.seed)
        self._bucket: TokenBucket | None = None
        #: Non-terminal pods per namespace, what a ``pods`` ResourceQuota counts as used.
        self._active_pods: Counter[str] = Counter()
        self._expire_left = 0
        self._history_default = (runtime.config.history_window_events,
                                 runtime.config.history_window_seconds)
        for record in runtime.store.iter_unsorted("pods"):
            if record.phase not in _TERMINAL:
                self._active_pods[record.namespace] += 1
        runtime.store.add_listener(self._on_event)
        self.update(config)

    # -- configuration -------------------------------------------------------------------
    def update(self, config: FaultConfig) -> None:
        """Apply a new fault configuration now (admin endpoint)."""
        config.validate()
        previous = self.config
        self.config = config
        if config.expire_watches is not None and config.expire_watches != previous.expire_watches:
            self._expire_left = config.expire_watches
        elif config.expire_watches is None:
            self._expire_left = 0
        if config.seed is not None and config.seed != previous.seed:
            self._random.seed(config.seed)
        if config.rate_limit_rps is None:
            self._bucket = None
        elif (self._bucket is None or self._bucket.rate != config.rate_limit_rps
              or previous.rate_limit_burst != config.rate_limit_burst):
            burst = config.rate_limit_burst or config.rate_limit_rps
            self._bucket = TokenBucket(config.rate_limit_rps, burst)
        store = self.runtime.store
        if config.history_events is not None or config.history_seconds is not None:
            store.set_history_window(
                events=config.history_events or self._history_default[0],
                seconds=config.history_seconds,
            )
        elif previous.history_events is not None or previous.history_seconds is not None:
            store.set_history_window(events=self._history_default[0],
                                     seconds=self._history_default[1])

    def expire_watch(self) -> bool:
        """Whether this watch resume is to be answered 410 Gone (``expire_watches``)."""
        if self._expire_left <= 0:
            return False
        self._expire_left -= 1
        self.injected["watch_410"] += 1
        return True

    def watch_drop_seconds(self) -> float | None:
        """Seconds after which each new watch is cut (None: never)."""
        return self.config.watch_drop_s

    # -- the hooks -----------------------------------------------------------------------
    async def intercept(self, info: RequestInfo) -> web.StreamResponse | None:
        """Delay the request, or return the fault response to send instead (None: proceed)."""
        if not info.verb or info.path.startswith(EXEMPT_PREFIXES):
            return None
        config = self.config
        if self._bucket is not None and not self._bucket.take():
            self.injected["rate_limit"] += 1
            return self._too_many_requests()
        faults = config.for_verb(info.verb)
        if faults is not None:
            if faults.latency_ms > 0:
                await asyncio.sleep(faults.latency_ms / 1000)
            if faults.error_rate() > 0:
                response = await self._draw_error(faults, info)
                if response is not None:
                    return response
        return None

    def admit_pod(self, namespace: str, pod: dict[str, Any]) -> ApiError | None:
        """Admission for a pod create, called synchronously right before it is stored.

        Returns the 403 quota error to answer with, or None to admit. The pod quota is checked
        here only, not in ``intercept``: with no await between this check and the store write,
        the quota is exact under concurrent creates (a check before the body is read would let
        every create then in flight through).
        """
        if self.config.pod_quota is None:
            return None
        name = str((pod.get("metadata") or {}).get("name")
                   or (pod.get("metadata") or {}).get("generateName") or "")
        return self._quota_error(namespace, name)

    # -- faults ----------------------------------------------------------------------------
    def _too_many_requests(self) -> web.Response:
        retry = self.config.retry_after_s
        return status_response(
            429, "TooManyRequests", TOO_MANY_REQUESTS_MESSAGE,
            details={"retryAfterSeconds": retry}, headers={"Retry-After": str(retry)},
        )

    async def _draw_error(self, faults: VerbFaults, info: RequestInfo) -> web.Response | None:
        draw = self._random.random()
        if draw < faults.error_429:
            self.injected["429"] += 1
            return self._too_many_requests()
        draw -= faults.error_429
        if draw < faults.error_500:
            self.injected["500"] += 1
            message = "Internal error occurred: injected by the podfleet simulator"
            return status_response(500, "InternalError", message,
                                   details={"causes": [{"message": message}]})
        draw -= faults.error_500
        if draw < faults.error_503:
            self.injected["503"] += 1
            retry = self.config.retry_after_s
            return status_response(
                503, "ServiceUnavailable", "The server is currently unable to handle the request",
                details={"retryAfterSeconds": retry}, headers={"Retry-After": str(retry)},
            )
        draw -= faults.error_503
        if draw < faults.timeout:
            self.injected["timeout"] += 1
            return await self._timeout(info)
        return None

    async def _timeout(self, info: RequestInfo) -> web.Response:
        if self.config.timeout_mode == "close":
            request = getattr(info, "request", None)
            transport = request.transport if request is not None else None
            if transport is not None:
                transport.close()
                return status_response(504, "Timeout", "connection closed by fault injection")
            # Without the request at hand: a cancelled handler makes aiohttp drop the
            # connection without an answer, which is what a dropped connection looks like.
            raise asyncio.CancelledError
        await asyncio.sleep(self.config.timeout_hold_s)
        return status_response(
            504, "Timeout",
            "Timeout: request did not complete within requested timeout - context deadline "
            "exceeded", details={},
        )

    def _quota_error(self, namespace: str, name: str) -> ApiError | None:
        limit = self.config.pod_quota
        if limit is None:
            return None
        used = self._active_pods[namespace]
        if used + 1 <= limit:
            return None
        self.injected["quota"] += 1
        quota = self.config.quota_name
        return ApiError(
            403, "Forbidden",
            f'pods "{name}" is forbidden: exceeded quota: {quota}, requested: pods=1, '
            f"used: pods={used}, limited: pods={limit}",
            {"name": name, "kind": "pods"},
        )

    def _on_event(self, event: StoreEvent) -> None:
        record = event.record
        if record.resource != "pods":
            return
        before = event.prev is not None and event.type != "ADDED" and \
            event.prev.phase not in _TERMINAL
        after = event.type != "DELETED" and record.phase not in _TERMINAL
        if before != after:
            self._active_pods[record.namespace] += 1 if after else -1


def parse_faults_json(text: str | bytes) -> FaultConfig:
    """A FaultConfig from a JSON document (a ``--faults-json`` flag or file)."""
    return fault_config_from_json(orjson.loads(text))
