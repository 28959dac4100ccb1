"""Archive writes that failed, kept where ``podfleet logs`` can find them.

When the watcher gives up archiving a pod's log and deletes the pod anyway, the log is gone;
without a trace, ``podfleet logs`` could only say "no log was archived", which reads as "the
task printed nothing" or "archiving is off". :class:`ArchiveFailures` keeps, per launch, when
the archive write failed and why, in Redis (the archive itself may be what failed) under
:meth:`RedisKeys.log_archive_failure`, for as long as archived logs are kept (a week when
they are kept for ever: by then nobody asks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from podfleet.contracts.redis_keys import RedisKeys

DEFAULT_KEEP_SECONDS = 7 * 86_400


@dataclass(frozen=True, slots=True)
class ArchiveFailure:
    """One launch's failed archive write: when (epoch seconds) and the error."""

    at: float
    error: str

    def describe(self) -> str:
        """``the archive write for this pod failed at <UTC time>: <error>``."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.at))
        return f"the archive write for this pod failed at {when}: {self.error}"


class ArchiveFailures:
    """Records and reads failed archive writes, one Redis string per launch id."""

    def __init__(self, client: redis.Redis | Any, keys: RedisKeys, *,
                 keep_seconds: float = DEFAULT_KEEP_SECONDS) -> None:
        self._client = client
        self._keys = keys
        self._keep_seconds = max(1, int(keep_seconds))

    def record(self, launch_id: str, error: str, *, at: float | None = None) -> None:
        """Remember that ``launch_id``'s log could not be archived (the latest error wins)."""
        body = orjson.dumps({"at": time.time() if at is None else at, "error": error[:500]})
        self._client.set(self._keys.log_archive_failure(launch_id), body,
                         ex=self._keep_seconds)

    def read(self, launch_id: str) -> ArchiveFailure | None:
        """The failure recorded for ``launch_id``, if any (None too when Redis cannot say)."""
        try:
            raw = self._client.get(self._keys.log_archive_failure(launch_id))
        except (redis.RedisError, OSError):
            return None
        if raw is None:
            return None
        try:
            found = orjson.loads(raw)
            return ArchiveFailure(float(found["at"]), str(found["error"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
