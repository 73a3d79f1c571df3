"""Hostile submissions: each is stopped with the right status and reason,
the batch goes on, and none can read the hidden data, the reference
solution, the rubric or another student's work, or write outside its own
directory."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import ROOT, SUBMISSIONS
from grader.sandbox import bubblewrap_works

SNOOP = '''
import glob, json, os
targets = TARGETS
seen = {}
for name, path in targets.items():
    try:
        seen[name] = sorted(os.listdir(path)) if os.path.isdir(path) else open(path).read(50)
    except OSError as exc:
        seen[name] = "blocked: " + type(exc).__name__
seen["private_dirs"] = glob.glob("/tmp/grader-private-*") + glob.glob("/tmp/*/splits")
try:
    with open(targets["repository"] + "/grader/planted.py", "w") as handle:
        handle.write("x")
    seen["write_package"] = "written"
except OSError as exc:
    seen["write_package"] = "blocked: " + type(exc).__name__
print("SNOOP " + json.dumps(seen))
'''

HOSTILE_CELLS = {
    "endless_loop": "while True:\n    pass",
    "memory_hog": "hog = bytearray(8 * 1024 ** 3)",
    "output_flood": "while True:\n    print('x' * 10000)",
    "fork_bomb": "import os\nfor _ in range(64):\n    os.fork()",
}


def _with_cell(source: Path, target: Path, code: str) -> None:
    shutil.copytree(source, target)
    (target / "expected.yaml").unlink(missing_ok=True)
    notebook = nbformat.read(target / "assignment2.ipynb", as_version=4)
    notebook.cells.insert(2, nbformat.v4.new_code_cell(code))
    nbformat.write(notebook, target / "assignment2.ipynb")


def _tree_hash(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(file).encode() + file.read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory, reference):
    from grader.batch import discover, grade_class

    base = tmp_path_factory.mktemp("hostile")
    class_dir = base / "class"
    class_dir.mkdir()
    rubric = yaml.safe_load((ROOT / "rubrics" / "assignment2.yaml").read_text())
    rubric["timeouts"].update(cell_seconds=30, notebook_seconds=150, job_seconds=60)
    rubric["limits"].update(memory_mb=3072, output_bytes=200_000)
    rubric_path = base / "rubric.yaml"
    rubric_path.write_text(yaml.safe_dump(rubric))

    for name, code in HOSTILE_CELLS.items():
        _with_cell(SUBMISSIONS / "reference", class_dir / name, code)
    targets = {
        "other_student": str(class_dir / "endless_loop"),
        "class_dir": str(class_dir),
        "reference_solution": str(ROOT / "reference_solution"),
        "rubric": str(ROOT / "rubrics" / "assignment2.yaml"),
        "repository": str(ROOT),
    }
    snoop = SNOOP.replace("TARGETS", json.dumps(targets))
    _with_cell(SUBMISSIONS / "reference", class_dir / "snoop", snoop)
    shutil.copytree(SUBMISSIONS / "reference", class_dir / "honest")

    before = {name: _tree_hash(ROOT / name) for name in ("grader", "reference_solution",
                                                       "rubrics")}
    out = base / "reports"
    results = grade_class(discover(class_dir), out, rubric_path=rubric_path,
                          reference=reference, workers=2)
    after = {name: _tree_hash(ROOT / name) for name in before}
    return {r.submission: r for r in results}, out, before, after


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("endless_loop", "ran longer than 30 s"),
        ("memory_hog", "ran out of memory"),
        ("output_flood", "printed more than 4,000,000 bytes and was stopped"),
        # the process limit makes fork fail or the forks outlive the cell
        ("fork_bomb", ("started processes without end", "ran longer than 30 s")),
    ],
)
def test_abusive_submission_is_an_error_with_its_reason(hostile_class, name, reason):
    results, out, _, _ = hostile_class
    result = results[name]
    assert result.status == "error"
    reasons = (reason,) if isinstance(reason, str) else reason
    assert any(text in result.error for text in reasons), result.error
    stored = json.loads((out / name / "results.json").read_text())
    assert stored["status"] == "error"


def test_batch_goes_on_and_grades_the_honest_one(hostile_class):
    results, _, _, _ = hostile_class
    assert results["honest"].status == "graded"
    assert results["honest"].score == 100


@pytest.mark.skipif(not bubblewrap_works(), reason="bubblewrap is not available here")
def test_student_code_sees_none_of_the_graders_files(hostile_class):
    results, out, before, after = hostile_class
    assert results["snoop"].status == "graded"
    notebook = nbformat.read(out / "snoop" / "executed.ipynb", as_version=4)
    printed = "".join(
        o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.outputs
    )
    seen = json.loads(printed.split("SNOOP ", 1)[1].splitlines()[0])
    for name in ("other_student", "class_dir", "reference_solution", "rubric"):
        assert seen[name] == "blocked: FileNotFoundError", name
    # of the repository, only the package and its environment are mounted, read-only
    assert seen["repository"] == [".venv", "grader"]
    assert seen["private_dirs"] == []
    assert seen["write_package"].startswith("blocked: ")
    assert before == after
