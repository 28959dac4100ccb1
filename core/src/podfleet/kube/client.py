"""Plain-JSON access to the Kubernetes API, through the official client's own transport.

The official ``kubernetes`` client is kept for what it does well and what must not be
re-invented: reading kubeconfig files and in-cluster config, exec and OIDC auth plugins, token
refresh, TLS. Its generated models cost about a millisecond of CPU per pod create (measured),
which would cap a launcher core at ~1,000 creates/s, so podfleet's hot paths send and receive
plain JSON (orjson) over the same urllib3 pool the official client configured. The surface used
here (``Configuration.auth_settings``, ``ApiClient.rest_client.pool_manager``) is the same in
the 36.x and 37.x clients.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import quote, urlencode

import msgspec
import orjson
import urllib3

from podfleet.kube.errors import (
    BadRequest,
    KubeError,
    NotFound,
    Unreachable,
    error_from_response,
)
from podfleet.kube.watch_events import decode_watch_event

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
except ImportError as exc:  # pragma: no cover - a hard dependency
    raise ImportError("podfleet needs the official `kubernetes` client (36.x or 37.x)") from exc

JSON = "application/json"
USER_AGENT = "podfleet"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# How long auth headers from the client's configuration are reused before asking it again.
AUTH_CACHE_SECONDS = 1.0

class AuthHeaders:
    """Auth headers from the official client's configuration, reused briefly.

    ``auth_settings()`` runs the configuration's refresh hook (exec plugins, rotated in-cluster
    tokens). With a kubeconfig that hook re-applies the whole config, ≈ 60 µs a call, so the
    result is reused for ``ttl_seconds``: far shorter than any token's lifetime. One instance
    is shared by the sync and async clients of a process; safe to call from any thread.
    """

    def __init__(self, configuration: Any, ttl_seconds: float = AUTH_CACHE_SECONDS) -> None:
        self.configuration = configuration
        self.ttl_seconds = ttl_seconds
        self._cache: tuple[float, dict[str, str]] | None = None

    def cached(self) -> dict[str, str] | None:
        """The headers if they were read less than ``ttl_seconds`` ago, else None."""
        cached = self._cache
        if cached is not None and time.monotonic() - cached[0] < self.ttl_seconds:
            return cached[1]
        return None

    def refresh(self) -> dict[str, str]:
        """Ask the configuration again (may run an exec plugin: can block)."""
        now = time.monotonic()
        headers: dict[str, str] = {}
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        self._cache = (now, headers)
        return headers

    def headers(self) -> dict[str, str]:
        cached = self.cached()
        return cached if cached is not None else self.refresh()


class _NamedMeta(TypedDict, total=False):
    name: str


class _Named(TypedDict):
    metadata: _NamedMeta


class _NamedList(TypedDict):
    items: list[_Named]


# A list answer read for its items' names only: the rest of each object is skipped unbuilt.
_NAMES = msgspec.json.Decoder(_NamedList)


def _deleted_names(data: bytes) -> list[str]:
    """The names of the objects in a DeleteCollection's answer (a list of them)."""
    try:
        items = _NAMES.decode(data)["items"]
    except msgspec.ValidationError:  # an odd shape: read it whole
        items = orjson.loads(data).get("items") or []
    return [str(item["metadata"]["name"]) for item in items
            if isinstance(item, dict) and "name" in (item.get("metadata") or {})]


@dataclass(frozen=True, slots=True)
class PodList:
    items: list[dict[str, Any]]
    resource_version: str


#: Told of every request once it is answered or has failed: (verb, HTTP status or 0 when no
#: answer came, seconds). Metrics hang here, so this layer needs no metrics of its own.
RequestObserver = Callable[[str, int, float], None]
_METHOD_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}


