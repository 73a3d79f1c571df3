"""Warm interpreters: start Python once, import the heavy libraries once,
then fork a fresh process for each training job or model probe.

Importing pandas and xgboost costs several seconds of CPU on a small
machine, and a class has one job (and two probes) per submission. A warm
interpreter has imported them and nothing else; every request is served by
a new fork of it, so no state passes from one student's code to the next.

Protocol, over a Unix socket: the client sends one JSON request with its
stdin, stdout and stderr file descriptors attached; the server forks and
answers ``{"pid": N}``, then ``{"exit": CODE}`` when that child ends.
"""

from __future__ import annotations

import json
import os
import random
import resource
import select
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

# -- the server (runs in its own process) -------------------------------------


def _child(request: dict[str, Any], fds: list[int]) -> None:
    """In the fork: become the requested program, then exit."""
    os.setsid()
    for limit, value in request.get("rlimits", {}).items():
        resource.setrlimit(getattr(resource, limit), (value, value))
    for target, fd in zip((0, 1, 2), fds):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.environ.get("GRADER_CONFINED") == "1":
        # Only inside a sandbox, whose /opt is its own: the container's paths.
        for link, target in request.get("links", {}).items():
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if os.path.islink(link):
                os.unlink(link)
            os.symlink(target, link)
    os.chdir(request["cwd"])
    backend = os.environ.get("MPLBACKEND")
    os.environ.clear()
    os.environ.update(request["env"])
    wanted = os.environ.get("MPLBACKEND")
    if wanted and wanted != backend and "matplotlib" in sys.modules:
        # matplotlib chose its backend when the server imported it.
        try:
            sys.modules["matplotlib"].use(wanted)
        except Exception:  # a bad name fails where matplotlib is used, as usual
            pass
    sys.stdout.reconfigure(write_through=True)
    sys.stderr.reconfigure(write_through=True)
    random.seed()
    try:
        import numpy

        numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
    except ImportError:
        pass
    for entry in reversed(request.get("path_prefix", [])):
        sys.path.insert(1, entry)

    code = 0
    try:
        import runpy

        if "script" in request:
            # A script starts as under a new `python`: libraries the server
            # preloaded (the SDK installs a rich traceback printer) leave no
            # hooks or warning filters behind.
            sys.excepthook = _PRISTINE["excepthook"]
            warnings.filters[:] = _PRISTINE["warning_filters"]
        if request.get("install"):
            __import__(request["install"]).install()
        # sys.path[0] as `python -m` (the working directory) or `python
        # script.py` (the script's folder) would set it, never the server's.
        if "module" in request:
            sys.path[0] = request["cwd"]
            sys.argv = [request["module"], *request["args"]]
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        else:
            script = request["script"]
            sys.path[0] = os.path.dirname(os.path.abspath(script))
            sys.argv = [script, *request["args"]]
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        import atexit

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


#: What the interpreter had before the preloaded libraries ran.
_PRISTINE: dict[str, Any] = {}


