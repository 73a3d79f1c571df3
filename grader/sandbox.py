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

    def preexec(self) -> Callable[[], None]:
        """A function for ``subprocess.Popen(preexec_fn=...)`` that applies the
        limits in the child, after ``start_new_session`` made it a group leader."""
        memory = self.memory_mb * _MB
        file_size = self.file_size_mb * _MB

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds))
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
            # RLIMIT_NPROC counts every process of the user; it binds only
            # when student code runs as an unprivileged user.
            resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        return apply


def kill_group(pid: int) -> None:
    """Kill a process group led by ``pid``, ignoring one that already ended."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
