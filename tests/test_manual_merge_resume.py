"""Manual scores fold into every total; shards merge into one class; a
killed batch resumes with nothing lost and nothing graded twice."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, SUBMISSIONS
from grader.errors import GraderError
from grader.exports import gradescope_results, validate_gradescope, write_grades_csv
from grader.manual import apply_scores, find_answers, load_scores
from grader.results import GradeResult, Status, Verdict


def _result(student: str, rubric) -> GradeResult:
    notebook = nbformat.read(ROOT / "reference_solution" / "assignment2.ipynb", as_version=4)
    criteria = [
        Verdict(id=c.id, title=c.title, status=Status.PASSED, points=c.points,
                max_points=c.points, message="ok", hidden=c.hidden)
        for c in rubric.criteria
    ]
    return GradeResult(submission=student, score=100, max_score=100, criteria=criteria,
                       manual=find_answers(notebook, rubric), rubric=rubric.name,
                       rubric_hash=rubric.fingerprint(), graded_at="2026-12-01T10:00:00+00:00")


def test_answers_are_found_by_tag(rubric):
    notebook = nbformat.read(ROOT / "reference_solution" / "assignment2.ipynb", as_version=4)
    items = find_answers(notebook, rubric)
    assert [(i.id, i.location) for i in items] == [
        ("explain_estimators", "notebook cell 14"),
        ("explain_environment", "notebook cell 15"),
        ("explain_hyperparameters", "notebook cell 16"),
    ]
    assert items[0].answer.startswith("## Understanding: Estimator types")
    assert all(i.points is None for i in items)


def test_manual_scores_change_totals_csv_and_gradescope(rubric, tmp_path):
    scores_file = tmp_path / "scores.yaml"
    scores_file.write_text(
        "alice:\n  explain_estimators: {points: 4, comment: Clear.}\n"
        "  explain_environment: 5\n"
    )
    scores = load_scores(scores_file, rubric)
    result = apply_scores(_result("alice", rubric), scores["alice"])
    assert (result.score, result.max_score) == (109, 110)
    assert apply_scores(result, scores["alice"]).score == 109  # idempotent

    write_grades_csv([result], rubric, tmp_path / "grades.csv")
    row = next(csv.DictReader((tmp_path / "grades.csv").open()))
    assert (row["score"], row["max_score"]) == ("109", "110")
    assert (row["explain_estimators"], row["explain_environment"]) == ("4", "5")
    assert row["explain_hyperparameters"] == ""

    payload = gradescope_results(result, rubric)
    assert validate_gradescope(payload) == []
    assert payload["score"] == 109
    manual = [t for t in payload["tests"] if t["name"] == rubric.manual[0].title]
    assert manual == [{"name": rubric.manual[0].title, "score": 4.0, "max_score": 5.0,
                       "status": "failed", "output": "Clear.", "visibility": "visible"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bob:\n  explain_vibes: 3\n", "bob: unknown manual item 'explain_vibes'"),
        ("bob:\n  explain_environment: 9\n", "points must be a number from 0 to 5"),
        ("- just a list\n", "expected a mapping of student id"),
    ],
)
def test_bad_scores_file_names_the_problem(rubric, tmp_path, text, message):
    path = tmp_path / "scores.yaml"
    path.write_text(text)
    with pytest.raises(GraderError, match=message):
        load_scores(path, rubric)


def _grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_merge_combines_shards(rubric, tmp_path):
    for shard, student in (("r1", "alice"), ("r2", "bob")):
        folder = tmp_path / shard / student
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(_result(student, rubric).model_dump_json())
    scores = tmp_path / "scores.yaml"
    scores.write_text("bob:\n  explain_hyperparameters: 5\n")
    out = tmp_path / "all"
    completed = _grader("merge", str(tmp_path / "r1"), str(tmp_path / "r2"), "--out", str(out),
                        "--manual", str(scores), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [(r["student"], r["score"], r["max_score"]) for r in rows] == [
        ("alice", "100", "100"), ("bob", "105", "105")
    ]
    assert "bob/report.html" in (out / "index.html").read_text()
    assert json.loads((out / "bob" / "results.json").read_text())["score"] == 105


def test_killed_batch_resumes_without_loss_or_duplicates(tmp_path, reference):
    class_dir = tmp_path / "class"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(SUBMISSIONS / "reference", class_dir / name)
    out = tmp_path / "reports"
    command = [sys.executable, "-m", "grader.cli", "grade", str(class_dir), "--out", str(out),
               "--workers", "1", "--quiet"]
    batch = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(out.glob("*/.source-hash")):
        time.sleep(0.5)
    import os
    import signal

    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    first = {p.parent.name: json.loads((p.parent / "results.json").read_text())["graded_at"]
             for p in out.glob("*/.source-hash")}
    assert 1 <= len(first) < 3

    completed = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True,
                               timeout=400)
    assert completed.returncode == 0, completed.stderr
    results = sorted(out.glob("*/results.json"))
    assert [p.parent.name for p in results] == ["s1", "s2", "s3"]
    for student, graded_at in first.items():
        kept = json.loads((out / student / "results.json").read_text())
        assert kept["graded_at"] == graded_at  # not graded again
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [r["student"] for r in rows] == ["s1", "s2", "s3"]
    assert not list(out.rglob(".*.tmp"))


def test_sigterm_to_the_grader_leaves_no_process_or_temporary_directory(tmp_path, reference):
    """A CI timeout sends SIGTERM to the grader alone: it stops as on
    Ctrl-C, and its workers, their sandboxes and every temporary directory
    (the holdout copy among them) go with it."""
    import os
    import signal

    class_dir = tmp_path / "class"
    for name in ("s1", "s2", "s3"):
        shutil.copytree(SUBMISSIONS / "reference", class_dir / name)
    # Short: the workers' Unix sockets live below it, and their paths are limited.
    scratch = Path(tempfile.mkdtemp(prefix="sigterm-", dir="/tmp"))
    out = tmp_path / "reports"
    command = [sys.executable, "-m", "grader.cli", "grade", str(class_dir), "--out", str(out),
               "--workers", "2", "--quiet"]
    batch = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True,
                             env={**os.environ, "TMPDIR": str(scratch)})
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list(scratch.glob("grader-private-*")):
        time.sleep(0.2)
    batch.send_signal(signal.SIGTERM)
    assert batch.wait(timeout=120) == 130
    assert "interrupted; results written so far are kept" in batch.stderr.read()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and list(scratch.glob("grader-*")):
        time.sleep(0.5)
    assert sorted(p.name for p in scratch.glob("grader-*")) == []
    shutil.rmtree(scratch, ignore_errors=True)
    left = True
    deadline = time.monotonic() + 30
    while left and time.monotonic() < deadline:
        try:
            os.killpg(batch.pid, 0)
            time.sleep(0.5)
        except ProcessLookupError:
            left = False
    assert left is False
