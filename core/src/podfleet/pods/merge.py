"""Merging pod JSON the way Airflow's ``PodGenerator.reconcile_pods`` merges V1Pods.

Airflow users write a ``pod_override`` expecting its semantics, so podfleet keeps them, on the
API's plain JSON instead of model objects:

- a field the override sets replaces the base's; a field it leaves out (or null) keeps the
  base's (nested objects such as ``resources`` or ``affinity`` are replaced whole);
- ``metadata.labels`` and ``metadata.annotations`` merge key by key, the override winning;
  ``finalizers`` and ``ownerReferences`` are extended;
- containers are matched by name; an override container named like the base container, named
  ``base`` (Airflow's convention) or unnamed merges into the first container — the task's;
  other override containers are added as sidecars;
- lists of named things merge by name instead of being concatenated as Airflow does, because
  the API rejects a pod with two volumes, env vars or mounts of one name (or path) — the
  override's entry replaces the base's in place, new ones are appended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BASE_CONTAINER_NAME = "base"

# container list field -> identity of an entry (entries with the same identity merge)
_CONTAINER_KEYED_LISTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "env": lambda e: e.get("name"),
    "volumeMounts": lambda m: m.get("mountPath"),
    "volumeDevices": lambda d: d.get("devicePath"),
    "ports": lambda p: (p.get("containerPort"), p.get("protocol", "TCP")),
}
_CONTAINER_EXTENDED_LISTS = ("envFrom",)


def merge_keyed(base: list[Any] | None, override: list[Any] | None,
                identity: Callable[[dict[str, Any]], Any]) -> list[Any] | None:
    """``base`` with each ``override`` entry replacing the base entry of the same identity
    (in place) or appended; entries without an identity are appended."""
    if not override:
        return base
    if not base:
        return list(override)
    result = list(base)
    index = {identity(item): i for i, item in enumerate(result)
             if isinstance(item, dict) and identity(item) is not None}
    for item in override:
        key = identity(item) if isinstance(item, dict) else None
        if key is not None and key in index:
            result[index[key]] = item
        else:
            if key is not None:
                index[key] = len(result)
            result.append(item)
    return result


def _extend(base: list[Any] | None, override: list[Any] | None) -> list[Any] | None:
    if not override:
        return base
    if not base:
        return list(override)
    return list(base) + [item for item in override if item not in base]


def _overlay(base: dict[str, Any], override: dict[str, Any], skip: tuple[str, ...]) -> None:
    """Set every non-null field of ``override`` (but ``skip``) on ``base``, in place."""
    for key, value in override.items():
        if key not in skip and value is not None:
            base[key] = value


def merge_container(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """One container: keyed lists merged by identity, envFrom extended, the rest overlaid."""
    merged = dict(base)
    skip = (*_CONTAINER_KEYED_LISTS, *_CONTAINER_EXTENDED_LISTS)
    _overlay(merged, override, skip)
    for field, identity in _CONTAINER_KEYED_LISTS.items():
        value = merge_keyed(base.get(field), override.get(field), identity)
        if value is not None:
            merged[field] = value
    for field in _CONTAINER_EXTENDED_LISTS:
        value = _extend(base.get(field), override.get(field))
        if value is not None:
            merged[field] = value
    return merged


def merge_containers(base: list[dict[str, Any]] | None,
                     override: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Containers matched by name; the task's (first) container also takes ``base``/unnamed."""
    if not override:
        return base
    if not base:
        return [dict(c) for c in override]
    result = [dict(c) for c in base]
    first_name = result[0].get("name")
    for container in override:
        name = container.get("name")
        if name in (None, "", BASE_CONTAINER_NAME, first_name):
            target = 0
        else:
            target = next((i for i, c in enumerate(result) if c.get("name") == name), -1)
        if target < 0:
            result.append(dict(container))
        else:
            merged = merge_container(result[target], container)
            if target == 0 and first_name:
                merged["name"] = first_name  # the task container keeps its name
            result[target] = merged
    return result


def _merge_maps(base: dict[str, Any] | None,
                override: dict[str, Any] | None) -> dict[str, Any] | None:
    if not override and not base:
        return None
    return {**(base or {}), **(override or {})}


_Merger = Callable[[Any, Any], Any]


def _merge_object(base: dict[str, Any] | None, override: dict[str, Any] | None,
                  fields: dict[str, _Merger]) -> dict[str, Any] | None:
    """``override``'s non-null fields set on a copy of ``base``, but each of ``fields`` merged
    by its merger (a merger's None keeps the base's)."""
    if not override:
        return base
    if not base:
        return dict(override)
    merged = dict(base)
    _overlay(merged, override, tuple(fields))
    for field, merge in fields.items():
        value = merge(base.get(field), override.get(field))
        if value is not None:
            merged[field] = value
    return merged


def _merge_by_name(base: list[Any] | None, override: list[Any] | None) -> list[Any] | None:
    return merge_keyed(base, override, lambda item: item.get("name"))


_METADATA_FIELDS: dict[str, _Merger] = {
    "labels": _merge_maps, "annotations": _merge_maps,
    "finalizers": _extend, "ownerReferences": _extend,
}
_SPEC_FIELDS: dict[str, _Merger] = {
    "containers": merge_containers, "initContainers": _merge_by_name, "volumes": _merge_by_name,
}


def merge_metadata(base: dict[str, Any] | None,
                   override: dict[str, Any] | None) -> dict[str, Any] | None:
    return _merge_object(base, override, _METADATA_FIELDS)


def merge_spec(base: dict[str, Any] | None,
               override: dict[str, Any] | None) -> dict[str, Any] | None:
    return _merge_object(base, override, _SPEC_FIELDS)


def reconcile_pods(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """``override`` merged onto ``base`` (neither is modified); see the module docstring."""
    merged = _merge_object(base, override, {"metadata": merge_metadata, "spec": merge_spec})
    assert merged is not None  # base is a dict
    return merged
