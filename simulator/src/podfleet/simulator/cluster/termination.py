"""A terminated container's ``message``, found where a real kubelet looks for it.

The kubelet reads the file at the container's ``terminationMessagePath`` (at most 4 KiB);
with ``terminationMessagePolicy: FallbackToLogsOnError``, a container that failed and wrote
nothing there gets the tail of its log instead (its last 80 lines, at most 2 KiB).

In local mode the process runs on this machine, so the path is an ordinary file: read when
the spec names one of its own (the default, ``/dev/termination-log``, is a per-container
mount in a real pod and is never read here) and only if the process wrote it after it
started, so that a file left by an earlier run is not taken for this run's message.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

DEFAULT_PATH = "/dev/termination-log"
FALLBACK_TO_LOGS = "FallbackToLogsOnError"
#: kubecontainer.MaxContainerTerminationMessageLength
MAX_MESSAGE_BYTES = 4 * 1024
#: kubecontainer.MaxContainerTerminationMessageLogLength / ...LogLines
MAX_LOG_BYTES = 2 * 1024
MAX_LOG_LINES = 80
_CLOCK_SLACK_S = 0.05


def read_message_file(path: str, started_at: float) -> str:
    """What the process wrote at ``path`` (local mode), or "" (none, default path, stale)."""
    if not path or path == DEFAULT_PATH:
        return ""
    try:
        info = os.stat(path)
        # Regular files only (a FIFO would block the loop); file times come from the
        # kernel's coarse clock, which may lag time.time() by a tick.
        if not stat.S_ISREG(info.st_mode) or info.st_mtime < started_at - _CLOCK_SLACK_S:
            return ""
        with open(path, "rb") as handle:
            data = handle.read(MAX_MESSAGE_BYTES)
    except OSError:
        return ""
    return data.decode("utf-8", "replace")


def log_tail(lines: Iterable[bytes]) -> str:
    """The last 80 lines of a log, cut to its last 2 KiB, as the fallback message."""
    tail = list(lines)[-MAX_LOG_LINES:]
    data = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in tail)
    return data[-MAX_LOG_BYTES:].decode("utf-8", "replace")


def termination_message(policy: str, written: str, exit_code: int,
                        log_lines: Iterable[bytes]) -> str | None:
    """The message of a container that ended with ``exit_code``, or None when it has none."""
    if written:
        return written
    if policy == FALLBACK_TO_LOGS and exit_code != 0:
        return log_tail(log_lines) or None
    return None
