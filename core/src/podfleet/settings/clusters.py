"""The configured clusters: ``PODFLEET_CLUSTERS_FILE`` read and checked at start, or the one
cluster named ``default`` made of today's settings.

The file is YAML (or JSON): a list of clusters, or an object whose ``clusters`` is that
list. Each cluster is an object::

    - name: gpu-east                 # required, a DNS-1123 label, unique
      kubeconfig: /etc/podfleet/gpu-east.kubeconfig   # relative: to this file's folder
      context: gpu-east              # a context of that kubeconfig; empty: its current one
      in_cluster: false              # the pod's service account instead of a kubeconfig
      namespaces: [ml]               # watched, and where tasks may run; "*" = all
      launch_rate: 50                # creations per second; 0 = no limit
      max_pending_pods: 200          # pods not yet Running; 0 = no cap
      labels: {gpu: "true", region: us-east}

A field left out takes today's setting: ``kubeconfig`` PODFLEET_KUBECONFIG, ``context``
PODFLEET_KUBE_CONTEXT, ``in_cluster`` PODFLEET_IN_CLUSTER, ``namespaces``
PODFLEET_WATCH_NAMESPACES, ``launch_rate`` PODFLEET_LAUNCH_RATE, ``max_pending_pods``
PODFLEET_MAX_PENDING_PODS. Every fault is one line naming the cluster (a duplicate name, an
unreadable kubeconfig, a context it does not have, a bad label) and stops the process.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from podfleet.contracts.clusters import ClusterSpec, cluster_name_problem, selector_problem
from podfleet.kube.rules import dns1123_label_errors
from podfleet.settings.declaration import SettingsError

VARIABLE = "PODFLEET_CLUSTERS_FILE"
FIELDS = ("name", "kubeconfig", "context", "in_cluster", "namespaces", "launch_rate",
          "max_pending_pods", "labels")


def load_clusters(path: Path, defaults: ClusterSpec, *,
                  environ: Mapping[str, str] | None = None) -> tuple[ClusterSpec, ...]:
    """The clusters of the file at ``path``, each field it leaves out taken from
    ``defaults`` (today's settings); raises SettingsError naming the file and cluster."""
    import yaml  # here, not at import: the command's start-up imports no third party

    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{VARIABLE}={str(path)!r} cannot be read: "
                            f"{_first_line(exc)}") from None
    entries = document.get("clusters") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not entries:
        raise SettingsError(f"{VARIABLE}={str(path)!r} must hold a non-empty list of "
                            "clusters (or an object whose `clusters` is one)")
    specs: list[ClusterSpec] = []
    for index, entry in enumerate(entries):
        spec = _cluster(entry, index, defaults, path.parent)
        if any(spec.name == seen.name for seen in specs):
            raise SettingsError(f"{VARIABLE}: cluster {spec.name!r} is configured twice")
        if not spec.in_cluster:
            check_kubeconfig(spec, environ if environ is not None else os.environ)
        specs.append(spec)
    return tuple(specs)


def _cluster(entry: Any, index: int, defaults: ClusterSpec, folder: Path) -> ClusterSpec:
    if not isinstance(entry, dict):
        raise SettingsError(f"{VARIABLE}: cluster #{index + 1} must be an object")
    name = entry.get("name")
    problem = cluster_name_problem(name)
    if problem:
        raise SettingsError(f"{VARIABLE}: cluster #{index + 1}: {problem}")
    where = f"{VARIABLE}: cluster {name!r}"
    unknown = sorted(set(entry) - set(FIELDS))
    if unknown:
        raise SettingsError(f"{where}: unknown field {unknown[0]!r} (known: "
                            f"{', '.join(FIELDS)})")
    values: dict[str, Any] = {"name": name}
    for key in ("kubeconfig", "context"):
        if entry.get(key) not in (None, ""):
            if not isinstance(entry[key], str):
                raise SettingsError(f"{where}: {key} must be a string")
            values[key] = entry[key]
    if values.get("kubeconfig"):
        values["kubeconfig"] = str(folder / Path(values["kubeconfig"]).expanduser())
    if "in_cluster" in entry:
        if not isinstance(entry["in_cluster"], bool):
            raise SettingsError(f"{where}: in_cluster must be true or false")
        values["in_cluster"] = entry["in_cluster"]
    if "namespaces" in entry:
        values["namespaces"] = _namespaces(where, entry["namespaces"])
    if "launch_rate" in entry:
        values["launch_rate"] = _number(where, "launch_rate", entry["launch_rate"])
    if "max_pending_pods" in entry:
        cap = entry["max_pending_pods"]
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise SettingsError(f"{where}: max_pending_pods must be a whole number ≥ 0, "
                                f"got {cap!r}")
        values["max_pending_pods"] = cap
    labels = entry.get("labels") or {}
    problem = selector_problem(labels)
    if problem:
        raise SettingsError(f"{where}: labels: {problem}")
    values["labels"] = dict(labels)
    return dataclasses.replace(defaults, **values)


def _namespaces(where: str, value: Any) -> tuple[str, ...]:
    listed = [n.strip() for n in value.split(",")] if isinstance(value, str) else value
    if not isinstance(listed, list) or not listed or not all(
            isinstance(n, str) and n for n in listed):
        raise SettingsError(f"{where}: namespaces must be a non-empty list of namespaces "
                            "(or '*')")
    if listed != ["*"]:
        for namespace in listed:
            errors = dns1123_label_errors(namespace)
            if errors:
                raise SettingsError(f"{where}: namespace {namespace!r}: {errors[0]}")
    return tuple(listed)


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value) or value < 0:
        raise SettingsError(f"{where}: {key} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def check_kubeconfig(spec: ClusterSpec, environ: Mapping[str, str]) -> None:
    """The kubeconfig ``spec`` names (or $KUBECONFIG, or ~/.kube/config) can be read and
    has ``spec.context`` (or a current context); raises SettingsError naming the cluster.
    Nothing is contacted: this is what can be known at start."""
    where = f"{VARIABLE}: cluster {spec.name!r}"
    if spec.kubeconfig:
        paths = [spec.kubeconfig]
    elif environ.get("KUBECONFIG"):
        paths = [p for p in environ["KUBECONFIG"].split(os.pathsep) if p]
    else:
        paths = [str(Path("~/.kube/config").expanduser())]
    import yaml  # here, not at import: the command's start-up imports no third party

    contexts: set[str] = set()
    current = None
    for path in paths:
        try:
            config = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise SettingsError(f"{where}: kubeconfig {path!r} cannot be read: "
                                f"{_first_line(exc)}") from None
        if not isinstance(config, dict):
            raise SettingsError(f"{where}: kubeconfig {path!r} is not a kubeconfig")
        contexts.update(str(c.get("name")) for c in config.get("contexts") or []
                        if isinstance(c, dict))
        current = current or config.get("current-context")
    wanted = spec.context or current
    if not wanted:
        raise SettingsError(f"{where}: kubeconfig {', '.join(paths)} has no current context; "
                            "name one (context)")
    if wanted not in contexts:
        raise SettingsError(f"{where}: kubeconfig {', '.join(paths)} has no context "
                            f"{wanted!r} (it has: {', '.join(sorted(contexts)) or 'none'})")


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
