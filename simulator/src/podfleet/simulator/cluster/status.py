"""Pod and node status objects shaped the way a real kubelet writes them.

Pure functions of a ``PodRecord`` and the moment: the kubelet decides *when*, this module
decides *what the status looks like*, so tests can compare it field by field with a real
cluster's output.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from podfleet.simulator.cluster.state import PodRecord
from podfleet.simulator.store import now_rfc3339

Json = dict[str, Any]



def _container_id(pod: PodRecord, name: str, restart: int) -> str:
    # 64 hex digits like containerd's, derived from the pod so repeated writes agree.
    digest = hashlib.blake2b(f"{pod.uid}/{name}/{restart}".encode(), digest_size=32).hexdigest()
    return f"containerd://{digest}"


@lru_cache(maxsize=1024)
def _image_ref(image: str) -> str:
    """The image as the runtime reports it (``busybox`` → ``docker.io/library/busybox:latest``)."""
    name = image
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name


@lru_cache(maxsize=1024)
def _image_id(image: str) -> str:
    ref = _image_ref(image).split("@")[0].rsplit(":", 1)[0]
    return f"{ref}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _condition(kind: str, ok: bool, stamp: str, reason: str | None = None,
               message: str | None = None) -> Json:
    condition: Json = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": stamp,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _unready_message(pod: PodRecord) -> str:
    return f"containers with unready status: [{' '.join(n for n, _ in pod.containers)}]"


def scheduled_condition(stamp: str) -> Json:
    return _condition("PodScheduled", True, stamp)


def unschedulable_status(pod: PodRecord, message: str, qos: str) -> Json:
    """Pending, ``PodScheduled=False`` / ``Unschedulable`` with the scheduler's message."""
    stamp = now_rfc3339()
    return {
        "phase": "Pending",
        "conditions": [_condition("PodScheduled", False, stamp, "Unschedulable", message)],
        "qosClass": qos,
    }


def _base(pod: PodRecord, phase: str, ready: bool, stamp: str, qos: str,
          ready_reason: str | None = None, with_ip: bool = True) -> Json:
    unready = None if ready else _unready_message(pod)
    status: Json = {
        "phase": phase,
        "conditions": [
            _condition("PodReadyToStartContainers", True, pod.scheduled_at or stamp),
            _condition("Initialized", True, pod.scheduled_at or stamp),
            _condition("Ready", ready, stamp, ready_reason or (None if ready else
                                                              "ContainersNotReady"), unready),
            _condition("ContainersReady", ready, stamp, ready_reason or (None if ready else
                                                                        "ContainersNotReady"),
                       unready),
            _condition("PodScheduled", True, pod.scheduled_at or stamp),
        ],
        "hostIP": pod.host_ip,
        "hostIPs": [{"ip": pod.host_ip}],
        "startTime": pod.started_at or stamp,
        "qosClass": qos,
    }
    if pod.pod_ip and with_ip:
        status["podIP"] = pod.pod_ip
        status["podIPs"] = [{"ip": pod.pod_ip}]
    return status


def waiting_status(pod: PodRecord, reason: str, message: str | None, qos: str,
                   with_ip: bool = True) -> Json:
    """Pending with every container waiting (``ContainerCreating``, ``ErrImagePull``, …).

    ``with_ip=False`` while the sandbox is being created: the pod has no IP yet.
    """
    stamp = now_rfc3339()
    status = _base(pod, "Pending", False, stamp, qos, with_ip=with_ip)
    waiting: Json = {"reason": reason}
    if message:
        waiting["message"] = message
    status["containerStatuses"] = [
        {
            "name": name,
            "state": {"waiting": waiting},
            "lastState": {},
            "ready": False,
            "restartCount": 0,
            "image": image,
            "imageID": "",
            "started": False,
        }
        for name, image in pod.containers
    ]
    return status


def _last_state(pod: PodRecord, name: str) -> Json:
    if pod.restart_count == 0 or pod.last_exit is None:
        return {}
    code, reason, started, finished = pod.last_exit
    return {
        "terminated": {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": finished,
            "containerID": _container_id(pod, name, pod.restart_count - 1),
        }
    }


def running_status(pod: PodRecord, qos: str) -> Json:
    """Running and Ready, every container running since ``pod.running_since``."""
    stamp = now_rfc3339()
    status = _base(pod, "Running", True, stamp, qos)
    status["containerStatuses"] = [
        {
            "name": name,
            "state": {"running": {"startedAt": pod.running_since or stamp}},
            "lastState": _last_state(pod, name),
            "ready": True,
            "restartCount": pod.restart_count,
            "image": _image_ref(image),
            "imageID": _image_id(image),
            "containerID": _container_id(pod, name, pod.restart_count),
            "started": True,
        }
        for name, image in pod.containers
    ]
    return status


