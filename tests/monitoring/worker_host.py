"""A stand-in worker host for exposition tests: a serving parent and recording children."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = Path(__file__).parent / "programs"


@dataclass
class WorkerHost:
    """A serving parent plus the children it 'started', sharing one multiprocess directory."""

    directory: Path
    env: dict[str, str]
    server: subprocess.Popen[str]
    port: int
    children: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def child(self, namespace: str, created: int, lease: int = 0,
              hold: bool = False) -> subprocess.Popen[str]:
        """Start a recording child and wait until it has recorded (and exited unless hold)."""
        proc = subprocess.Popen(
            [sys.executable, str(PROGRAMS / "record_metrics.py"), namespace, str(created),
             str(lease), "1" if hold else "0"],
            env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.children.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        if not hold:
            assert proc.wait(timeout=30) == 0
        return proc

    def close(self) -> None:
        for proc in [*self.children, self.server]:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
