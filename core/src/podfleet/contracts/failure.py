"""Why a launch or a pod failed, typed, and the one way it is told to a person.

A :class:`Failure` is made where the failure is seen (the launcher for a create that never
succeeded, :mod:`podfleet.contracts.judgement` for a pod), travels in a
:class:`~podfleet.contracts.events.TaskEvent`, and becomes a task's reason through
:attr:`Failure.summary` alone, so every route to a task row words a failure the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a task's launch or pod failed.

    ``reason`` is the short grouping key (``Error``, ``OOMKilled``, ``Evicted``,
    ``ErrImagePull``, ``PodDeleted``, …); ``message`` the longer human text the pod or
    podfleet gave; ``exit_code`` and ``container`` name the container that exited, when one
    did; ``termination_message`` is what that container wrote to its
    ``terminationMessagePath`` (or its log's tail), verbatim. ``disruption`` is set when the
    pod was disrupted rather than failed by its task - it carried a ``DisruptionTarget``
    condition (preempted, evicted, drained, tainted away, stopped by its kubelet) - and holds
    that condition's reason; the executor then relaunches the try instead of failing it.
    """

    reason: str
    message: str = ""
    exit_code: int | None = None
    container: str | None = None
    termination_message: str = ""
    disruption: str | None = None

    @property
    def summary(self) -> str:
        """What a person reads as the task's reason: the reason, then the exit code when one
        is known, then the container's own termination message when it left one -
        ``OOMKilled (exit code 137)``, ``Error (exit code 3): disk full``."""
        text = self.reason
        if self.exit_code is not None:
            text = f"{text} (exit code {self.exit_code})"
        if self.termination_message.strip():
            text = f"{text}: {self.termination_message.strip()}"
        return text

    def to_wire(self) -> dict[str, Any]:
        """Everything but ``reason`` (which a task event carries in its own field), empty
        values left out."""
        wire: dict[str, Any] = {}
        if self.message:
            wire["message"] = self.message
        if self.exit_code is not None:
            wire["exit_code"] = self.exit_code
        if self.container:
            wire["container"] = self.container
        if self.termination_message:
            wire["termination_message"] = self.termination_message
        if self.disruption:
            wire["disruption"] = self.disruption
        return wire

    @classmethod
    def from_wire(cls, reason: str, wire: Mapping[str, Any]) -> Failure:
        """Inverse of :meth:`to_wire`; values of the wrong type are dropped, not trusted."""
        code = wire.get("exit_code")
        container = wire.get("container")
        disruption = wire.get("disruption")
        return cls(
            reason=reason,
            message=_text(wire.get("message")),
            exit_code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            container=container if isinstance(container, str) and container else None,
            termination_message=_text(wire.get("termination_message")),
            disruption=disruption if isinstance(disruption, str) and disruption else None,
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
