"""The simulated kubelet: takes each bound pod through ContainerCreating, Running and its end.

Every step is a timer on the shared ``Timeline`` (no task per pod) and one status write to
the store (one MODIFIED event), shaped by ``status.py``. A pod's fate comes from its
annotations (``fate.py``); in local mode its first container's command really runs.

Phases, with the cluster's latencies:

    bound ─ack→ Pending/ContainerCreating ─start delay→ Running ─duration→ Succeeded | Failed
                                        └→ Pending/ErrImagePull ─backoff→ ImagePullBackOff (stays)

A deleted pod (deletionTimestamp set) that is running gets SIGTERM: after its termination
delay (capped by the grace period) its containers end with 143 and it is removed; a pod that
never started, or already ended, is removed at once.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Any, Protocol

from podfleet.simulator.cluster import fate as fates
from podfleet.simulator.cluster import status as statuses
from podfleet.simulator.cluster.config import ClusterConfig
from podfleet.simulator.cluster.events import EventRecorder
from podfleet.simulator.cluster.local import LocalContainer
from podfleet.simulator.cluster.podlog import ContainerLog
from podfleet.simulator.cluster.scheduler import SimNode
from podfleet.simulator.cluster.state import PodRecord, Stage
from podfleet.simulator.cluster.termination import read_message_file, termination_message
from podfleet.simulator.cluster.timeline import Timeline
from podfleet.simulator.store import now_rfc3339

log = logging.getLogger(__name__)

Json = dict[str, Any]

#: Seconds a restarted container waits in CrashLoopBackOff (the real kubelet starts at 10 s).
CRASH_BACKOFF_S = 1.0

_WAITING_MESSAGES = {
    "InvalidImageName": 'Failed to apply default image tag "{image}": couldn\'t parse image '
    'name "{image}": invalid reference format',
    "CreateContainerConfigError": 'configmap "missing-config" not found',
    fates.ERR_IMAGE_PULL: 'rpc error: code = NotFound desc = failed to pull and unpack image '
    '"{ref}": failed to resolve reference "{ref}": {ref}: not found',
    fates.IMAGE_PULL_BACKOFF: 'Back-off pulling image "{image}"',
}


class PodWriter(Protocol):
    """The store methods the kubelet writes through (``podfleet.simulator.store.ObjectStore``)."""

    def set_pod_status(self, namespace: str, name: str, status: Json) -> Any: ...
    def update_pod(self, namespace: str, name: str,
                   mutate: Callable[[Json], bool | None]) -> Any: ...
    def delete_pod(self, namespace: str, name: str) -> Any: ...
    def get(self, resource: str, namespace: str, name: str) -> Any: ...


class Kubelet:
    """Drives bound pods through their phases; one instance serves every node."""

    def __init__(
        self,
        config: ClusterConfig,
        timeline: Timeline,
        store: PodWriter,
        on_terminal: Callable[[PodRecord], None],
        events: EventRecorder | None = None,
    ) -> None:
        self._config = config
        self._events = events or EventRecorder(None)
        #: Images each node has pulled (IfNotPresent pods find them "already present").
        self._images: dict[str, set[str]] = {}
        self._timeline = timeline
        self._store = store
        self._on_terminal = on_terminal
        self._tasks: set[asyncio.Task[None]] = set()
        self._locals: dict[str, LocalContainer] = {}

    # -- entry points --------------------------------------------------------------------
    def accept(self, pod: PodRecord, node: SimNode | None) -> None:
        """A pod was bound to ``node``: the node's kubelet picks it up after the ack delay."""
        self._assign(pod, node)
        token = pod.next_generation()
        self._timeline.call_later(self._config.kubelet_ack_delay_s, self._ack, pod, token)

    def accept_with_binding(self, pod: PodRecord, node: SimNode) -> Json:
        """Bind and acknowledge in one write: the ContainerCreating status to store with
        ``spec.nodeName`` (the caller writes it, then calls ``acknowledged``).

        Saves one store write per pod when the cluster's ack delay is 0, which matters at
        thousands of pods per second; clients see Pending/ContainerCreating straight away.
        """
        self._assign(pod, node)
        pod.stage = Stage.CREATING
        pod.started_at = pod.scheduled_at
        return statuses.waiting_status(pod, "ContainerCreating", None, pod.qos, with_ip=False)

    def _assign(self, pod: PodRecord, node: SimNode | None) -> None:
        pod.stage = Stage.BOUND
        if node is not None:
            pod.host_ip = node.address
            pod.pod_ip = node.allocate_pod_ip()
        else:
            pod.host_ip = "172.18.0.1"
            pod.pod_ip = None
        pod.scheduled_at = pod.scheduled_at or now_rfc3339()

    def delete_requested(self, pod: PodRecord) -> None:
        """The pod got a deletionTimestamp: stop its containers, then remove it."""
        if pod.deleting:
            return
        pod.deleting = True
        if pod.stage == Stage.RUNNING and self._events.enabled:
            for name, _ in pod.containers:
                self._events.killing(pod, name)
        if pod.stage in (Stage.RUNNING,) and pod.local is None:
            delay = pod.fate.termination_delay_s
            if delay is None:
                delay = self._config.termination_delay_s
            token = pod.next_generation()
            self._timeline.call_later(min(delay, pod.grace_s), self._stopped, pod, token)
            return
        if pod.stage == Stage.RUNNING and pod.local is not None:
            pod.local.terminate(pod.grace_s)  # its exit finishes the deletion
            return
        pod.next_generation()
        self._remove(pod)

    def removed(self, pod: PodRecord) -> None:
        """The pod is gone from the store: cancel its timers, kill its process."""
        pod.stage = Stage.GONE
        pod.next_generation()
        local = self._locals.pop(pod.uid, None)
        if local is not None:
            local.terminate(0)

    def fail(self, pod: PodRecord, reason: str, message: str, evicted: bool) -> None:
        """Node failure: end the pod as Failed with pod-level ``reason`` (NodeLost, Evicted)."""
        if pod.stage in (Stage.TERMINATED, Stage.GONE):
            return
        pod.next_generation()
        local = self._locals.pop(pod.uid, None)
        if local is not None:
            local.terminate(0)
        extra = None
        if evicted:
            extra = [{
                "type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339(), "reason": "TerminationByKubelet",
                "message": message,
            }]
        container_reason = "Error" if evicted else "ContainerStatusUnknown"
        self._terminate(
            pod, 137, container_reason,
            message=None if evicted else
            "The container could not be located when the pod was terminated",
            pod_reason=reason, pod_message=message, phase="Failed", extra_conditions=extra,
        )

    def _deadline(self, pod: PodRecord, uid: str) -> None:
        """activeDeadlineSeconds passed: the kubelet kills the pod, Failed/DeadlineExceeded."""
        if pod.uid != uid or pod.deleting or pod.stage in (Stage.TERMINATED, Stage.GONE):
            return
        pod.next_generation()
        local = self._locals.pop(pod.uid, None)
        if local is not None:
            local.terminate(0)
        message = "Pod was active on the node longer than the specified deadline"
        self._events.deadline_exceeded(pod)
        self._terminate(pod, 137, "Error", pod_reason="DeadlineExceeded", pod_message=message,
                        phase="Failed")

    def logs(self, pod: PodRecord) -> bytes | None:
        """Output of the pod's local process, or None when it never ran one."""
        local = self._locals.get(pod.uid) or pod.local
        return local.logs() if isinstance(local, LocalContainer) else None

    def container_log(self, pod: PodRecord, previous: bool = False) -> ContainerLog | None:
        """The local process's output of the current (or the previous) run, if one ran."""
        local = pod.previous_local if previous else pod.local
        return local.output if isinstance(local, LocalContainer) else None

    async def stop(self) -> None:
        """Kill every local process (simulator shutdown)."""
        for local in list(self._locals.values()):
            await local.kill()
        self._locals.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- steps ---------------------------------------------------------------------------
    def _write(self, pod: PodRecord, status: Json) -> bool:
        if pod.disruption is not None:  # the kubelet keeps conditions it does not own
            status["conditions"] = [*(status.get("conditions") or ()), pod.disruption]
        return self._store.set_pod_status(pod.namespace, pod.name, status) is not None

    def _ack(self, pod: PodRecord, token: int) -> None:
        if pod.generation != token or pod.stage != Stage.BOUND:
            return
        if pod.deleting:
            self._remove(pod)
            return
        pod.stage = Stage.CREATING
        pod.started_at = now_rfc3339()
        status = statuses.waiting_status(pod, "ContainerCreating", None, pod.qos, with_ip=False)
        if self._write(pod, status):
            self.acknowledged(pod)

    def acknowledged(self, pod: PodRecord) -> None:
        """The pod shows ContainerCreating: start its container after the start delay."""
        if pod.active_deadline_s is not None:
            # Counted from status.startTime, whatever steps the pod goes through meanwhile.
            self._timeline.call_later(pod.active_deadline_s, self._deadline, pod, pod.uid)
        delay = pod.fate.start_delay_s
        if delay is None:
            delay = self._config.container_start_delay_s
        token = pod.next_generation()
        if self._events.enabled:
            self._pull_started(pod)
        if pod.fate.pending_reason is not None:
            self._timeline.call_later(delay, self._stuck, pod, token, pod.fate.pending_reason)
        else:
            self._timeline.call_later(delay, self._start, pod, token)

    # -- images and their events ----------------------------------------------------------
    def _pull_started(self, pod: PodRecord) -> None:
        """Pulling events for the images this start must pull (not for a refused name)."""
        reason = pod.fate.pending_reason
        if reason == "InvalidImageName":
            return
        cached = self._images.setdefault(pod.node or "", set())
        pulling = []
        for index, (name, image) in enumerate(pod.containers):
            pull = (reason == fates.ERR_IMAGE_PULL and index == 0) or image not in cached or (
                index < len(pod.pull_always) and pod.pull_always[index])
            pulling.append(pull)
            if pull:
                self._events.pulling(pod, name, image)
        pod.pulling = tuple(pulling)

    def _pulled_and_started(self, pod: PodRecord, took_s: float, *, start: bool = True) -> None:
        """Pulled, Created and Started events of every container (after a restart too)."""
        events = self._events
        cached = self._images.setdefault(pod.node or "", set())
        for index, (name, image) in enumerate(pod.containers):
            if pod.restart_count:  # a restart pulls again only with imagePullPolicy Always
                pull = index < len(pod.pull_always) and pod.pull_always[index]
                if pull:
                    events.pulling(pod, name, image)
            else:
                pull = index < len(pod.pulling) and pod.pulling[index]
            events.pulled(pod, name, image, took_s if pull else None)
            cached.add(image)
            if start:
                events.started(pod, name)
            else:
                events.created_only(pod, name)
                return

    def _start_delay(self, pod: PodRecord) -> float:
        delay = pod.fate.start_delay_s
        return self._config.container_start_delay_s if delay is None else delay

    def _waiting_events(self, pod: PodRecord, reason: str, message: str | None) -> None:
        """What the kubelet records when a container cannot start (Failed, BackOff, ...)."""
        events = self._events
        name, image = pod.containers[0] if pod.containers else ("", "")
        if reason == "InvalidImageName" and pod.image_error is not None:
            name = pod.image_error[0]
        if reason == "InvalidImageName":
            events.failed(pod, name, message or "", reason="InspectFailed")
            events.failed(pod, name, "Error: InvalidImageName")
        elif reason == fates.ERR_IMAGE_PULL:
            events.failed(pod, name, f'Failed to pull image "{image}": {message}')
            events.failed(pod, name, "Error: ErrImagePull")
        elif reason == fates.IMAGE_PULL_BACKOFF:
            events.pull_backoff(pod, name, image)
        else:
            if reason == "CreateContainerConfigError":
                events.pulled(pod, name, image, None)
            events.failed(pod, name, f"Error: {message or reason}")

    def _waiting_message(self, pod: PodRecord, reason: str) -> str | None:
        if reason == "InvalidImageName" and pod.image_error is not None:
            return pod.image_error[1]
        template = _WAITING_MESSAGES.get(reason)
        if template is None:
            return None
        image = pod.containers[0][1] if pod.containers else ""
        return template.format(image=image, ref=statuses._image_ref(image))

    def _stuck(self, pod: PodRecord, token: int, reason: str) -> None:
        if pod.generation != token or pod.stage != Stage.CREATING:
            return
        message = self._waiting_message(pod, reason)
        self._write(pod, statuses.waiting_status(pod, reason, message, pod.qos))
        if self._events.enabled:
            self._waiting_events(pod, reason, message)
        if reason == fates.ERR_IMAGE_PULL:
            token = pod.next_generation()
            self._timeline.call_later(self._config.image_pull_backoff_s, self._stuck, pod,
                                      token, fates.IMAGE_PULL_BACKOFF)

    def _start(self, pod: PodRecord, token: int) -> None:
        if pod.generation != token or pod.stage not in (Stage.CREATING, Stage.RUNNING):
            return
        if self._config.local_mode and pod.command is not None and pod.command[0]:
            task = asyncio.ensure_future(self._start_local(pod, token))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        self._running(pod)
        duration = pod.fate.duration_s
        if duration is None:
            if pod.restart_policy == "Always":
                return  # a service-like pod: runs until deleted
            duration = self._config.default_run_time_s
        token = pod.next_generation()
        self._timeline.call_later(duration, self._exited, pod, token)

    def _running(self, pod: PodRecord) -> None:
        pod.stage = Stage.RUNNING
        pod.running_since = now_rfc3339()
        if self._write(pod, statuses.running_status(pod, pod.qos)) and self._events.enabled:
            self._pulled_and_started(pod, self._start_delay(pod))

    async def _start_local(self, pod: PodRecord, token: int) -> None:
        assert pod.command is not None
        argv, env = pod.command
        local = LocalContainer(self._config.local_log_bytes)
        try:
            await local.start(argv, env, lambda code: self._local_exited(pod, token, code))
        except OSError as error:
            if pod.generation != token:
                return
            pod.next_generation()
            # What containerd reports when the entrypoint cannot be executed.
            message = (f"failed to create containerd task: exec: \"{argv[0]}\": "
                       f"{error.strerror or error}")
            if self._events.enabled:
                self._pulled_and_started(pod, self._start_delay(pod), start=False)
                self._events.failed(pod, pod.containers[0][0] if pod.containers else "",
                                    f"Error: {message}")
            self._terminate(pod, 128, "StartError", message=message)
            return
        if pod.generation != token or pod.stage == Stage.GONE:
            local.terminate(0)
            return
        pod.local = local
        self._locals[pod.uid] = local
        self._running(pod)

    def _local_exited(self, pod: PodRecord, token: int, code: int) -> None:
        self._locals.pop(pod.uid, None)
        if pod.stage == Stage.GONE:
            return
        if pod.deleting:
            pod.next_generation()
            self._terminate(pod, code, "Completed" if code == 0 else "Error")
            self._remove(pod)
            return
        if pod.generation != token:
            return
        oom = code == fates.OOM_EXIT_CODE and pod.fate.oom
        local = pod.local
        message = None
        if isinstance(local, LocalContainer):
            path, policy = pod.message_source
            written = read_message_file(path, local.started_at)
            message = termination_message(policy, written, code,
                                          (line for _, line in local.output.lines()))
        self._exit(pod, code, "OOMKilled" if oom else ("Completed" if code == 0 else "Error"),
                   message)

    def _exited(self, pod: PodRecord, token: int) -> None:
        if pod.generation != token or pod.stage != Stage.RUNNING:
            return
        fate = pod.fate
        code = fate.final_exit_code
        message = termination_message(pod.message_source[1], fate.message or "", code,
                                      (line.encode() for line in pod.log_lines))
        self._exit(pod, code, fate.terminated_reason, message)

    def _exit(self, pod: PodRecord, code: int, reason: str, message: str | None = None) -> None:
        if reason == "OOMKilled" and self._events.enabled:
            process = pod.command[0][0].rsplit("/", 1)[-1] if pod.command and pod.command[0] \
                else (pod.containers[0][0] if pod.containers else "")
            self._events.system_oom(pod.node or "", process, 1000 + zlib.crc32(pod.uid.encode())
                                    % 60000)
        policy = pod.restart_policy
        if policy == "Always" or (policy == "OnFailure" and code != 0):
            self._restart(pod, code, reason)
            return
        pod.next_generation()
        self._terminate(pod, code, reason, message=message)

    def _restart(self, pod: PodRecord, code: int, reason: str) -> None:
        pod.last_exit = (code, reason, pod.running_since or now_rfc3339(),
                         now_rfc3339())
        pod.restart_count += 1
        if pod.local is not None:  # that run's output is now the previous one's
            pod.previous_local, pod.local = pod.local, None
        token = pod.next_generation()
        if code != 0:
            self._write(pod, statuses.crash_backoff_status(pod, pod.qos))
            if self._events.enabled and pod.containers:
                self._events.crash_backoff(pod, pod.containers[0][0])
            self._timeline.call_later(CRASH_BACKOFF_S, self._start, pod, token)
        else:
            self._timeline.call_later(0, self._start, pod, token)

    def _terminate(self, pod: PodRecord, code: int, reason: str, **extra: Any) -> None:
        pod.stage = Stage.TERMINATED
        self._write(pod, statuses.terminated_status(pod, code, reason, pod.qos, **extra))
        self._on_terminal(pod)

    def _stopped(self, pod: PodRecord, token: int) -> None:
        if pod.generation != token or pod.stage != Stage.RUNNING:
            return
        pod.next_generation()
        self._terminate(pod, fates.SIGTERM_EXIT_CODE, "Error")
        self._remove(pod)

    def _remove(self, pod: PodRecord) -> None:
        """Containers stopped: remove the pod, unless finalizers still hold it (as the API
        server would keep it until a patch empties them)."""
        record = self._store.get("pods", pod.namespace, pod.name)
        if record is None or record.uid != pod.uid:
            return
        if record.deleting and (record.object().get("metadata") or {}).get("finalizers"):
            return
        self._store.delete_pod(pod.namespace, pod.name)