def crash_backoff_status(pod: PodRecord, qos: str) -> Json:
    """Running but not Ready: the container waits in ``CrashLoopBackOff`` before a restart."""
    stamp = now_rfc3339()
    status = _base(pod, "Running", False, stamp, qos)
    first = pod.containers[0][0] if pod.containers else ""
    status["containerStatuses"] = [
        {
            "name": name,
            "state": {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 10s restarting failed container={name} pod={pod.name}"
                f"_{pod.namespace}({pod.uid})",
            }},
            "lastState": _last_state(pod, name),
            "ready": False,
            "restartCount": pod.restart_count,
            "image": _image_ref(image),
            "imageID": _image_id(image),
            "containerID": _container_id(pod, name, pod.restart_count - 1),
            "started": False,
        }
        if name == first
        else {
            "name": name,
            "state": {"running": {"startedAt": pod.running_since or stamp}},
            "lastState": {},
            "ready": True,
            "restartCount": 0,
            "image": _image_ref(image),
            "imageID": _image_id(image),
            "containerID": _container_id(pod, name, 0),
            "started": True,
        }
        for name, image in pod.containers
    ]
    return status


def terminated_status(
    pod: PodRecord,
    exit_code: int,
    reason: str,
    qos: str,
    *,
    message: str | None = None,
    pod_reason: str | None = None,
    pod_message: str | None = None,
    phase: str | None = None,
    extra_conditions: list[Json] | None = None,
) -> Json:
    """Succeeded (exit 0) or Failed: the first container terminated with ``exit_code``/``reason``.

    Other containers of the pod end with exit 0 (``Completed``) at the same moment.
    """
    stamp = now_rfc3339()
    phase = phase or ("Succeeded" if exit_code == 0 else "Failed")
    status = _base(pod, phase, False, stamp, qos,
                   ready_reason="PodCompleted" if phase == "Succeeded" else "PodFailed")
    for condition in status["conditions"]:
        if condition["type"] in ("Ready", "ContainersReady"):
            condition.pop("message", None)
        if condition["type"] == "PodReadyToStartContainers":
            condition["status"] = "False"
            condition["lastTransitionTime"] = stamp
    if extra_conditions:
        status["conditions"].extend(extra_conditions)
    if pod_reason:
        status["reason"] = pod_reason
    if pod_message:
        status["message"] = pod_message
    statuses = []
    for index, (name, image) in enumerate(pod.containers):
        code, why = (exit_code, reason) if index == 0 else (0, "Completed")
        terminated: Json = {
            "exitCode": code,
            "reason": why,
            "startedAt": pod.running_since or stamp,
            "finishedAt": stamp,
        }
        if pod.running_since is not None:
            terminated["containerID"] = _container_id(pod, name, pod.restart_count)
        if message and index == 0:
            terminated["message"] = message
        statuses.append({
            "name": name,
            "state": {"terminated": terminated},
            "lastState": _last_state(pod, name),
            "ready": False,
            "restartCount": pod.restart_count,
            "image": _image_ref(image) if pod.running_since else image,
            "imageID": _image_id(image) if pod.running_since else "",
            "started": False,
        })
        if pod.running_since is not None:
            statuses[-1]["containerID"] = terminated["containerID"]
    status["containerStatuses"] = statuses
    return status


def node_object(name: str, index: int, cpu: str, memory: str, pods: int,
                labels: dict[str, str], host_ip: str, ready: bool = True,
                unschedulable: bool = False,
                taints: list[dict[str, str]] | None = None) -> Json:
    """A Node as a real kubelet registers it, with Ready and the pressure conditions."""
    stamp = now_rfc3339()
    ready_condition = _condition("Ready", ready, stamp,
                                 "KubeletReady" if ready else "NodeStatusUnknown",
                                 "kubelet is posting ready status" if ready else
                                 "Kubelet stopped posting node status.")
    ready_condition["lastHeartbeatTime"] = stamp
    ready_condition.pop("lastProbeTime", None)
    if not ready:
        ready_condition["status"] = "Unknown"
    conditions = [ready_condition]
    for kind, reason in (("MemoryPressure", "KubeletHasSufficientMemory"),
                         ("DiskPressure", "KubeletHasNoDiskPressure"),
                         ("PIDPressure", "KubeletHasSufficientPID")):
        conditions.append({"type": kind, "status": "False", "lastHeartbeatTime": stamp,
                           "lastTransitionTime": stamp, "reason": reason})
    capacity = {"cpu": cpu, "memory": memory, "pods": str(pods),
                "ephemeral-storage": "100Gi"}
    spec: Json = {"podCIDR": f"10.{index % 256}.0.0/16", "podCIDRs": [f"10.{index % 256}.0.0/16"]}
    if unschedulable:
        spec["unschedulable"] = True
    user_taints = [dict(t) for t in taints or ()]
    if unschedulable:
        user_taints.append({"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule",
                            "timeAdded": stamp})
    if user_taints:
        spec["taints"] = user_taints
    if not ready:
        spec["taints"] = [
            *user_taints,
            {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule",
             "timeAdded": stamp},
            {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
             "timeAdded": stamp},
        ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": conditions,
            "addresses": [{"type": "InternalIP", "address": host_ip},
                          {"type": "Hostname", "address": name}],
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "osImage": "podfleet simulated node",
                "kernelVersion": "6.1.0-sim",
                "containerRuntimeVersion": "containerd://1.7.0-sim",
                "kubeletVersion": "v1.30.0-sim",
                "kubeProxyVersion": "v1.30.0-sim",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        },
    }