class KubeClient:
    """Pods over plain JSON; one instance per process, safe to share between threads."""

    def __init__(self, api_client: Any, *, timeout_seconds: float = 10.0,
                 observe: RequestObserver | None = None) -> None:
        self.observe = observe
        self.api_client = api_client
        self.configuration = api_client.configuration
        self.host = str(self.configuration.host).rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._pool: urllib3.PoolManager = api_client.rest_client.pool_manager
        self.auth = AuthHeaders(self.configuration)

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_config(cls, *, kubeconfig: str | None = None, context: str | None = None,
                    in_cluster: bool = False, timeout_seconds: float = 10.0,
                    pool_maxsize: int = 64, observe: RequestObserver | None = None
                    ) -> KubeClient:
        """Load in-cluster config or a kubeconfig (``None``: $KUBECONFIG or ~/.kube/config)."""
        configuration = k8s_client.Configuration()
        if in_cluster:
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                        client_configuration=configuration)
        configuration.connection_pool_maxsize = pool_maxsize
        return cls(k8s_client.ApiClient(configuration), timeout_seconds=timeout_seconds,
                   observe=observe)

    @classmethod
    def from_cluster(cls, spec: Any, *, timeout_seconds: float = 10.0,
                     observe: RequestObserver | None = None) -> KubeClient:
        """Build for one configured cluster (a
        :class:`~podfleet.contracts.clusters.ClusterSpec`: in-cluster config, or its
        kubeconfig file and context)."""
        return cls.from_config(kubeconfig=spec.kubeconfig, context=spec.context,
                               in_cluster=spec.in_cluster, timeout_seconds=timeout_seconds,
                               observe=observe)

    @classmethod
    def from_settings(cls, settings: Any, observe: RequestObserver | None = None
                      ) -> KubeClient:
        """Build from ``Settings.kubernetes``."""
        return cls.from_config(kubeconfig=settings.kubeconfig, context=settings.context,
                               in_cluster=settings.in_cluster,
                               timeout_seconds=settings.timeout_seconds, observe=observe)

    def _observed(self, verb: str, status: int, started: float) -> None:
        if self.observe is not None:
            self.observe(verb, status, time.perf_counter() - started)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.api_client.close()

    # --- transport ----------------------------------------------------------------------

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": USER_AGENT, **self.auth.headers()}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        return api_url(self.host, path, query)

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
                body: Any = None, content_type: str | None = None,
                timeout: float | None = None, verb: str | None = None,
                decode: Callable[[bytes], Any] = orjson.loads) -> Any:
        """Send one request; return the parsed JSON answer.

        Raises the :class:`~podfleet.kube.errors.KubeError` subclass that names an error
        answer, or :class:`~podfleet.kube.errors.Unreachable` when no answer came.

        ``verb`` names it for the observer (default: from the method: get, create, …);
        ``decode`` parses a successful answer (one that reads only some fields may be faster).
        """
        data = orjson.dumps(body) if body is not None else None
        started = time.perf_counter()
        verb = verb or _METHOD_VERBS.get(method, method.lower())
        try:
            response = self._pool.request(
                method, self.url(path, query), body=data,
                headers=self._headers(content_type or (JSON if data is not None else None)),
                timeout=urllib3.Timeout(total=timeout or self.timeout_seconds),
                retries=False, preload_content=True,
            )
        except urllib3.exceptions.HTTPError as exc:
            self._observed(verb, 0, started)
            raise connection_error(f"{method} {path}", exc) from None
        self._observed(verb, response.status, started)
        if response.status >= 400:
            raise error_from_response(response.status, response.data, response.headers)
        return decode(response.data) if response.data else None

    # --- resource quotas ----------------------------------------------------------------

    def list_resource_quotas(self, namespace: str) -> list[dict[str, Any]]:
        """The ResourceQuota objects of ``namespace`` (an empty list when it has none)."""
        page = self.request("GET", f"/api/v1/namespaces/{quote(namespace)}/resourcequotas",
                            verb="list")
        return list(page.get("items") or [])

    # --- pods ---------------------------------------------------------------------------

    @staticmethod
    def pods_path(namespace: str | None, name: str | None = None) -> str:
        base = f"/api/v1/namespaces/{quote(namespace)}/pods" if namespace else "/api/v1/pods"
        return f"{base}/{quote(name)}" if name else base

    def create_pod(self, namespace: str, pod: Mapping[str, Any],
                   timeout: float | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", self.pods_path(namespace), body=pod,
                                              timeout=timeout)
        return result

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod, or None when it does not exist."""
        try:
            result: dict[str, Any] = self.request("GET", self.pods_path(namespace, name))
        except NotFound:
            return None
        return result

    def delete_pod(self, namespace: str, name: str, *,
                   grace_period_seconds: int | None = None) -> bool:
        """Delete a pod; False when it was already gone (404 is not an error here)."""
        query = {"gracePeriodSeconds": grace_period_seconds}
        try:
            self.request("DELETE", self.pods_path(namespace, name), query=query)
        except NotFound:
            return False
        return True

    def delete_pods(self, namespace: str, label_selector: str, *,
                    timeout: float | None = None) -> list[str]:
        """Delete every pod of ``namespace`` that ``label_selector`` matches, in one request
        (the API's DeleteCollection, verb ``deletecollection``); return the names it deleted.

        The API server lists what matches and deletes each, skipping any already gone, so a
        pod deleted meanwhile is simply not in the answer. It is not atomic: on an error some
        may be deleted already, and a retry lists again and finds only the others. Only the
        names are decoded from the answer, a list of the deleted pods.
        """
        names: list[str] = self.request(
            "DELETE", self.pods_path(namespace), query={"labelSelector": label_selector},
            timeout=timeout, verb="deletecollection", decode=_deleted_names)
        return names or []

    def patch_pod(self, namespace: str, name: str, patch: Mapping[str, Any], *,
                  strategic: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "PATCH", self.pods_path(namespace, name), body=patch,
            content_type=STRATEGIC_MERGE_PATCH if strategic else MERGE_PATCH)
        return result

    def list_pod_page(self, namespace: str | None = None, *, label_selector: str | None = None,
                      field_selector: str | None = None, page_size: int = 500,
                      continue_token: str | None = None) -> dict[str, Any]:
        """One page of a pod list (``items``, and ``metadata.continue`` while more follow);
        Gone when ``continue_token`` has expired."""
        page: dict[str, Any] = self.request("GET", self.pods_path(namespace), query={
            "labelSelector": label_selector, "fieldSelector": field_selector,
            "limit": page_size, "continue": continue_token}, verb="list")
        return page

    def list_pods(self, namespace: str | None = None, *, label_selector: str | None = None,
                  field_selector: str | None = None, page_size: int = 500) -> PodList:
        """Every matching pod, read in pages; the list's resourceVersion is the first page's."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        resource_version = ""
        while True:
            page = self.list_pod_page(namespace, label_selector=label_selector,
                                      field_selector=field_selector, page_size=page_size,
                                      continue_token=token)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            resource_version = resource_version or str(meta.get("resourceVersion", ""))
            token = meta.get("continue") or None
            if not token:
                return PodList(items, resource_version)

    def watch_pods(self, namespace: str | None = None, *, resource_version: str | None,
                   label_selector: str | None = None, timeout_seconds: int = 300,
                   allow_bookmarks: bool = True,
                   read_timeout: float = 60.0) -> Iterator[dict[str, Any]]:
        """Stream watch events (``{"type", "object"}`` dicts) until the server ends the stream.

        Each pod carries only the fields podfleet reads
        (:data:`podfleet.kube.watch_events.WatchedPod`), decoded without building the rest.

        An ERROR event is yielded as it comes (a 410 arrives that way:
        :func:`~podfleet.kube.errors.error_from_status` names it); an HTTP error before the
        stream starts raises its KubeError (Gone for a 410); silence longer than
        ``read_timeout`` raises Unreachable, so a frozen connection is noticed rather than
        waited on forever.
        """
        query = {"watch": "true", "resourceVersion": resource_version,
                 "labelSelector": label_selector, "timeoutSeconds": timeout_seconds,
                 "allowWatchBookmarks": "true" if allow_bookmarks else None}
        path = self.pods_path(namespace)
        started = time.perf_counter()
        try:
            response = self._pool.request(
                "GET", self.url(path, query), headers=self._headers(None),
                timeout=urllib3.Timeout(connect=self.timeout_seconds, read=read_timeout),
                retries=False, preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            self._observed("watch", 0, started)
            raise connection_error(f"watch {path}", exc) from None
        self._observed("watch", response.status, started)  # the stream's opening, not its life
        try:
            if response.status >= 400:
                raise error_from_response(response.status, response.read(), response.headers)
            pending = b""
            try:
                for chunk in response.stream(65536):
                    pending += chunk
                    if b"\n" not in pending:
                        continue
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield decode_watch_event(line)
            except urllib3.exceptions.ReadTimeoutError:
                raise Unreachable(
                    "Timeout", f"watch {path}: no data for {read_timeout}s") from None
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError) as exc:
                raise Unreachable("ConnectionError", f"watch {path}: {exc}") from None
            if pending.strip():
                yield decode_watch_event(pending)
        finally:
            response.release_conn()


    # --- pod logs -----------------------------------------------------------------------

    def stream_pod_log(self, namespace: str, name: str, *, container: str | None = None,
                       follow: bool = False, tail_lines: int | None = None,
                       timestamps: bool = False, previous: bool = False,
                       read_timeout: float | None = None) -> Iterator[bytes]:
        """A container's log (``pods/{name}/log``) as it arrives, in chunks of raw bytes.

        With ``follow`` the stream stays open until the container exits (or the server ends
        it); ``read_timeout`` None waits for output however long a quiet task stays quiet.
        Raises before the first chunk: NotFound for a pod that does not exist, BadRequest
        for one whose container has not started (:func:`container_not_started`).
        """
        query = {"container": container, "follow": "true" if follow else None,
                 "tailLines": tail_lines, "timestamps": "true" if timestamps else None,
                 "previous": "true" if previous else None}
        path = self.pods_path(namespace, name) + "/log"
        if read_timeout is None and not follow:
            read_timeout = self.timeout_seconds
        headers = {**self._headers(None), "Accept": "*/*"}
        try:
            response = self._pool.request(
                "GET", self.url(path, query), headers=headers,
                timeout=urllib3.Timeout(connect=self.timeout_seconds, read=read_timeout),
                retries=False, preload_content=False)
        except urllib3.exceptions.HTTPError as exc:
            raise connection_error(f"log {path}", exc) from None
        try:
            if response.status >= 400:
                raise error_from_response(response.status, response.read(), response.headers)
            try:
                for chunk in response.stream(65536, decode_content=True):
                    if chunk:
                        yield chunk
            except urllib3.exceptions.ReadTimeoutError:
                raise Unreachable(
                    "Timeout", f"log {path}: no data for {read_timeout}s") from None
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.HTTPError) as exc:
                raise Unreachable("ConnectionError", f"log {path}: {exc}") from None
        finally:
            response.release_conn()

    def read_pod_log(self, namespace: str, name: str, *, container: str | None = None,
                     tail_lines: int | None = None) -> bytes:
        """A container's whole log so far (or its last ``tail_lines`` lines)."""
        return b"".join(self.stream_pod_log(namespace, name, container=container,
                                            tail_lines=tail_lines))


def connection_error(what: str, exc: urllib3.exceptions.HTTPError) -> Unreachable:
    """An Unreachable saying whether the server was unreachable or slow.

    urllib3 makes a refused connection (``NewConnectionError``) a subclass of
    ``ConnectTimeoutError``, so it is told apart first: "refused" and "timed out" call for
    different fixes.
    """
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return Unreachable("ConnectionError", f"{what}: cannot connect: {exc}", sent=False)
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return Unreachable("Timeout", f"{what}: {exc}")
    return Unreachable("ConnectionError", f"{what}: {exc}")


def container_not_started(exc: KubeError | Unreachable) -> bool:
    """The log request was refused because the container has not started (or never will):
    the API server answers 400 "container ... is waiting to start" (or "... not found")."""
    return isinstance(exc, BadRequest) and ("waiting to start" in exc.message
                                            or "ContainerCreating" in exc.message
                                            or "PodInitializing" in exc.message)


def api_url(host: str, path: str, query: Mapping[str, Any] | None = None) -> str:
    """``host`` + ``path`` + the query's non-None parameters."""
    params = {k: v for k, v in (query or {}).items() if v is not None}
    return host + path + ("?" + urlencode(params) if params else "")
