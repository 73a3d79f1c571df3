"""What one submission leaves in its worker's sandbox does not reach the
next: daemons that left their process group, files in the sandbox's /tmp,
a listener put in place of the warm server's socket, and the warm
server's memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.grade import emulator_for
from grader.sandbox import bubblewrap_works

pytestmark = pytest.mark.skipif(
    not bubblewrap_works() or os.environ.get("GRADER_NO_SANDBOX") == "1",
    reason="needs bubblewrap: without it the grader has no sandbox to clear",
)

LEAVE_BEHIND = """
import os, socket, sys, time
open("/tmp/left-for-the-next-one", "w").write("alice")
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open("/tmp/daemon.pid", "w").write(str(os.getpid()))
        time.sleep(300)
    os._exit(0)
time.sleep(0.5)
print(open("/tmp/daemon.pid").read())
"""

LOOK_AROUND = """
import json, os
try:
    open("/proc/2/mem", "rb").close()
    server_memory = "readable"
except OSError as exc:
    server_memory = type(exc).__name__
print(json.dumps({
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "tmp": sorted(os.listdir("/tmp")),
    "server_memory": server_memory,
}))
"""


def _run(warm, workdir: Path, code: str) -> str:
    script = workdir / "script.py"
    script.write_text(code)
    out = workdir / "out.txt"
    with open(out, "wb") as handle, open(os.devnull, "rb") as devnull:
        child = warm.spawn(cwd=workdir, env={"PATH": "/usr/bin:/bin"}, stdin=devnull.fileno(),
                           stdout=handle.fileno(), stderr=handle.fileno(), rlimits={},
                           script=str(script))
        assert child.wait(timeout=60) == 0, out.read_text()
    return out.read_text().strip().splitlines()[-1]


def test_next_submission_finds_nothing_of_the_last(rubric, tmp_path):
    with emulator_for(rubric, tmp_path / "emulator") as emulator:
        first = emulator.new_slot()
        daemon = int(_run(emulator.warm, first, LEAVE_BEHIND))
        second = emulator.new_slot()
        seen = json.loads(_run(emulator.warm, second, LOOK_AROUND))
    assert daemon not in seen["pids"]
    assert "left-for-the-next-one" not in seen["tmp"]
    assert "daemon.pid" not in seen["tmp"]
    assert seen["server_memory"] == "PermissionError"


def test_a_replaced_server_socket_is_not_used(rubric, tmp_path):
    with emulator_for(rubric, tmp_path / "emulator") as emulator:
        slot = emulator.new_slot()
        _run(emulator.warm, slot, "print('warm')")
        server_socket = Path(emulator.warm._socket)
        # What a submission could do from inside: put its own socket there.
        server_socket.unlink()
        impostor = subprocess.Popen(
            [sys.executable, "-c",
             "import socket, sys, time; s = socket.socket(socket.AF_UNIX); "
             f"s.bind({str(server_socket)!r}); s.listen(); time.sleep(60)"],
        )
        try:
            while not server_socket.exists():
                time.sleep(0.05)
            next_slot = emulator.new_slot()
            assert _run(emulator.warm, next_slot, "print('fresh')") == "fresh"
        finally:
            impostor.kill()
            impostor.wait()
