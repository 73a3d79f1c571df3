"""The Gradescope autograder: the zip's layout, and its runner grading a
stand-in for /autograder with this venv's Python (setup.sh is not run).

Grading the reference submission scores the reference solution first, so
this file grades twice; the broken submission is refused before either.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT, SUBMISSIONS
from grader.exports import validate_gradescope
from grader.gradescope_run import _submission_folder

RUBRIC = ROOT / "rubrics" / "assignment2.yaml"
REFERENCE = SUBMISSIONS / "reference"


def _run(*args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The autograder zip built by the CLI, and where it is unzipped."""
    work = tmp_path_factory.mktemp("gradescope")
    archive = work / "autograder.zip"
    completed = _run(
        "grader.cli", "gradescope-bundle", "--rubric", str(RUBRIC),
        "--out", str(archive), cwd=work,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"Gradescope autograder: {archive} (")
    unzipped = work / "unzipped"
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(unzipped)
    return archive, unzipped


def _runner(unzipped: Path, root: Path, timeout: int) -> subprocess.CompletedProcess:
    """run_autograder's command with the bundled rubric, run by this venv's
    grader: the bundle's own copy would need setup.sh's editable install,
    since the sandbox exposes only the package the grader was imported from."""
    return _run(
        "grader.gradescope_run", "--root", str(root),
        "--rubric", str(unzipped / "rubric.yaml"), cwd=root, timeout=timeout,
    )


def test_bundle_layout(bundle):
    archive, unzipped = bundle
    with zipfile.ZipFile(archive) as opened:
        members = {info.filename: info for info in opened.infolist()}
    names = set(members)

    for name in (
        "setup.sh",
        "run_autograder",
        "rubric.yaml",
        "source/pyproject.toml",
        "source/README.md",
        "source/grader/__init__.py",
        "source/grader/gradescope_run.py",
        "source/grader/templates/report.html.j2",
        "source/rubrics/assignment2.yaml",
        "source/reference_solution/assignment2.ipynb",
        "source/reference_solution/train.py",
    ):
        assert name in names, name
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    top = {"setup.sh", "run_autograder", "rubric.yaml"}
    assert all(n in top or n.startswith("source/") for n in names)
    for script in ("setup.sh", "run_autograder"):
        mode = members[script].external_attr >> 16
        assert stat.S_ISREG(mode) and mode & 0o111 == 0o111, oct(mode)
    assert members["rubric.yaml"].external_attr >> 16 & 0o111 == 0

    setup = (unzipped / "setup.sh").read_text()
    assert setup.startswith("#!/usr/bin/env bash")
    assert "pip install --editable \"$SOURCE/source\"" in setup
    assert "VENV=/autograder/venv" in setup and '-m venv --clear "$VENV"' in setup
    run_autograder = (unzipped / "run_autograder").read_text()
    assert "-m grader.gradescope_run --root /autograder" in run_autograder
    assert "--rubric /autograder/source/rubric.yaml" in run_autograder
    assert (unzipped / "rubric.yaml").read_bytes() == RUBRIC.read_bytes()


def test_bundle_refuses_a_bad_rubric(tmp_path):
    rubric = tmp_path / "r.yaml"
    rubric.write_text("name: x\ntitle: y\ncriteria: []\n")
    completed = _run("grader.cli", "gradescope-bundle", "--rubric", str(rubric),
                     "--out", str(tmp_path / "autograder.zip"), cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        f"grader: error: rubric {rubric}: criteria: Value error, "
        "a rubric needs at least one criterion"
    )
    assert not (tmp_path / "autograder.zip").exists()


def test_reference_submission_scores_full_marks(bundle, tmp_path, rubric):
    _, unzipped = bundle
    root = tmp_path / "autograder"
    shutil.copytree(REFERENCE, root / "submission")

    completed = _runner(unzipped, root, timeout=900)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    payload = json.loads((root / "results" / "results.json").read_text())
    assert validate_gradescope(payload) == []
    assert payload["score"] == 100
    titles = {criterion.id: criterion.title for criterion in rubric.criteria}
    tests = {test["name"]: test for test in payload["tests"]}
    assert sorted(tests) == sorted(titles.values())
    for test in payload["tests"]:
        assert {"name", "score", "max_score", "status"} <= set(test)
        assert test["status"] == "passed" and test["score"] == test["max_score"]
    assert tests[titles["auc_threshold"]]["visibility"] == "after_published"
    for criterion_id, title in titles.items():
        if criterion_id != "auc_threshold":
            assert tests[title]["visibility"] == "visible"
    assert (root / "results" / "report" / "report.html").is_file()


def test_broken_submission_still_gets_results(bundle, tmp_path):
    _, unzipped = bundle
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    shutil.copyfile(REFERENCE / "train.py", root / "submission" / "train.py")

    completed = _runner(unzipped, root, timeout=120)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    payload = json.loads((root / "results" / "results.json").read_text())
    assert validate_gradescope(payload) == []
    assert payload["score"] == 0
    assert payload["tests"] == []
    assert payload["output"] == (
        "Your submission could not be graded: "
        f"{root / 'submission'} has no notebook matching '*.ipynb'"
    )
    assert not (root / "results" / "report").exists()


def test_a_zipped_folder_is_found_inside_the_submission(tmp_path, rubric):
    uploaded = tmp_path / "submission"
    (uploaded / "alice").mkdir(parents=True)
    shutil.copyfile(REFERENCE / "train.py", uploaded / "alice" / "train.py")
    found = _submission_folder(uploaded, rubric, tmp_path / "scratch")
    assert found == uploaded / "alice"

    shutil.rmtree(uploaded / "alice")
    with zipfile.ZipFile(uploaded / "alice.zip", "w") as archive:
        archive.write(REFERENCE / "train.py", "train.py")
        archive.write(REFERENCE / "assignment2.ipynb", "assignment2.ipynb")
    (tmp_path / "scratch").mkdir()
    found = _submission_folder(uploaded, rubric, tmp_path / "scratch")
    assert sorted(p.name for p in found.iterdir()) == ["assignment2.ipynb", "train.py"]
