"""Clusters: which Kubernetes clusters a task may run on, the one rule both sides apply.

One fleet (one Redis, one worker pool, one metadata DB) may serve several clusters, each
configured by name (``PODFLEET_CLUSTERS_FILE``; without it one cluster named
:data:`DEFAULT_CLUSTER` built from today's settings). A task asks for its cluster in one of
three ways, the first that applies wins:

1. by name: ``executor_config={"cluster": "gpu-east"}``, or the ``podfleet.io/cluster``
   annotation of its ``pod_override`` (the two must agree);
2. by labels: ``executor_config={"cluster_selector": {"gpu": "true"}}``: every cluster whose
   labels hold all of them (within the task queue's clusters when the queue has a list);
3. by its task queue: ``PODFLEET_QUEUE_CLUSTERS`` (``gpu=gpu-east|gpu-west``); a queue without
   a list may use every configured cluster.

In every case only clusters that watch the task's namespace are eligible (a pod nobody
watches would never be seen to finish). The executor computes the eligible clusters at
submit (:func:`eligible_clusters`, whose errors name the cluster or selector) and signs them
into the launch request; the launcher places the pod on one of them, where there is room, and
reports the one it chose in every event (``TaskEvent.cluster``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podfleet.kube.rules import dns1123_label_errors, label_key_errors, label_value_errors

__all__ = [
    "CLUSTER_ANNOTATION",
    "DEFAULT_CLUSTER",
    "ClusterSpec",
    "NoClusterMatches",
    "Placement",
    "PlacementError",
    "UnknownCluster",
    "cluster_name_problem",
    "eligible_clusters",
    "selector_problem",
]

#: The cluster of a fleet configured without ``PODFLEET_CLUSTERS_FILE`` (today's settings),
#: and of every launch message and task event written before clusters existed.
DEFAULT_CLUSTER = "default"

#: The ``pod_override`` annotation that names a task's cluster.
CLUSTER_ANNOTATION = "podfleet.io/cluster"


class PlacementError(ValueError):
    """A task's placement names no cluster it could run on; the message says why."""


class UnknownCluster(PlacementError):
    """A task names a cluster that is not configured."""

    def __init__(self, name: str, configured: Iterable[str]) -> None:
        self.cluster = name
        super().__init__(f"cluster {name!r} is not configured (configured: "
                         f"{', '.join(configured)})")


class NoClusterMatches(PlacementError):
    """No configured cluster satisfies the task's selector, queue and namespace."""


def cluster_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a cluster's name, or None. A DNS-1123 label: it becomes part of
    Redis keys and label values, and a metric's ``cluster`` label."""
    if not isinstance(name, str):
        return f"a cluster name must be a string, not {type(name).__name__}"
    errors = dns1123_label_errors(name)
    return f"cluster name {name!r}: {errors[0]}" if errors else None


