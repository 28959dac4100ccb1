"""The discovery documents kubectl and the clients read: what is served, and where."""

from __future__ import annotations

from typing import Any

from podfleet.simulator.apiserver.kind import Kind
from podfleet.simulator.apiserver.registry import KindRegistry


def api_versions(host: str) -> dict[str, Any]:
    """`GET /api`: the legacy group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def api_group_list(kinds: KindRegistry) -> dict[str, Any]:
    """`GET /apis`: the named groups served (the core group is under /api)."""
    groups: dict[str, list[str]] = {}
    for group, version in kinds.group_versions():
        if group:
            groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_api_group(group, versions) for group, versions in groups.items()],
    }


def _api_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group(kinds: KindRegistry, group: str) -> dict[str, Any] | None:
    """`GET /apis/{group}`, or None when the group is not served."""
    versions = [v for g, v in kinds.group_versions() if g == group]
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, versions)}


def _resource_entries(kind: Kind) -> list[dict[str, Any]]:
    entry: dict[str, Any] = {
        "name": kind.resource,
        "singularName": kind.singular,
        "namespaced": kind.namespaced,
        "kind": kind.kind,
        "verbs": list(kind.verbs),
    }
    if kind.short_names:
        entry["shortNames"] = list(kind.short_names)
    if kind.categories:
        entry["categories"] = list(kind.categories)
    entries = [entry]
    for sub in kind.subresources:
        sub_entry: dict[str, Any] = {
            "name": f"{kind.resource}/{sub.name}",
            "singularName": "",
            "namespaced": kind.namespaced,
            "kind": sub.kind or kind.kind,
            "verbs": list(sub.verbs),
        }
        if sub.group:  # kubectl drain finds the Eviction's group version here
            sub_entry["group"] = sub.group
            sub_entry["version"] = sub.version
        entries.append(sub_entry)
    return entries


def api_resource_list(kinds: KindRegistry, group: str, version: str) -> dict[str, Any] | None:
    """`GET /api/v1`, `GET /apis/{group}/{version}`: what kubectl maps `po`, `nodes` to URLs
    with; None when that group version is not served."""
    served = kinds.in_group_version(group, version)
    if not served:
        return None
    resources = [entry for kind in served for entry in _resource_entries(kind)]
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "groupVersion": group_version, "resources": resources}


def version_info(git_version: str) -> dict[str, Any]:
    """`GET /version`."""
    parts = git_version.lstrip("v").split(".")
    return {
        "major": parts[0],
        "minor": parts[1] if len(parts) > 1 else "0",
        "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    }
