"""The shapes of the objects the simulator serves, in a compact description of our own.

One table, `TYPES`, says which fields each type has and what they hold. From it come the
OpenAPI documents (`openapi.py`, what kubectl reads to validate and to compute patches) and
the server-side field validation (`unknown_fields`, what `fieldValidation=Strict` rejects), so
the two can never disagree.

A field's type is written as a short string:

- `string`, `boolean`, `int32`, `int64`, `number`, `date-time`, `quantity` (a resource
  quantity: string or number), `int-or-string`;
- `object`: free-form (any fields kept, none checked), for parts of the API the simulator
  does not look into (affinity, probes, security contexts, volume sources, ...);
- a type name from `TYPES` (`ObjectMeta`, `PodSpec`, ...);
- `[]T`: a list of T, `{}T`: a map from strings to T;
- a list may end in `merge=KEY` (a strategic merge patch merges its items by KEY, as for
  `containers` by `name`) or `merge` (a list of scalars merged as a set, as `finalizers`).

Every field of the real types is listed (those of the newest official client too, which a
test checks), so a valid object is never refused; a field no real type has is what
`fieldValidation=Strict` refuses, as a real server does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

CORE = "io.k8s.api.core.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."

#: Types from apimachinery's meta/v1 (named io.k8s.apimachinery.pkg.apis.meta.v1.X).
META_TYPES = frozenset(
    {"ObjectMeta", "ListMeta", "OwnerReference", "ManagedFieldsEntry", "Status", "DeleteOptions"}
)

_OBJECT_HEAD = {"apiVersion": "string", "kind": "string", "metadata": "ObjectMeta"}
_LIST_HEAD = {"apiVersion": "string", "kind": "string", "metadata": "ListMeta"}

TYPES: dict[str, dict[str, str]] = {
    # ---------------------------------------------------------------- meta/v1
    "ObjectMeta": {
        "name": "string",
        "generateName": "string",
        "namespace": "string",
        "selfLink": "string",
        "uid": "string",
        "resourceVersion": "string",
        "generation": "int64",
        "creationTimestamp": "date-time",
        "deletionTimestamp": "date-time",
        "deletionGracePeriodSeconds": "int64",
        "labels": "{}string",
        "annotations": "{}string",
        "ownerReferences": "[]OwnerReference merge=uid",
        "finalizers": "[]string merge",
        "managedFields": "[]ManagedFieldsEntry",
    },
    "OwnerReference": {
        "apiVersion": "string",
        "kind": "string",
        "name": "string",
        "uid": "string",
        "controller": "boolean",
        "blockOwnerDeletion": "boolean",
    },
    "ManagedFieldsEntry": {
        "manager": "string",
        "operation": "string",
        "apiVersion": "string",
        "time": "date-time",
        "fieldsType": "string",
        "fieldsV1": "object",
        "subresource": "string",
    },
    "ListMeta": {
        "selfLink": "string",
        "resourceVersion": "string",
        "continue": "string",
        "remainingItemCount": "int64",
        "shardInfo": "object",
    },
    "Status": {
        "apiVersion": "string",
        "kind": "string",
        "metadata": "ListMeta",
        "status": "string",
        "message": "string",
        "reason": "string",
        "details": "object",
        "code": "int32",
    },
    "DeleteOptions": {
        "apiVersion": "string",
        "kind": "string",
        "gracePeriodSeconds": "int64",
        "preconditions": "object",
        "orphanDependents": "boolean",
        "propagationPolicy": "string",
        "dryRun": "[]string",
        "ignoreStoreReadErrorWithClusterBreakingPotential": "boolean",
    },
    # ---------------------------------------------------------------- core/v1 Pod
    "Pod": {**_OBJECT_HEAD, "spec": "PodSpec", "status": "PodStatus"},
    "PodList": {**_LIST_HEAD, "items": "[]Pod"},
    "PodSpec": {
        "volumes": "[]Volume merge=name",
        "initContainers": "[]Container merge=name",
        "containers": "[]Container merge=name",
        "ephemeralContainers": "[]object merge=name",
        "restartPolicy": "string",
        "terminationGracePeriodSeconds": "int64",
        "activeDeadlineSeconds": "int64",
        "dnsPolicy": "string",
        "nodeSelector": "{}string",
        "serviceAccountName": "string",
        "serviceAccount": "string",
        "automountServiceAccountToken": "boolean",
        "nodeName": "string",
        "hostNetwork": "boolean",
        "hostPID": "boolean",
        "hostIPC": "boolean",
        "shareProcessNamespace": "boolean",
        "securityContext": "object",
        "imagePullSecrets": "[]LocalObjectReference merge=name",
        "hostname": "string",
        "subdomain": "string",
        "affinity": "object",
        "schedulerName": "string",
        "tolerations": "[]object",
        "hostAliases": "[]object merge=ip",
        "priorityClassName": "string",
        "priority": "int32",
        "dnsConfig": "object",
        "readinessGates": "[]object",
        "runtimeClassName": "string",
        "enableServiceLinks": "boolean",
        "preemptionPolicy": "string",
        "overhead": "{}quantity",
        "topologySpreadConstraints": "[]object merge=topologyKey",
        "setHostnameAsFQDN": "boolean",
        "os": "object",
        "hostUsers": "boolean",
        "schedulingGates": "[]object merge=name",
        "resourceClaims": "[]object merge=name",
        "resources": "ResourceRequirements",
        "evictionResponders": "[]object",
        "hostnameOverride": "string",
        "schedulingGroup": "object",
    },
    "Container": {
        "name": "string",
        "image": "string",
        "command": "[]string",
        "args": "[]string",
        "workingDir": "string",
        "ports": "[]ContainerPort merge=containerPort",
        "envFrom": "[]object",
        "env": "[]EnvVar merge=name",
        "resources": "ResourceRequirements",
        "resizePolicy": "[]object",
        "restartPolicy": "string",
        "volumeMounts": "[]VolumeMount merge=mountPath",
        "volumeDevices": "[]object merge=devicePath",
        "livenessProbe": "object",
        "readinessProbe": "object",
        "startupProbe": "object",
        "lifecycle": "object",
        "terminationMessagePath": "string",
        "terminationMessagePolicy": "string",
        "imagePullPolicy": "string",
        "securityContext": "object",
        "stdin": "boolean",
        "stdinOnce": "boolean",
        "tty": "boolean",
        "restartPolicyRules": "[]object",
    },
    "ContainerPort": {
        "name": "string",
        "hostPort": "int32",
        "containerPort": "int32",
        "protocol": "string",
        "hostIP": "string",
    },
    "EnvVar": {"name": "string", "value": "string", "valueFrom": "object"},
    "VolumeMount": {
        "name": "string",
        "readOnly": "boolean",
        "recursiveReadOnly": "string",
        "mountPath": "string",
        "subPath": "string",
        "mountPropagation": "string",
        "subPathExpr": "string",
        "bindMountOptions": "[]string",
    },
    "ResourceRequirements": {
        "limits": "{}quantity",
        "requests": "{}quantity",
        "claims": "[]object merge=name",
    },
    "LocalObjectReference": {"name": "string"},
    "Volume": {
        "name": "string",
        **{
            source: "object"
            for source in (
                "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo",
                "secret", "nfs", "iscsi", "glusterfs", "persistentVolumeClaim", "rbd",
                "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc", "azureFile",
                "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk",
                "projected", "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral",
                "image",
            )
        },
    },
    "PodStatus": {
        "phase": "string",
        "conditions": "[]PodCondition merge=type",
        "message": "string",
        "reason": "string",
        "nominatedNodeName": "string",
        "hostIP": "string",
        "hostIPs": "[]object merge=ip",
        "podIP": "string",
        "podIPs": "[]object merge=ip",
        "startTime": "date-time",
        "initContainerStatuses": "[]ContainerStatus",
        "containerStatuses": "[]ContainerStatus",
        "qosClass": "string",
        "ephemeralContainerStatuses": "[]ContainerStatus",
        "resize": "string",
        "resourceClaimStatuses": "[]object merge=name",
        "observedGeneration": "int64",
        "allocatedResources": "{}quantity",
        "resources": "ResourceRequirements",
        "extendedResourceClaimStatus": "object",
        "nodeAllocatableResourceClaimStatuses": "[]object",
        "volumeHealth": "[]object",
    },
    "PodCondition": {
        "type": "string",
        "observedGeneration": "int64",
        "status": "string",
        "lastProbeTime": "date-time",
        "lastTransitionTime": "date-time",
        "reason": "string",
        "message": "string",
    },
    "ContainerStatus": {
        "name": "string",
        "state": "ContainerState",
        "lastState": "ContainerState",
        "ready": "boolean",
        "restartCount": "int32",
        "image": "string",
        "imageID": "string",
        "containerID": "string",
        "started": "boolean",
        "allocatedResources": "{}quantity",
        "resources": "ResourceRequirements",
        "volumeMounts": "[]object",
        "user": "object",
        "allocatedResourcesStatus": "[]object",
        "stopSignal": "string",
    },
    "ContainerState": {
        "waiting": "ContainerStateWaiting",
        "running": "ContainerStateRunning",
        "terminated": "ContainerStateTerminated",
    },
    "ContainerStateWaiting": {"reason": "string", "message": "string"},
    "ContainerStateRunning": {"startedAt": "date-time"},
    "ContainerStateTerminated": {
        "exitCode": "int32",
        "signal": "int32",
        "reason": "string",
        "message": "string",
        "startedAt": "date-time",
        "finishedAt": "date-time",
        "containerID": "string",
    },
    "Binding": {**_OBJECT_HEAD, "target": "ObjectReference"},
    "ObjectReference": {
        "kind": "string",
        "namespace": "string",
        "name": "string",
        "uid": "string",
        "apiVersion": "string",
        "resourceVersion": "string",
        "fieldPath": "string",
    },
    # ---------------------------------------------------------------- Node, Namespace, Event
    "Node": {**_OBJECT_HEAD, "spec": "NodeSpec", "status": "NodeStatus"},
    "NodeList": {**_LIST_HEAD, "items": "[]Node"},
    "NodeSpec": {
        "podCIDR": "string",
        "podCIDRs": "[]string merge",
        "providerID": "string",
        "unschedulable": "boolean",
        "taints": "[]object",
        "configSource": "object",
        "externalID": "string",
        "podPreemptionPolicy": "object",
    },
    "NodeStatus": {
        "capacity": "{}quantity",
        "allocatable": "{}quantity",
        "phase": "string",
        "conditions": "[]NodeCondition merge=type",
        "addresses": "[]object merge=type",
        "daemonEndpoints": "object",
        "nodeInfo": "object",
        "images": "[]object",
        "volumesInUse": "[]string",
        "volumesAttached": "[]object",
        "config": "object",
        "runtimeHandlers": "[]object",
        "features": "object",
        "declaredFeatures": "[]string",
    },
    "NodeCondition": {
        "type": "string",
        "status": "string",
        "lastHeartbeatTime": "date-time",
        "lastTransitionTime": "date-time",
        "reason": "string",
        "message": "string",
    },
    "Namespace": {**_OBJECT_HEAD, "spec": "NamespaceSpec", "status": "NamespaceStatus"},
    "NamespaceList": {**_LIST_HEAD, "items": "[]Namespace"},
    "NamespaceSpec": {"finalizers": "[]string"},
    "NamespaceStatus": {"phase": "string", "conditions": "[]object merge=type"},
    "Event": {
        **_OBJECT_HEAD,
        "involvedObject": "ObjectReference",
        "reason": "string",
        "message": "string",
        "source": "EventSource",
        "firstTimestamp": "date-time",
        "lastTimestamp": "date-time",
        "count": "int32",
        "type": "string",
        "eventTime": "date-time",
        "series": "object",
        "action": "string",
        "related": "ObjectReference",
        "reportingComponent": "string",
        "reportingInstance": "string",
    },
    "EventList": {**_LIST_HEAD, "items": "[]Event"},
    "EventSource": {"component": "string", "host": "string"},
    "ResourceQuota": {
        **_OBJECT_HEAD,
        "spec": "ResourceQuotaSpec",
        "status": "ResourceQuotaStatus",
    },
    "ResourceQuotaList": {**_LIST_HEAD, "items": "[]ResourceQuota"},
    "ResourceQuotaSpec": {"hard": "{}quantity", "scopes": "[]string", "scopeSelector": "object"},
    "ResourceQuotaStatus": {"hard": "{}quantity", "used": "{}quantity"},
}

#: Kinds that are top-level API objects (they carry x-kubernetes-group-version-kind).
KINDS = (
    "Pod", "PodList", "Node", "NodeList", "Namespace", "NamespaceList", "Event", "EventList",
    "Binding", "Status", "DeleteOptions", "ResourceQuota", "ResourceQuotaList",
)  # fmt: skip

SCALARS = frozenset(
    {"string", "boolean", "int32", "int64", "number", "date-time", "quantity", "int-or-string"}
)


def definition_name(type_name: str) -> str:
    """The OpenAPI definition name of a type, as a real server names it."""
    return (META if type_name in META_TYPES else CORE) + type_name


@dataclass(frozen=True, slots=True)
class FieldType:
    """One parsed field type: a scalar, `object`, a named type, or a list/map of one."""

    container: str  # "" (single value), "list" or "map"
    item: str  # scalar name, "object" or a key of TYPES
    merge_key: str | None = None  # lists merged by this key in a strategic merge patch
    merge_set: bool = False  # lists of scalars merged as a set


@cache
def parse_type(text: str) -> FieldType:
    """Parse a field type string of `TYPES` (see the module docstring)."""
    spec, _, merge = text.partition(" ")
    merge_key = None
    merge_set = False
    if merge == "merge":
        merge_set = True
    elif merge.startswith("merge="):
        merge_key = merge[len("merge=") :]
    elif merge:
        raise ValueError(f"bad field type {text!r}")
    container = ""
    if spec.startswith("[]"):
        container, spec = "list", spec[2:]
    elif spec.startswith("{}"):
        container, spec = "map", spec[2:]
    if spec not in SCALARS and spec != "object" and spec not in TYPES:
        raise ValueError(f"unknown type {spec!r} in {text!r}")
    return FieldType(container, spec, merge_key, merge_set)


@cache
def _fields(type_name: str) -> dict[str, FieldType]:
    return {name: parse_type(text) for name, text in TYPES[type_name].items()}


def unknown_fields(type_name: str, obj: Any, *, prune: bool = False) -> list[str]:
    """Paths of the fields of `obj` its type does not have (`spec.containers[0].bogus`).

    With `prune`, those fields are also removed from `obj`, as decoding into the typed
    object drops them on a real server (fieldValidation Ignore or Warn). Values of the wrong
    type are left to the other validation; only field names are checked here.
    """
    found: list[str] = []
    _walk(type_name, obj, "", found, prune)
    return found


def _walk(type_name: str, obj: Any, path: str, found: list[str], prune: bool) -> None:
    if not isinstance(obj, dict):
        return
    fields = _fields(type_name)
    unknown: list[str] = []
    for key, value in obj.items():
        field = fields.get(key)
        if field is None:
            unknown.append(key)
            found.append(f"{path}{key}")
            continue
        item = field.item
        if item not in TYPES or value is None:
            continue
        where = f"{path}{key}"
        if field.container == "list":
            if isinstance(value, list):
                for index, element in enumerate(value):
                    _walk(item, element, f"{where}[{index}].", found, prune)
        elif field.container == "map":
            if isinstance(value, dict):
                for map_key, element in value.items():
                    _walk(item, element, f"{where}[{map_key}].", found, prune)
        else:
            _walk(item, value, f"{where}.", found, prune)
    if prune:
        for key in unknown:
            del obj[key]
