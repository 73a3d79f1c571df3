"""Set-up and the two everyday tasks, from nothing but Python 3.11.

    python3.11 tasks.py grade   # grade every bundled submission into reports/
    python3.11 tasks.py test    # run the test suite
    python3.11 tasks.py setup   # only create .venv (then use .venv/bin/grader)

Both create ``.venv`` and install the project into it the first time, and
again whenever pyproject.toml changes. Extra arguments go to the command.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"


def _ensure_environment() -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"tasks.py needs Python 3.11; this is {sys.version.split()[0]}")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not PYTHON.exists():
        print("creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing the grader and its dependencies into .venv", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("grade", "test", "setup"):
        print(__doc__)
        return 2
    _ensure_environment()
    task, extra = argv[0], argv[1:]
    if task == "setup":
        return 0
    if task == "grade":
        command = [str(VENV / "bin" / "grader"), "grade", "submissions", "--out", "reports"]
    else:
        command = [str(PYTHON), "-m", "pytest", *(extra or ["-q"])]
        extra = []
    return subprocess.run([*command, *extra], cwd=ROOT, env=os.environ.copy()).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