def _forbid_tracing() -> None:
    """Make this process (and the forks that inherit it) non-dumpable: no
    other process of the sandbox's user may read or write its memory
    through /proc or ptrace, so no submission can plant code in the forks
    made for the next one."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


_PR_SET_DUMPABLE = 4


def _clear_sandbox(keep: list[str], spare: set[int]) -> int:
    """Between two submissions, inside a sandbox (its own PID namespace and
    tmpfs /tmp and /opt): kill every process but this server, its relay
    and the namespace's init, and empty /tmp and /opt but for ``keep``.
    Daemons that escaped their process group and files left for the next
    submission go with them. Returns how many processes were killed."""
    killed = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in spare:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
            except (ProcessLookupError, PermissionError):
                pass
    for top in ("/tmp", "/opt"):
        _empty(top, [os.path.abspath(path) for path in keep])
    # Libraries imported here may have chosen a directory in /tmp already.
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is not None:
        for directory in (matplotlib.get_configdir(), matplotlib.get_cachedir()):
            os.makedirs(directory, exist_ok=True)
    return killed


def _empty(directory: str, keep: list[str]) -> None:
    import shutil

    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if path in keep:
            continue
        if any(kept.startswith(path + os.sep) for kept in keep):
            _empty(path, keep)
        elif os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def _serve(socket_path: str, preload: list[str]) -> None:
    _PRISTINE.update(excepthook=sys.excepthook, warning_filters=list(warnings.filters))
    _forbid_tracing()
    relay = None
    if preload and preload[0].startswith("--relay="):
        # Inside a sandbox without network: bring the emulator's port in.
        port, unix_path = preload.pop(0).split("=", 1)[1].split(":", 1)
        relay = subprocess.Popen(
            [sys.executable, "-m", "grader.relay", port, unix_path], stdout=subprocess.PIPE
        )
        assert relay.stdout is not None
        relay.stdout.readline()
    for name in preload:
        __import__(name)

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(16)
    print("ready", flush=True)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    children: dict[int, socket.socket] = {}
    parent = os.getppid()
    while True:
        for key, _ in selector.select(timeout=0.05):
            connection, _ = listener.accept()
            message, fds, _, _ = socket.recv_fds(connection, 1 << 20, 3)
            request = json.loads(message.decode())
            if "clear" in request:
                confined = os.environ.get("GRADER_CONFINED") == "1"
                spare = {1, os.getpid(), *([relay.pid] if relay else [])}
                killed = _clear_sandbox(request["clear"], spare) if confined else 0
                connection.sendall(json.dumps({"cleared": killed}).encode() + b"\n")
                connection.close()
                continue
            if "kill" in request:
                # Pids are this server's: inside a sandbox only it can name them.
                try:
                    os.killpg(int(request["kill"]), int(request["signal"]))
                except (ProcessLookupError, PermissionError):
                    pass
                connection.close()
                continue
            pid = os.fork()
            if pid == 0:
                listener.close()
                for other in children.values():
                    other.close()
                connection.close()
                _child(request, fds)
            for fd in fds:
                os.close(fd)
            children[pid] = connection
            connection.sendall(json.dumps({"pid": pid}).encode() + b"\n")
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            connection = children.pop(pid, None)
            if connection is not None:
                code = os.waitstatus_to_exitcode(status)
                try:
                    connection.sendall(json.dumps({"exit": code}).encode() + b"\n")
                except OSError:
                    pass
                connection.close()
        if os.getppid() != parent:  # whoever started us is gone
            return


# -- the client (runs in the grader) ---------------------------------------


class WarmProcess:
    """A forked child, shaped like the parts of ``subprocess.Popen`` that the
    grader and jupyter_client use."""

    stdin = stdout = stderr = None

    def __init__(self, connection: socket.socket, reader: Any, pid: int, server: str):
        self._connection = connection
        self._reader = reader
        self._server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            ready, _, _ = select.select([self._connection], [], [], 0)
            if ready:
                self.wait()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            # select, not a socket timeout: a socket file whose read timed out
            # refuses every later read, and the caller may wait again.
            ready, _, _ = select.select([self._connection], [], [], timeout)
            if not ready:
                raise subprocess.TimeoutExpired("warm child", timeout or 0)
            line = self._reader.readline()
            self.returncode = json.loads(line)["exit"] if line else -9
            self._connection.close()
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the child's whole process group, through the server; also
        after the child itself ended, to reach what it left running."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.connect(self._server)
                request = json.dumps({"kill": self.pid, "signal": int(signum)}).encode()
                socket.send_fds(connection, [request], [])
        except OSError:
            pass

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmInterpreter:
    """A warm server, started lazily and used by one grader process."""

    def __init__(
        self,
        *,
        python_path: list[str],
        preload: tuple[str, ...],
        name: str = "warm",
        directory: Path | None = None,
        confinement: Any = None,
        relay: tuple[int, str] | None = None,
        backend: str = "Agg",
    ):
        self._python_path = python_path
        self._backend = backend
        self._preload = preload
        self._confinement = confinement
        self._relay = relay
        self._process: subprocess.Popen[bytes] | None = None
        self._directory = directory or Path(tempfile.mkdtemp(prefix="grader-warm-"))
        self._directory.mkdir(parents=True, exist_ok=True)
        self._socket = self._directory / f"{name}.sock"
        self._ready = False
        self._socket_inode = -1

    def start(self) -> None:
        """Launch the server without waiting: it warms up while the grader
        starts the notebook's kernel."""
        if self._process is not None and self._process.poll() is None:
            return
        self._ready = False
        self._socket.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join(self._python_path),
            "MPLBACKEND": self._backend,
            # OpenMP reads this once, when xgboost is imported here. Idle
            # threads sleep rather than spin: jobs of parallel workers share
            # the cores, and spinning threads would take them from each other.
            "OMP_WAIT_POLICY": "PASSIVE",
        }
        if self._confinement is not None:
            env["GRADER_CONFINED"] = "1"
        argv = [sys.executable, "-m", "grader.warm", str(self._socket)]
        if self._relay and self._confinement is not None:
            argv.append(f"--relay={self._relay[0]}:{self._relay[1]}")
        argv += self._preload
        if self._confinement is not None:
            argv = self._confinement.command(argv, chdir=self._directory)
        # What the libraries print while importing goes to a log, not the terminal.
        with open(self._directory / f"{self._socket.stem}.log", "ab") as import_log:
            self._process = subprocess.Popen(
                argv,
                env=env,
                stdout=subprocess.PIPE,
                stderr=import_log,
                stdin=subprocess.DEVNULL,
                cwd=self._directory,
                start_new_session=True,
            )

    def _ensure_started(self) -> None:
        if self._process is None or self._process.poll() is not None:
            self.start()
        if self._ready:
            return
        assert self._process is not None and self._process.stdout is not None
        # Libraries may print while they import; "ready" is the last word.
        for line in self._process.stdout:
            if line.strip() == b"ready":
                self._ready = True
                self._socket_inode = os.stat(self._socket).st_ino
                return
        raise RuntimeError("the warm interpreter did not start")

    def spawn(
        self,
        *,
        cwd: Path,
        env: dict[str, str],
        stdin: int,
        stdout: int,
        stderr: int,
        rlimits: dict[str, int],
        script: str | None = None,
        module: str | None = None,
        args: list[str] | None = None,
        install: str | None = None,
        path_prefix: list[str] | None = None,
        links: dict[str, str] | None = None,
    ) -> WarmProcess:
        self._ensure_started()
        request: dict[str, Any] = {
            "cwd": str(cwd),
            "env": env,
            "args": args or [],
            "rlimits": rlimits,
            "install": install,
            "path_prefix": path_prefix or [],
            "links": links or {},
        }
        if module:
            request["module"] = module
        else:
            request["script"] = script
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(str(self._socket))
        socket.send_fds(connection, [json.dumps(request).encode()], [stdin, stdout, stderr])
        # Unbuffered, so that select() on the socket sees every unread line.
        reader = connection.makefile("rb", buffering=0)
        reply = reader.readline()
        if not reply:
            connection.close()
            raise RuntimeError("the warm interpreter closed the connection")
        return WarmProcess(connection, reader, json.loads(reply)["pid"], str(self._socket))

    def clear(self, keep: list[Path]) -> None:
        """Make the server fit for the next submission: inside a sandbox,
        every process the last one left is killed and /tmp and /opt are
        emptied, ``keep`` aside. A server whose socket was replaced or
        removed, or that does not answer, is started afresh instead, so a
        submission cannot leave a listener of its own in the server's place."""
        # Not yet ready, it has served no one; ended, it restarts when used.
        if self._process is None or not self._ready or self._process.poll() is not None:
            return
        try:
            intact = os.stat(self._socket).st_ino == self._socket_inode
        except OSError:
            intact = False
        if intact:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                    connection.settimeout(30)
                    connection.connect(str(self._socket))
                    request = json.dumps({"clear": [str(path) for path in keep]}).encode()
                    socket.send_fds(connection, [request], [])
                    if json.loads(connection.makefile("rb").readline()).get("cleared") is not None:
                        return
            except (OSError, ValueError):
                pass
        self.close()
        self.start()

    def close(self) -> None:
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._process.wait()
            self._process = None


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2:])
