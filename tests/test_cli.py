"""Bad input is a one-line error and exit 2, with nothing half-written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SUBMISSIONS


def _grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "grader.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )


def _copy_reference(tmp_path: Path) -> Path:
    target = tmp_path / "sub"
    shutil.copytree(SUBMISSIONS / "reference", target)
    (target / "expected.yaml").unlink()
    return target


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_notebook", "has no notebook matching '*.ipynb'"),
        ("not_json", "assignment2.ipynb is not a valid notebook"),
        ("no_script", "has no train.py (looked in the folder and one level down)"),
    ],
)
def test_bad_submission_exits_2_with_one_line(tmp_path, breakage, message):
    submission = _copy_reference(tmp_path)
    if breakage == "no_notebook":
        (submission / "assignment2.ipynb").unlink()
    elif breakage == "not_json":
        (submission / "assignment2.ipynb").write_text("{this is not json")
    else:
        (submission / "train.py").unlink()
    out = tmp_path / "out"
    completed = _grader("grade", str(submission), "--out", str(out), cwd=tmp_path)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("grader: error: ")
    assert message in lines[0]
    assert not out.exists()


def test_missing_path_and_bad_rubric(tmp_path):
    completed = _grader("grade", str(tmp_path / "absent"), cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == f"grader: error: {tmp_path / 'absent'} does not exist"
    rubric = tmp_path / "r.yaml"
    rubric.write_text("name: x\ntitle: y\ncriteria: []\n")
    completed = _grader("grade", str(tmp_path), "--rubric", str(rubric), cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        f"grader: error: rubric {rubric}: criteria: Value error, "
        "a rubric needs at least one criterion"
    )
