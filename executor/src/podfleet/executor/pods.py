"""The executor's few pod operations: list managed pods, delete pods it no longer wants.

The watcher does the everyday pod work; the executor lists pods only to reconcile and adopt,
and deletes them only for revokes, stuck launches and pods of obsolete launches. Deletions are
remembered so that each such pod gets one delete request however many of its events arrive
(Airflow sent 2-3 per pod, #72803).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from podfleet.kube.client import KubeClient
from podfleet.settings import Settings

log = logging.getLogger("podfleet.executor")

PodRef = tuple[str, str, "str | None"]  # namespace, name, uid when known
# Pods of obsolete launches this executor deleted already, remembered so that each gets one
# delete request however many of its events arrive (Airflow sent 2-3 per pod, #72803).
DELETED_PODS_REMEMBERED = 10_000


class ExecutorPods:
    """Lists and deletes pods through the Kubernetes API, remembering what it deleted."""

    def __init__(self, settings: Settings, kube: Callable[[], KubeClient]) -> None:
        self.settings = settings
        self._kube = kube  # built on first use: most syncs never talk to the API
        # (namespace, name) -> uid of pods deleted for reporting on an obsolete launch.
        self.deleted: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    def scopes(self) -> list[str | None]:
        """Where this executor's pods can be: every watched namespace and the launch
        namespace; ``[None]`` = all namespaces."""
        namespaces = self.settings.kubernetes.watch_namespaces
        if namespaces == ("*",):
            return [None]
        if self.settings.kubernetes.namespace not in namespaces:
            namespaces = (*namespaces, self.settings.kubernetes.namespace)
        return list(namespaces)

    def list_pods(self, selector: str) -> list[dict[str, Any]]:
        """Pods matching ``selector`` in every watched namespace (and the launch namespace)."""
        pods: list[dict[str, Any]] = []
        for namespace in self.scopes():
            pods.extend(self._kube().list_pods(namespace, label_selector=selector).items)
        return pods

    def delete_pods(self, targets: list[PodRef], *, once: bool = False) -> None:
        """Delete pods by name, best effort (the watcher also cleans up finished ones).

        Every pod found and deleted is remembered (the last ``DELETED_PODS_REMEMBERED``).
        With ``once`` (pods that reported for an obsolete launch: each of their events asks
        again) a remembered pod is not deleted again, and one already gone counts as deleted.
        Without it (revoke, stuck QUEUED: the pod may not exist *yet*) the delete is always
        sent, and a 404 is not remembered, so the pod is still deleted once it reports.
        A pod recreated under a remembered name has another uid, and is deleted again.
        """
        for namespace, name, uid in dict.fromkeys(targets):
            if once and self._already_deleted(namespace, name, uid):
                continue
            try:
                found = self._kube().delete_pod(namespace, name)
            except Exception as exc:
                log.warning("cannot delete pod %s/%s: %s", namespace, name, exc)
                continue
            if found or once:
                self.deleted[(namespace, name)] = uid
                self.deleted.move_to_end((namespace, name))
                while len(self.deleted) > DELETED_PODS_REMEMBERED:
                    self.deleted.popitem(last=False)

    def _already_deleted(self, namespace: str, name: str, uid: str | None) -> bool:
        if (namespace, name) not in self.deleted:
            return False
        deleted_uid = self.deleted[(namespace, name)]
        return deleted_uid is None or uid is None or deleted_uid == uid
