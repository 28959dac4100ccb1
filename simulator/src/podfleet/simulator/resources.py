"""The core/v1 resources the simulator serves, and their discovery documents."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podfleet.simulator.store import EVENTS, NAMESPACES, NODES, PODS


@dataclass(frozen=True)
class ResourceType:
    """One served resource: names, scope and verbs as the discovery document lists them."""

    name: str
    singular: str
    kind: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def list_kind(self) -> str:
        return self.kind + "List"


_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

RESOURCES: dict[str, ResourceType] = {
    PODS: ResourceType(PODS, "pod", "Pod", True, _ALL_VERBS, ("po",), ("all",)),
    NODES: ResourceType(NODES, "node", "Node", False, _ALL_VERBS, ("no",)),
    NAMESPACES: ResourceType(
        NAMESPACES,
        "namespace",
        "Namespace",
        False,
        ("create", "delete", "get", "list", "patch", "update", "watch"),
        ("ns",),
    ),
    # Recorded by the simulated scheduler and kubelet; read-only through the API.
    EVENTS: ResourceType(EVENTS, "event", "Event", True, ("get", "list", "watch"), ("ev",)),
}

SUBRESOURCES: dict[str, tuple[str, ...]] = {
    PODS: ("status", "binding", "log"),
    NODES: ("status",),
    NAMESPACES: ("status",),
}


def api_versions(host: str) -> dict[str, Any]:
    """`GET /api`: the legacy group's versions."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
    }


def api_group_list() -> dict[str, Any]:
    """`GET /apis`: no named groups are served."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}


def api_resource_list() -> dict[str, Any]:
    """`GET /api/v1`: what kubectl reads to map `pods`, `po`, `nodes` to URLs."""
    resources: list[dict[str, Any]] = []
    for rt in RESOURCES.values():
        entry: dict[str, Any] = {
            "name": rt.name,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": list(rt.verbs),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in SUBRESOURCES.get(rt.name, ()):
            verbs = {"binding": ["create"], "log": ["get"]}.get(sub, ["get", "patch", "update"])
            kind = "Binding" if sub == "binding" else rt.kind
            resources.append(
                {
                    "name": f"{rt.name}/{sub}",
                    "singularName": "",
                    "namespaced": rt.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                }
            )
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}


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