def selector_problem(selector: object) -> str | None:
    """Why ``selector`` is not a cluster selector (an object of label keys to label values,
    by Kubernetes' label rules), or None. Also the rule for a cluster's own labels."""
    if not isinstance(selector, Mapping):
        return f"must be an object of label keys to values, not {type(selector).__name__}"
    for key, value in selector.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return f"label {key!r}: keys and values must be strings"
        errors = label_key_errors(key)
        if errors:
            return f"label key {key!r}: {errors[0]}"
        errors = label_value_errors(value)
        if errors:
            return f"label {key}={value!r}: {errors[0]}"
    return None


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """One configured cluster: how to reach it and what it may take.

    ``kubeconfig`` None with ``in_cluster`` False means $KUBECONFIG or ~/.kube/config;
    ``context`` None its current context. ``namespaces`` are those its watcher watches
    (``("*",)``: all) and tasks may run in; ``launch_rate`` creations per second (0 = no
    limit) and ``max_pending_pods`` (0 = no cap) its admission budgets; ``labels`` what
    ``cluster_selector`` matches.
    """

    name: str
    kubeconfig: str | None = None
    context: str | None = None
    in_cluster: bool = False
    namespaces: tuple[str, ...] = ("default",)
    launch_rate: float = 0.0
    max_pending_pods: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def launch_burst(self) -> int:
        """The rate limiter's burst: one second's worth, at least 1."""
        return max(1, int(self.launch_rate))

    def watches(self, namespace: str) -> bool:
        """Whether this cluster's watcher sees pods of ``namespace``."""
        return self.namespaces == ("*",) or namespace in self.namespaces

    def matches(self, selector: Mapping[str, str]) -> bool:
        """Whether this cluster's labels hold every ``key=value`` of ``selector``."""
        return all(self.labels.get(key) == value for key, value in selector.items())


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a task asked to run: a cluster by name, clusters by labels, or neither (its
    queue's clusters). Read from a validated executor_config by :meth:`from_executor_config`."""

    cluster: str | None = None
    selector: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.cluster is not None:
            problem = cluster_name_problem(self.cluster)
            if problem:
                raise PlacementError(problem)
        problem = selector_problem(self.selector)
        if problem:
            raise PlacementError(f"cluster_selector: {problem}")
        if self.cluster is not None and self.selector:
            raise PlacementError("a task names its cluster or selects clusters by labels, "
                                 "not both (cluster and cluster_selector)")

    @classmethod
    def from_executor_config(cls, config: Mapping[str, Any]) -> Placement:
        """The placement a normalised executor_config asks for: ``cluster``, the
        ``pod_override``'s :data:`CLUSTER_ANNOTATION` (which must agree with it), and
        ``cluster_selector``."""
        override = config.get("pod_override") or {}
        annotations = (override.get("metadata") or {}).get("annotations") or {}
        annotated = annotations.get(CLUSTER_ANNOTATION)
        named = config.get("cluster")
        if named is not None and annotated is not None and named != annotated:
            raise PlacementError(f"executor_config.cluster {named!r} and pod_override's "
                                 f"{CLUSTER_ANNOTATION} annotation {annotated!r} disagree")
        return cls(cluster=named if named is not None else annotated,
                   selector=dict(config.get("cluster_selector") or {}))


def eligible_clusters(placement: Placement, *, queue: str | None, namespace: str,
                      clusters: Sequence[ClusterSpec],
                      queue_clusters: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The clusters, in configured order, a task placed by ``placement`` may run on.

    ``queue`` is the task's queue (None: ``default``), ``namespace`` its pod's namespace,
    ``clusters`` every configured cluster and ``queue_clusters`` ``PODFLEET_QUEUE_CLUSTERS``.
    Raises :class:`UnknownCluster` for a name that is not configured and
    :class:`NoClusterMatches` (naming the selector, queue and namespace) when none is left.
    """
    by_name = {spec.name: spec for spec in clusters}
    if placement.cluster is not None:
        spec = by_name.get(placement.cluster)
        if spec is None:
            raise UnknownCluster(placement.cluster, by_name)
        if not spec.watches(namespace):
            raise NoClusterMatches(f"cluster {spec.name!r} does not watch namespace "
                                   f"{namespace!r} (its namespaces: {','.join(spec.namespaces)})")
        return (spec.name,)
    listed = queue_clusters.get(queue or "default")
    candidates = [by_name[name] for name in listed if name in by_name] if listed else clusters
    chosen = tuple(spec.name for spec in candidates
                   if spec.matches(placement.selector) and spec.watches(namespace))
    if not chosen:
        asked = []
        if placement.selector:
            asked.append("cluster_selector " + ",".join(
                f"{k}={v}" for k, v in sorted(placement.selector.items())))
        if listed:
            asked.append(f"queue {queue or 'default'!r} (clusters {'|'.join(listed)})")
        asked.append(f"namespace {namespace!r}")
        raise NoClusterMatches("no configured cluster matches " + ", ".join(asked))
    return chosen
