"""One API client per configured cluster, built when first asked for and shared after.

A fleet may reach several clusters (``podfleet.contracts.clusters``), each with its own
kubeconfig and context or in-cluster config. :class:`ClusterClients` holds the
:class:`~podfleet.kube.client.KubeClient` of each, built lazily so a process that only ever
talks to one cluster never loads the others' credentials, and so one cluster's broken
credentials fail only the calls that go there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from podfleet.contracts.clusters import ClusterSpec, UnknownCluster
from podfleet.kube.client import KubeClient, RequestObserver

__all__ = ["ClusterClients"]

#: How a cluster's client is made: ``(spec, observer or None) -> KubeClient``.
ClientFactory = Callable[[ClusterSpec, RequestObserver | None], KubeClient]


class ClusterClients:
    """The :class:`KubeClient` of each configured cluster; safe to share between threads.

    ``observe(cluster)`` (optional) gives the request observer of a cluster's client, so
    metrics can carry its ``cluster`` label.
    """

    def __init__(self, clusters: Iterable[ClusterSpec], *, timeout_seconds: float = 10.0,
                 observe: Callable[[str], RequestObserver | None] | None = None,
                 factory: ClientFactory | None = None) -> None:
        self.specs = {spec.name: spec for spec in clusters}
        self.timeout_seconds = timeout_seconds
        self._observe = observe
        self._factory = factory or self._from_spec
        self._clients: dict[str, KubeClient] = {}
        self._lock = threading.Lock()

    def _from_spec(self, spec: ClusterSpec, observe: RequestObserver | None) -> KubeClient:
        return KubeClient.from_cluster(spec, timeout_seconds=self.timeout_seconds,
                                       observe=observe)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.specs)

    def spec(self, cluster: str) -> ClusterSpec:
        """The configuration of ``cluster``; raises UnknownCluster."""
        spec = self.specs.get(cluster)
        if spec is None:
            raise UnknownCluster(cluster, self.specs)
        return spec

    def client(self, cluster: str) -> KubeClient:
        """The client of ``cluster``, built on first use (raises UnknownCluster, or what
        loading its configuration raises)."""
        client = self._clients.get(cluster)
        if client is not None:
            return client
        spec = self.spec(cluster)
        with self._lock:
            client = self._clients.get(cluster)
            if client is None:
                observe = self._observe(cluster) if self._observe is not None else None
                client = self._factory(spec, observe)
                self._clients[cluster] = client
        return client

    def close(self) -> None:
        """Close every client built so far."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()
