"""The annotations a pod uses to ask the simulated kubelet for its fate.

Tests, the demo and load tests import these names, so a pod spec built anywhere in podfleet
says exactly what the simulator will do with it. Every annotation is optional; a malformed
value is ignored (the pod gets the cluster's default), because a real kubelet would not refuse
a pod over an annotation either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

PREFIX = "sim.podfleet.io/"

#: Seconds the container runs before it exits (float). Default: ClusterConfig.default_run_time_s.
DURATION = PREFIX + "duration"
#: Exit code of the container (int). Non-zero → phase Failed, terminated reason ``Error``.
EXIT_CODE = PREFIX + "exit-code"
#: ``"true"`` → the container is OOM-killed: Failed, reason ``OOMKilled``, exit code 137.
OOM = PREFIX + "oom"
#: ``"true"`` (meaning ``ErrImagePull``) or a waiting reason (``ErrImagePull``,
#: ``InvalidImageName``, ``CreateContainerConfigError``, …): the pod stays Pending with that
#: waiting reason; ``ErrImagePull`` turns into ``ImagePullBackOff`` after the backoff.
IMAGE_PULL_ERROR = PREFIX + "image-pull-error"
#: Seconds between binding and Running (ContainerCreating). Default: container_start_delay_s.
START_DELAY = PREFIX + "start-delay"
#: Seconds the container takes to stop after SIGTERM on deletion (capped by the grace period).
TERMINATION_DELAY = PREFIX + "termination-delay"
#: Message written to the terminated container state (``terminationMessagePath`` content).
MESSAGE = PREFIX + "message"
#: Text the first container's simulated log holds (``kubectl logs``), between the line with
#: its command and the line with its exit. Read when the log is asked for.
LOG = PREFIX + "log"

ALL = (DURATION, EXIT_CODE, OOM, IMAGE_PULL_ERROR, START_DELAY, TERMINATION_DELAY, MESSAGE, LOG)

ERR_IMAGE_PULL = "ErrImagePull"
IMAGE_PULL_BACKOFF = "ImagePullBackOff"
OOM_EXIT_CODE = 137
#: 128 + SIGTERM: what a container stopped by its pod's deletion exits with.
SIGTERM_EXIT_CODE = 143

_TRUE = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True, slots=True)
class PodFate:
    """What the kubelet does with one pod; ``None`` fields mean "the cluster's default"."""

    duration_s: float | None = None
    exit_code: int = 0
    oom: bool = False
    #: A waiting reason that keeps the pod Pending, or None.
    pending_reason: str | None = None
    start_delay_s: float | None = None
    termination_delay_s: float | None = None
    message: str | None = None

    @property
    def terminated_reason(self) -> str:
        """The container's terminated reason: OOMKilled, Completed or Error."""
        if self.oom:
            return "OOMKilled"
        return "Completed" if self.final_exit_code == 0 else "Error"

    @property
    def final_exit_code(self) -> int:
        """The exit code the container ends with (137 when OOM-killed)."""
        return OOM_EXIT_CODE if self.oom else self.exit_code


DEFAULT_FATE = PodFate()


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def fate_from_annotations(annotations: Mapping[str, str] | None) -> PodFate:
    """Read a pod's fate from its ``metadata.annotations``."""
    if not annotations:
        return DEFAULT_FATE
    if not any(key.startswith(PREFIX) for key in annotations):
        return DEFAULT_FATE
    exit_code = 0
    raw_exit = annotations.get(EXIT_CODE)
    if raw_exit is not None:
        try:
            exit_code = int(raw_exit)
        except ValueError:
            exit_code = 0
    pending_reason: str | None = None
    raw_pull = annotations.get(IMAGE_PULL_ERROR)
    if raw_pull is not None and raw_pull.strip():
        value = raw_pull.strip()
        if value.lower() in _TRUE:
            pending_reason = ERR_IMAGE_PULL
        elif value.lower() not in {"false", "0", "no", "off"}:
            pending_reason = value
    return PodFate(
        duration_s=_seconds(annotations.get(DURATION)),
        exit_code=exit_code,
        oom=str(annotations.get(OOM, "")).strip().lower() in _TRUE,
        pending_reason=pending_reason,
        start_delay_s=_seconds(annotations.get(START_DELAY)),
        termination_delay_s=_seconds(annotations.get(TERMINATION_DELAY)),
        message=annotations.get(MESSAGE),
    )
