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
        ("not_json", "assignment2.ipynb is not a valid Jupyter notebook (Notebook does not "
                     "appear to be JSON"),
        ("json_not_notebook", "assignment2.ipynb is not a valid Jupyter notebook ("),
        ("json_list", "assignment2.ipynb is not a valid Jupyter notebook ("),
        ("no_script", "has no train.py (looked in the folder and one level down)"),
        ("linked_script", "train.py is a link; submit the file itself"),
    ],
)
def test_bad_submission_exits_2_with_one_line(tmp_path, breakage, message):
    submission = _copy_reference(tmp_path)
    if breakage == "no_notebook":
        (submission / "assignment2.ipynb").unlink()
    elif breakage == "not_json":
        (submission / "assignment2.ipynb").write_text("{this is not json")
    elif breakage == "json_not_notebook":
        (submission / "assignment2.ipynb").write_text('{"hello": [1, 2, 3]}')
    elif breakage == "json_list":
        (submission / "assignment2.ipynb").write_text("[1, 2]")
    elif breakage == "linked_script":
        (submission / "train.py").unlink()
        (submission / "train.py").symlink_to("/etc/hostname")
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


def test_out_that_is_a_file_and_bad_worker_count(tmp_path):
    submission = _copy_reference(tmp_path)
    existing = tmp_path / "existing"
    existing.write_text("x")
    completed = _grader("grade", str(submission), "--out", str(existing), cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        f"grader: error: --out {existing} is a file; give a folder for the reports"
    )
    completed = _grader("grade", str(tmp_path), "--workers", "0", cwd=tmp_path)
    assert completed.stderr.strip() == "grader: error: --workers 0: give at least 1"


def test_rubric_fractions_must_leave_training_data(tmp_path):
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "name: x\ntitle: y\ncriteria:\n  - {id: notebook_runs, title: t, points: 1}\n"
        "fixtures: {dataset: {validation_fraction: 0.9, holdout_fraction: 0.2}}\n"
    )
    completed = _grader("grade", str(tmp_path), "--rubric", str(rubric), cwd=tmp_path)
    assert completed.returncode == 2
    assert "fixtures.dataset: Value error, validation_fraction + holdout_fraction must " \
        "leave at least 10% for training" in completed.stderr


def test_cli_gives_back_the_callers_sigterm_handler(tmp_path):
    """main() turns SIGTERM into an interrupt only while it runs."""
    import signal

    from grader.cli import main

    def callers_handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, callers_handler)
    try:
        assert main(["grade", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
        assert signal.getsignal(signal.SIGTERM) is callers_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
