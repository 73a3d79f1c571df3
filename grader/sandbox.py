"""Resource limits for student code: the notebook's kernel and every
training job run in their own process group under these limits, so one
runaway submission cannot starve the grader or the rest of a batch."""

from __future__ import annotations

import os
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass

from grader.rubric import Limits

_MB = 1024 * 1024


@dataclass(frozen=True)
class ResourceLimits:
    memory_mb: int
    cpu_seconds: int
    processes: int
    file_size_mb: int

    @classmethod
    def from_rubric(cls, limits: Limits) -> "ResourceLimits":
        return cls(limits.memory_mb, limits.cpu_seconds, limits.processes, limits.file_size_mb)

    def as_rlimits(self) -> dict[str, int]:
        """The limits by ``resource`` constant name, for a forked child."""
        return {
            "RLIMIT_AS": self.memory_mb * _MB,
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_FSIZE": self.file_size_mb * _MB,
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_CORE": 0,
        }

    def preexec(self) -> Callable[[], None]:
        """A function for ``subprocess.Popen(preexec_fn=...)`` that applies the
        limits in the child, after ``start_new_session`` made it a group leader."""
        # RLIMIT_NPROC counts every process of the user; it binds only when
        # student code runs as an unprivileged user.
        limits = [(getattr(resource, name), value) for name, value in self.as_rlimits().items()]

        def apply() -> None:
            for limit, value in limits:
                resource.setrlimit(limit, (value, value))

        return apply


def kill_group(pid: int) -> None:
    """Kill a process group led by ``pid``, ignoring one that already ended."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
