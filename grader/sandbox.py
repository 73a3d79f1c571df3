"""Confinement of student code. The notebook's kernel and every training
job run in their own process group under resource limits, so one runaway
submission cannot starve the grader or the rest of a batch; where
bubblewrap is available they also run inside a sandbox."""

from __future__ import annotations

import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.rubric import Limits

log = logging.getLogger("grader")

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


@dataclass(frozen=True)
class Confinement:
    """Where bubblewrap is available, student code runs inside it: system
    and Python read-only, only the worker's current submission writable,
    its own PID, IPC and network namespaces (the emulator reached through a
    relay), an unprivileged user, and nothing else of this machine: not the
    holdout data, the rubric, the reference solution nor other submissions.
    """

    writable: tuple[Path, ...]
    readable: tuple[Path, ...]
    #: Directories replaced by an empty one: the course dataset's source
    #: table, from which the holdout could otherwise be rebuilt.
    masked: tuple[Path, ...] = ()

    def command(self, argv: list[str], *, chdir: Path) -> list[str]:
        prefix = [
            _BWRAP, "--die-with-parent", "--new-session",
            "--unshare-user", "--uid", "1000", "--gid", "1000",
            "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--hostname", "algo-1",
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/opt",
        ]
        for system_dir in ("/usr", "/bin", "/sbin", "/lib", "/lib64"):
            if Path(system_dir).exists():
                prefix += ["--ro-bind", system_dir, system_dir]
        # Of /etc only what programs need to start; not shadow or host secrets.
        for name in _ETC_NEEDED:
            prefix += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        for path in self.readable:
            prefix += ["--ro-bind", str(path), str(path)]
        for path in self.writable:
            prefix += ["--bind", str(path), str(path)]
        for path in self.masked:
            prefix += ["--tmpfs", str(path)]
        return [*prefix, "--chdir", str(chdir), "--", *argv]


_BWRAP = shutil.which("bwrap") or "bwrap"
_ETC_NEEDED = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "nsswitch.conf", "passwd", "group",
    "hosts", "localtime", "ssl", "ca-certificates", "fonts", "mime.types", "alternatives",
)
_warned = False


def bubblewrap_works() -> bool:
    """True when bwrap exists and can create the namespaces we ask for."""
    if not shutil.which("bwrap"):
        return False
    probe = [
        _BWRAP, "--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-net",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "/bin/true",
    ]
    try:
        return subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _dataset_dirs() -> tuple[Path, ...]:
    import importlib.util

    spec = importlib.util.find_spec("sklearn.datasets")
    if spec is None or spec.origin is None:
        return ()
    data = Path(spec.origin).parent / "data"
    return (data,) if data.is_dir() else ()


def confinement_for(writable: list[Path]) -> Confinement | None:
    """The confinement for one worker, or None (with one warning per process)
    when bubblewrap cannot be used here."""
    global _warned
    if os.environ.get("GRADER_NO_SANDBOX") != "1" and bubblewrap_works():
        package = Path(__file__).resolve().parent
        readable = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), package}
        readable.add(Path(sys.executable).resolve().parent.parent)
        return Confinement(tuple(writable), tuple(sorted(readable)), _dataset_dirs())
    if not _warned:
        _warned = True
        log.warning(
            "bubblewrap is not available: student code runs with resource limits and "
            "its own process group, but can read this machine's files (including the "
            "holdout data while it is graded) and reach its loopback network. "
            "Install bubblewrap (apt-get install bubblewrap) to confine it."
        )
    return None
