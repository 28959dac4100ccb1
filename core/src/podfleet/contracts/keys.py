"""The task key (dag_id, task_id, run_id, map_index, try_number) and its validation."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Airflow's own rule for dag and task ids (KEY_REGEX), and its 250-character limit.
_ID_RE = re.compile(r"[\w.-]+")
ID_MAX_LENGTH = 250
RUN_ID_MAX_LENGTH = 250


class InvalidTaskKey(ValueError):
    """A task key part is missing, too long, or has characters Airflow would not allow."""


@dataclass(frozen=True, slots=True, order=True)
class TaskKey:
    """Identifies one try of one task instance, exactly as Airflow's ``TaskInstanceKey`` does."""

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    try_number: int = 1

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise InvalidTaskKey("invalid task key: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Every reason this key is invalid; [] when it is valid."""
        problems: list[str] = []
        for field in ("dag_id", "task_id"):
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                problems.append(f"{field} must be a non-empty string")
            elif len(value) > ID_MAX_LENGTH:
                problems.append(f"{field} must be at most {ID_MAX_LENGTH} characters")
            elif not _ID_RE.fullmatch(value):
                problems.append(
                    f"{field} {value!r} may contain only letters, digits, '_', '-' and '.'"
                )
        if not isinstance(self.run_id, str) or not self.run_id:
            problems.append("run_id must be a non-empty string")
        elif len(self.run_id) > RUN_ID_MAX_LENGTH:
            problems.append(f"run_id must be at most {RUN_ID_MAX_LENGTH} characters")
        elif any(ord(ch) < 32 or ord(ch) == 127 for ch in self.run_id):
            problems.append("run_id must not contain control characters")
        if not _is_int(self.map_index) or self.map_index < -1:
            problems.append("map_index must be an integer ≥ -1")
        if not _is_int(self.try_number) or self.try_number < 0:
            problems.append("try_number must be an integer ≥ 0")
        return problems

    def as_list(self) -> list[Any]:
        """The key as a JSON-friendly list, the form it takes in messages and events."""
        return [self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number]

    @classmethod
    def from_list(cls, parts: Any) -> TaskKey:
        """Rebuild a key from :meth:`as_list`; raises InvalidTaskKey on anything else."""
        if not isinstance(parts, list | tuple) or len(parts) != 5:
            raise InvalidTaskKey(
                "a task key is a list [dag_id, task_id, run_id, map_index, try_number]"
            )
        return cls(parts[0], parts[1], parts[2], parts[3], parts[4])

    @classmethod
    def coerce(cls, value: Any) -> TaskKey:
        """Accept a TaskKey, an Airflow ``TaskInstanceKey`` (a named tuple) or a 4/5-part tuple."""
        if isinstance(value, TaskKey):
            return value
        if hasattr(value, "map_index") and hasattr(value, "try_number"):
            # Airflow's TaskInstanceKey: (dag_id, task_id, run_id, try_number, map_index).
            named: Any = value
            return cls(named.dag_id, named.task_id, named.run_id, named.map_index,
                       named.try_number)
        if isinstance(value, list | tuple) and len(value) == 4:
            # (dag_id, task_id, run_id, try_number): map_index defaults to -1.
            return cls(value[0], value[1], value[2], -1, value[3])
        if isinstance(value, list | tuple) and len(value) == 5:
            return cls.from_list(value)
        raise InvalidTaskKey(f"cannot make a task key of {type(value).__name__}")

    def __str__(self) -> str:
        suffix = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{suffix} {self.run_id} try {self.try_number}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
