"""The executor's few pod operations: list managed pods, delete pods it no longer wants.

The watchers do the everyday pod work; the executor lists pods only to reconcile and adopt,
and deletes them only for revokes, stuck launches and pods of obsolete launches. A fleet may
serve several clusters (:mod:`podfleet.contracts.clusters`): every operation names its
cluster, and one that cannot be reached is reported by name while the others carry on.
Deletions are remembered so that each such pod gets one delete request however many of its
events arrive (Airflow sent 2-3 per pod, #72803).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from podfleet.contracts.clusters import ClusterSpec
from podfleet.kube.client import KubeClient

log = logging.getLogger("podfleet.executor")

# Pods of obsolete launches this executor deleted already, remembered so that each gets one
# delete request however many of its events arrive (Airflow sent 2-3 per pod, #72803).
DELETED_PODS_REMEMBERED = 10_000


class PodRef(NamedTuple):
    """A pod to act on: its cluster (None: a launch not placed yet, whose pod may be on any
    configured cluster), namespace, name, and uid when known."""

    cluster: str | None
    namespace: str
    name: str
    uid: str | None


@dataclass
class ClusterPods:
    """What one list over every configured cluster found: each reachable cluster's pods,
    and why each other cluster could not be listed."""

    pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return sum(len(pods) for pods in self.pods.values())


class ExecutorPods:
    """Lists and deletes pods through each cluster's API, remembering what it deleted.

    ``clusters`` are the configured clusters; ``kube`` gives a cluster's client by name
    (built on first use: most syncs never talk to the API).
    """

    def __init__(self, clusters: Sequence[ClusterSpec], launch_namespace: str,
                 kube: Callable[[str], KubeClient]) -> None:
        self.clusters = {spec.name: spec for spec in clusters}
        self.launch_namespace = launch_namespace
        self._kube = kube
        # (cluster, namespace, name) -> uid of pods deleted for reporting on an obsolete
        # launch.
        self.deleted: OrderedDict[tuple[str, str, str], str | None] = OrderedDict()

    def client(self, cluster: str) -> KubeClient:
        """``cluster``'s API client; KeyError names a cluster that is not configured."""
        if cluster not in self.clusters:
            raise KeyError(f"cluster {cluster!r} is not configured")
        return self._kube(cluster)

    def scopes(self, cluster: str) -> list[str | None]:
        """Where this executor's pods can be in ``cluster``: every namespace it watches and
        the launch namespace; ``[None]`` = all namespaces."""
        namespaces = self.clusters[cluster].namespaces
        if namespaces == ("*",):
            return [None]
        if self.launch_namespace not in namespaces:
            namespaces = (*namespaces, self.launch_namespace)
        return list(namespaces)

    def list_pods(self, selector: str) -> ClusterPods:
        """Pods matching ``selector`` in every configured cluster's watched namespaces; a
        cluster that cannot be listed is named in ``unreachable`` and left out."""
        found = ClusterPods()
        for cluster in self.clusters:
            try:
                pods: list[dict[str, Any]] = []
                for namespace in self.scopes(cluster):
                    pods.extend(self._kube(cluster).list_pods(
                        namespace, label_selector=selector).items)
            except Exception as exc:  # an unreachable API, or no usable kubeconfig at all
                found.unreachable[cluster] = str(exc) or type(exc).__name__
                continue
            found.pods[cluster] = pods
        return found

    def delete_pods(self, targets: list[PodRef], *, once: bool = False) -> None:
        """Delete pods by name, best effort (the watchers also clean up finished ones).

        A target without a cluster (a launch not placed yet) is deleted in every configured
        cluster. Every pod found and deleted is remembered (the last
        ``DELETED_PODS_REMEMBERED``). With ``once`` (pods that reported for an obsolete
        launch: each of their events asks again) a remembered pod is not deleted again, and
        one already gone counts as deleted. Without it (revoke, stuck QUEUED: the pod may not
        exist *yet*) the delete is always sent, and a 404 is not remembered, so the pod is
        still deleted once it reports. A pod recreated under a remembered name has another
        uid, and is deleted again.
        """
        for cluster, namespace, name, uid in dict.fromkeys(targets):
            for where in (self.clusters if cluster is None else (cluster,)):
                self._delete(where, namespace, name, uid, once=once)

    def _delete(self, cluster: str, namespace: str, name: str, uid: str | None, *,
                once: bool) -> None:
        if once and self._already_deleted(cluster, namespace, name, uid):
            return
        try:
            found = self.client(cluster).delete_pod(namespace, name)
        except Exception as exc:
            log.warning("cannot delete pod %s/%s in cluster %s: %s", namespace, name,
                        cluster, exc)
            return
        if found or once:
            self.deleted[(cluster, namespace, name)] = uid
            self.deleted.move_to_end((cluster, namespace, name))
            while len(self.deleted) > DELETED_PODS_REMEMBERED:
                self.deleted.popitem(last=False)

    def _already_deleted(self, cluster: str, namespace: str, name: str,
                         uid: str | None) -> bool:
        if (cluster, namespace, name) not in self.deleted:
            return False
        deleted_uid = self.deleted[(cluster, namespace, name)]
        return deleted_uid is None or uid is None or deleted_uid == uid
