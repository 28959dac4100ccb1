"""The simulator's admin endpoint (``/_sim/…``) and its Python client.

Tests and load tests assert on what the simulator saw (creates attempted, accepted and
rejected by reason; pods by phase; peak pods; watch connections; requests by verb and code)
and change its faults and nodes while it runs. None of this is Kubernetes API: it lives under
``/_sim/`` so no client can mistake it for a resource.

Routes:
    GET  /_sim/stats                      counters (see ``SimStats``)
    POST /_sim/reset-stats                zero the counters (current values stay)
    GET  /_sim/creates                    each pod stored since the reset: when (wall clock,
                                          sub-second), namespace, name: rates per window
    GET  /_sim/faults                     the fault configuration
    PUT  /_sim/faults                     replace it (absent fields → no fault)
    PATCH /_sim/faults                    change the fields given, keep the rest
    GET  /_sim/nodes                      nodes with their usage
    POST /_sim/nodes                      add a node {name, cpu?, memory?, pods?, labels?,
                                          taints?}
    POST /_sim/nodes/{name}/fail          {mode: fail | evict | vanish}
    POST /_sim/nodes/{name}/recover
    GET  /_sim/logs/{namespace}/{name}    output of a local-mode pod's process
    GET  /_sim/authorization              RBAC decisions since the reset: who asked for what,
                                          allowed or not, how often (``AccessDecision``)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import ssl
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from podfleet.simulator.audit import AccessRequest
from podfleet.simulator.faults import (
    FaultConfig,
    VerbFaults,
    fault_config_from_json,
    fault_config_to_json,
)

if TYPE_CHECKING:
    from podfleet.simulator.cluster.simulated import SimulatedCluster
    from podfleet.simulator.runtime import SimulatorRuntime
    from podfleet.simulator.store import StoreEvent

PREFIX = "/_sim"
RUNTIME_KEY: web.AppKey[SimulatorRuntime] = web.AppKey("podfleet_sim_runtime")


#: Pod creations whose time and name are kept (the most recent), for ``GET /_sim/creates``.
CREATES_KEPT = 200_000


class PodCensus:
    """Current and peak pod count since the last stats reset (the store's peak is lifelong),
    and every pod stored since then: when (wall clock, sub-second: ``creationTimestamp`` has
    whole seconds only, too coarse for a rate in any 1 s window), namespace and name."""

    def __init__(self, current: int) -> None:
        self.current = current
        self.peak = current
        self.created: deque[tuple[float, str, str]] = deque(maxlen=CREATES_KEPT)

    def on_event(self, event: StoreEvent) -> None:
        if event.record.resource != "pods":
            return
        if event.type == "ADDED":
            self.current += 1
            self.peak = max(self.peak, self.current)
            self.created.append((time.time(), event.record.namespace, event.record.name))
        elif event.type == "DELETED":
            self.current -= 1

    def reset(self) -> None:
        self.peak = self.current
        self.created.clear()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=orjson.dumps(data), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise web.HTTPBadRequest(text=f"malformed JSON: {error}") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return data


class AdminRoutes:
    """The aiohttp handlers of ``/_sim/``."""

    def __init__(self, runtime: SimulatorRuntime) -> None:
        self.runtime = runtime
        self.census = PodCensus(runtime.store.count("pods"))
        runtime.store.add_listener(self.census.on_event)

    def _cluster(self) -> SimulatedCluster:
        cluster = self.runtime.cluster
        if cluster is None:
            raise web.HTTPServiceUnavailable(text="the simulated cluster is not running")
        return cluster  # type: ignore[no-any-return]

    def stats_document(self) -> dict[str, Any]:
        runtime = self.runtime
        stats = runtime.stats
        store = runtime.store
        by_verb: dict[str, dict[str, int]] = {}
        by_resource: dict[str, dict[str, dict[str, int]]] = {}
        for (verb, resource, code), count in stats.requests.items():
            codes = by_verb.setdefault(verb or "nonresource", {})
            codes[str(code)] = codes.get(str(code), 0) + count
            per = by_resource.setdefault(resource or "nonresource", {}).setdefault(verb, {})
            per[str(code)] = count
        cluster = runtime.cluster
        faults = runtime.faults
        return {
            "creates": {
                "attempted": stats.creates_attempted,
                "accepted": stats.creates_accepted,
                "rejected": dict(stats.creates_rejected),
            },
            "pods": {
                "current": store.count("pods"),
                "peak": self.census.peak,
                "by_phase": store.pods_by_phase(),
                "unschedulable": cluster.scheduler.unschedulable_count if cluster else 0,
            },
            "watches": {"open": stats.watches_open, "total": stats.watches_total},
            "requests": by_verb,
            "requests_by_resource": by_resource,
            "faults_injected": dict(faults.injected) if faults is not None else {},
            "resource_version": store.resource_version,
            # Events have a store (and resourceVersions) of their own
            "events": {"current": runtime.events.count(),
                       "resource_version": runtime.events.resource_version,
                       "recording": runtime.config.record_events},
            "cluster": cluster.stats() if cluster is not None else {},
        }

    async def stats(self, request: web.Request) -> web.Response:
        return _json(self.stats_document())

    async def reset_stats(self, request: web.Request) -> web.Response:
        stats = self.runtime.stats
        stats.requests.clear()
        stats.creates_attempted = 0
        stats.creates_accepted = 0
        stats.creates_rejected.clear()
        stats.watches_total = stats.watches_open
        self.census.reset()
        cluster = self.runtime.cluster
        if cluster is not None:
            cluster.timeline.reset_lateness()
        if self.runtime.faults is not None:
            self.runtime.faults.injected.clear()
        self.runtime.audit.clear()
        return _json(self.stats_document())

    async def creates(self, request: web.Request) -> web.Response:
        return _json({"created": [list(c) for c in self.census.created]})

    async def get_faults(self, request: web.Request) -> web.Response:
        faults = self.runtime.faults
        config = faults.config if faults is not None else FaultConfig()
        return _json(fault_config_to_json(config))

    async def put_faults(self, request: web.Request) -> web.Response:
        faults = self.runtime.faults
        if faults is None:
            return _error(503, "fault injection is not installed")
        data = await _body(request)
        base = faults.config if request.method == "PATCH" else None
        try:
            config = fault_config_from_json(data, base)
        except ValueError as error:
            return _error(400, str(error))
        faults.update(config)
        return _json(fault_config_to_json(config))

    async def nodes(self, request: web.Request) -> web.Response:
        return _json(self._cluster().stats()["nodes"])

    async def add_node(self, request: web.Request) -> web.Response:
        data = await _body(request)
        name = data.get("name")
        if not isinstance(name, str) or not name:
            return _error(400, "name is required")
        pods = data.get("pods")
        try:
            self._cluster().add_node(name, data.get("cpu"), data.get("memory"),
                                     int(pods) if pods is not None else None,
                                     data.get("labels"), data.get("taints"))
        except (ValueError, TypeError) as error:
            return _error(400, str(error))
        return _json(self._cluster().stats()["nodes"][name], 201)

    async def fail_node(self, request: web.Request) -> web.Response:
        from podfleet.simulator.cluster.simulated import UnknownNodeError

        data = await _body(request)
        mode = data.get("mode", request.query.get("mode", "fail"))
        name = request.match_info["name"]
        try:
            ended = self._cluster().fail_node(name, str(mode))
        except UnknownNodeError:
            return _error(404, f'node "{name}" not found')
        except ValueError as error:
            return _error(400, str(error))
        return _json({"node": name, "mode": mode, "pods": ended})

    async def recover_node(self, request: web.Request) -> web.Response:
        from podfleet.simulator.cluster.simulated import UnknownNodeError

        name = request.match_info["name"]
        try:
            self._cluster().recover_node(name)
        except UnknownNodeError:
            return _error(404, f'node "{name}" not found')
        return _json({"node": name, "ready": True})

    async def logs(self, request: web.Request) -> web.Response:
        output = self._cluster().logs(request.match_info["namespace"], request.match_info["name"])
        if output is None:
            return _error(404, "no local process output for that pod")
        return web.Response(body=output, content_type="text/plain")


    async def authorization(self, request: web.Request) -> web.Response:
        decisions = [
            {**dataclasses.asdict(asked), "allowed": allowed, "count": count}
            for (asked, allowed), count in self.runtime.audit.decisions.items()
        ]
        return _json({"decisions": decisions})


def setup_admin(app: web.Application, runtime: SimulatorRuntime) -> AdminRoutes:
    """Add the ``/_sim/`` routes to the simulator's app."""
    routes = AdminRoutes(runtime)
    app.router.add_get(f"{PREFIX}/stats", routes.stats)
    app.router.add_post(f"{PREFIX}/reset-stats", routes.reset_stats)
    app.router.add_get(f"{PREFIX}/creates", routes.creates)
    app.router.add_get(f"{PREFIX}/faults", routes.get_faults)
    app.router.add_put(f"{PREFIX}/faults", routes.put_faults)
    app.router.add_patch(f"{PREFIX}/faults", routes.put_faults)
    app.router.add_get(f"{PREFIX}/nodes", routes.nodes)
    app.router.add_post(f"{PREFIX}/nodes", routes.add_node)
    app.router.add_post(f"{PREFIX}/nodes/{{name}}/fail", routes.fail_node)
    app.router.add_post(f"{PREFIX}/nodes/{{name}}/recover", routes.recover_node)
    app.router.add_get(f"{PREFIX}/logs/{{namespace}}/{{name}}", routes.logs)
    app.router.add_get(f"{PREFIX}/authorization", routes.authorization)
    return routes


def busiest_window(times: list[float], window_s: float = 1.0) -> tuple[int, float]:
    """The most events within any ``window_s`` (a sliding window, not aligned seconds), and
    when that window starts. ``times`` ascending."""
    best, start, first = 0, 0.0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window_s:
            first += 1
        if last - first + 1 > best:
            best, start = last - first + 1, times[first]
    return best, start


# -- client ----------------------------------------------------------------------------------


@dataclass
class CreateStats:
    attempted: int = 0
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass
class PodStats:
    current: int = 0
    peak: int = 0
    by_phase: dict[str, int] = field(default_factory=dict)
    unschedulable: int = 0


@dataclass
class WatchStats:
    open: int = 0
    total: int = 0


@dataclass
class SimStats:
    """``GET /_sim/stats``, typed. ``requests[verb][code]`` counts API requests."""

    creates: CreateStats
    pods: PodStats
    watches: WatchStats
    requests: dict[str, dict[int, int]]
    faults_injected: dict[str, int]
    resource_version: int
    raw: dict[str, Any]

    def requests_with_code(self, code: int) -> int:
        """Requests of every verb answered with ``code``."""
        return sum(codes.get(code, 0) for codes in self.requests.values())

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimStats:
        return cls(
            creates=CreateStats(**data["creates"]),
            pods=PodStats(**data["pods"]),
            watches=WatchStats(**data["watches"]),
            requests={verb: {int(code): n for code, n in codes.items()}
                      for verb, codes in data["requests"].items()},
            faults_injected=Counter(data.get("faults_injected") or {}),
            resource_version=int(data["resource_version"]),
            raw=data,
        )


@dataclass(frozen=True)
class AccessDecision:
    """``GET /_sim/authorization``: how often RBAC allowed (or denied) one kind of request of
    one user since the last reset."""

    request: AccessRequest
    allowed: bool
    count: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AccessDecision:
        """One decision as the endpoint writes it: the request's fields, allowed and count."""
        fields = dict(data)
        return cls(allowed=fields.pop("allowed"), count=fields.pop("count"),
                   request=AccessRequest(**fields))


class AdminError(Exception):
    """The admin endpoint answered with an error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def _faults_json(fields: dict[str, Any]) -> dict[str, Any]:
    data = dict(fields)
    if "verbs" in data:
        data["verbs"] = {
            verb: dataclasses.asdict(v) if isinstance(v, VerbFaults) else dict(v)
            for verb, v in (data["verbs"] or {}).items()
        }
    return data


class AdminClient:
    """Blocking client of ``/_sim/`` (standard library only, usable from any test thread)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._ssl_context = ssl_context

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = orjson.dumps(body) if body is not None else None
        request = urllib.request.Request(self.base_url + PREFIX + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(
                request, timeout=self._timeout_s, context=self._ssl_context
            ) as response:
                payload = response.read()
                if response.headers.get_content_type() != "application/json":
                    return payload
                return json.loads(payload) if payload else None
        except urllib.error.HTTPError as error:
            text = error.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                text = json.loads(text).get("error", text)
            raise AdminError(error.code, text) from None

    def stats(self) -> SimStats:
        """The simulator's counters now."""
        return SimStats.from_json(self._call("GET", "/stats"))

    def reset_stats(self) -> SimStats:
        """Zero the counters; returns the fresh ones."""
        return SimStats.from_json(self._call("POST", "/reset-stats"))

    def creates(self) -> list[tuple[float, str, str]]:
        """(wall-clock time, namespace, name) of every pod stored since the last reset,
        oldest first: a name twice is the same pod made twice."""
        return [(float(t), str(ns), str(name))
                for t, ns, name in self._call("GET", "/creates")["created"]]

    def create_times(self) -> list[float]:
        """Wall-clock times of the pods stored since the last reset, oldest first."""
        return [at for at, _, _ in self.creates()]

    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return fault_config_from_json(self._call("GET", "/faults"))

    def set_faults(self, config: FaultConfig | None = None, **fields: Any) -> FaultConfig:
        """Replace the whole fault configuration: ``config``, or a FaultConfig of ``fields``.

        ``verbs`` may map verbs to ``VerbFaults`` or plain dicts, e.g.
        ``set_faults(verbs={"create": {"error_429": 0.5}}, retry_after_s=2)``.
        """
        data = fault_config_to_json(config) if config is not None else _faults_json(fields)
        return fault_config_from_json(self._call("PUT", "/faults", data))

    def update_faults(self, **fields: Any) -> FaultConfig:
        """Change only the fields given (``verbs`` given replaces all verbs' faults)."""
        return fault_config_from_json(self._call("PATCH", "/faults", _faults_json(fields)))

    def clear_faults(self) -> FaultConfig:
        """No faults at all."""
        return self.set_faults(FaultConfig())

    def nodes(self) -> dict[str, dict[str, Any]]:
        """Nodes with readiness and usage."""
        result: dict[str, dict[str, Any]] = self._call("GET", "/nodes")
        return result

    def add_node(self, name: str, cpu: str | None = None, memory: str | None = None,
                 pods: int | None = None, labels: dict[str, str] | None = None,
                 taints: list[dict[str, str]] | None = None) -> None:
        """Add a node (taints as on a Node object); pods waiting for room may be bound to it."""
        body: dict[str, Any] = {"name": name}
        for key, value in (("cpu", cpu), ("memory", memory), ("pods", pods),
                           ("labels", labels), ("taints", taints)):
            if value is not None:
                body[key] = value
        self._call("POST", "/nodes", body)

    def fail_node(self, name: str, mode: str = "fail") -> int:
        """Fail a node: ``fail`` (pods Failed, NodeLost), ``evict`` (Failed, Evicted) or
        ``vanish`` (pods removed). Returns how many pods it ended."""
        result = self._call("POST", f"/nodes/{name}/fail", {"mode": mode})
        return int(result["pods"])

    def recover_node(self, name: str) -> None:
        """Make a failed node Ready again."""
        self._call("POST", f"/nodes/{name}/recover")

    def authorization(self) -> list[AccessDecision]:
        """The RBAC decisions since the last reset (ServiceAccount tokens' requests only)."""
        answer = self._call("GET", "/authorization")
        return [AccessDecision.from_json(d) for d in answer["decisions"]]

    def logs(self, namespace: str, name: str) -> bytes:
        """Output of a local-mode pod's process."""
        result = self._call("GET", f"/logs/{namespace}/{name}")
        return result if isinstance(result, bytes) else orjson.dumps(result)
