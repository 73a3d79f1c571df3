"""Class exports: the CSV gradebook, Gradescope results, JUnit XML and the
class index, each checked on results built by hand."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader.exports import (
    common_causes,
    gradescope_results,
    render_class_index,
    validate_gradescope,
    write_class_index,
    write_class_outputs,
    write_grades_csv,
    write_gradescope,
    write_junit,
)
from grader.results import GradeResult, Verdict
from grader.rubric import Criterion, Rubric

HOSTILE_ID = "<img src=x onerror=alert(1)>"
JOB_A = "sagemaker-xgboost-2026-12-03-16-47-47-304"
JOB_B = "sagemaker-xgboost-2026-12-04-09-12-05-118"


def _cause(job: str) -> str:
    return (
        f"Training job {job} failed: train.py reads SM_CHANNEL_TRAIN, but fit() "
        "passed no channel named 'train'"
    )


@pytest.fixture
def rubric() -> Rubric:
    return Rubric(
        name="assignment2",
        title="Assignment 2",
        criteria=[
            Criterion(id="notebook_runs", title="Notebook runs", points=10),
            Criterion(id="job_completed", title="Training job completes", points=15),
            Criterion(id="auc_threshold", title="AUC meets the bar", points=15,
                      hidden=True),
        ],
    )


def _graded(student: str, *verdicts: Verdict) -> GradeResult:
    return GradeResult(
        submission=student,
        score=sum(v.points for v in verdicts),
        max_score=40,
        rubric="assignment2",
        criteria=list(verdicts),
    )


def _errored(student: str, error: str) -> GradeResult:
    return GradeResult(submission=student, status="error", error=error, max_score=40)


def _passed(criterion_id: str, points: float, **fields: object) -> Verdict:
    return Verdict(id=criterion_id, status="passed", points=points,
                   max_points=points, message="fine", **fields)


def _failed(
    criterion_id: str, max_points: float, cause: str, **fields: object
) -> Verdict:
    return Verdict(id=criterion_id, status="failed", points=0, max_points=max_points,
                   message=f"{criterion_id} failed", cause=cause,
                   fix="Pass fit({'train': ...}).", **fields)


@pytest.fixture
def alice() -> GradeResult:
    """Graded: one pass, one failure, the hidden criterion passed."""
    return _graded(
        "alice",
        _passed("notebook_runs", 10, title="Notebook runs"),
        _failed("job_completed", 15, _cause(JOB_A), title="Training job completes"),
        _passed("auc_threshold", 15, title="AUC meets the bar", hidden=True),
    )


# -- CSV -------------------------------------------------------------------------


def test_csv_has_one_row_per_student_sorted_with_points_and_error(
    tmp_path: Path, rubric: Rubric
) -> None:
    alice = _graded(
        "alice", _passed("notebook_runs", 10), _failed("job_completed", 15, "x")
    )
    bob = _errored("bob", "notebook.ipynb is not valid JSON")
    path = tmp_path / "grades.csv"

    write_grades_csv([bob, alice], rubric, path)

    assert path.read_bytes().decode() == (
        "student,status,score,max_score,"
        "notebook_runs,job_completed,auc_threshold,error\r\n"
        "alice,graded,10,40,10,0,,\r\n"
        "bob,error,0,40,,,,notebook.ipynb is not valid JSON\r\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["grades.csv"]


def test_csv_defuses_cells_a_spreadsheet_would_run(
    tmp_path: Path, rubric: Rubric
) -> None:
    path = tmp_path / "grades.csv"
    write_grades_csv([_errored("=HYPERLINK(\"x\")", "@SUM(1)")], rubric, path)
    row = path.read_text().splitlines()[1]
    assert row.startswith("\"'=HYPERLINK(\"\"x\"\")\",error,")
    assert row.endswith(",'@SUM(1)")


# -- Gradescope ------------------------------------------------------------------


def test_gradescope_payload_validates_and_hides_hidden_criteria(
    rubric: Rubric, alice: GradeResult
) -> None:
    payload = gradescope_results(alice, rubric)

    assert validate_gradescope(payload) == []
    tests = {test["name"]: test for test in payload["tests"]}
    assert tests["AUC meets the bar"]["visibility"] == "after_published"
    assert tests["Notebook runs"]["visibility"] == "visible"
    assert tests["Training job completes"]["status"] == "failed"
    assert sum(test["score"] for test in payload["tests"]) == payload["score"] == 25
    assert sum(test["max_score"] for test in payload["tests"]) == payload["max_score"]
    assert payload["visibility"] == "visible"
    assert payload["stdout_visibility"] == "hidden"


def test_gradescope_test_output_is_message_cause_and_fix(
    rubric: Rubric, alice: GradeResult
) -> None:
    failed = gradescope_results(alice, rubric)["tests"][1]
    assert failed["output"] == (
        "job_completed failed\n\n"
        f"Cause: {_cause(JOB_A)}\n\n"
        "Fix: Pass fit({'train': ...})."
    )


def test_gradescope_summary_counts_visible_criteria_only(
    rubric: Rubric, alice: GradeResult
) -> None:
    output = gradescope_results(alice, rubric)["output"]
    assert output.startswith("1 of 2 criteria passed.")
    assert "1 more criterion is shown when grades are published." in output
    assert "25" not in output


def test_gradescope_errored_submission_scores_zero_with_the_error(
    tmp_path: Path, rubric: Rubric
) -> None:
    path = tmp_path / "results.json"
    write_gradescope(_errored("bob", "notebook.ipynb is not valid JSON"), rubric, path)
    payload = json.loads(path.read_text())
    assert validate_gradescope(payload) == []
    assert payload["score"] == 0
    assert "notebook.ipynb is not valid JSON" in payload["output"]
    assert payload["tests"] == []


def test_validate_gradescope_catches_a_bad_status(
    rubric: Rubric, alice: GradeResult
) -> None:
    payload = gradescope_results(alice, rubric)
    payload["tests"][0]["status"] = "error"
    assert validate_gradescope(payload) == [
        "tests[0].status: 'error' is not one of passed, failed"
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"visibility": "students"}, "visibility: 'students' is not one of"),
        ({"score": "25"}, "score: expected int or float, got '25'"),
        ({"score": True}, "score: expected int or float, got True"),
        ({"score": 99}, "score: 99 is more than max_score 40"),
        (
            {"stdout_visiblity": "hidden"},
            "stdout_visiblity: not a field Gradescope knows",
        ),
        ({"tests": "all"}, "tests: expected list, got 'all'"),
    ],
)
def test_validate_gradescope_catches_top_level_problems(
    rubric: Rubric, alice: GradeResult, change: dict[str, object], problem: str
) -> None:
    payload = gradescope_results(alice, rubric) | change
    problems = validate_gradescope(payload)
    assert len(problems) == 1
    assert problems[0].startswith(problem)


def test_validate_gradescope_catches_a_test_scored_above_its_maximum(
    rubric: Rubric, alice: GradeResult
) -> None:
    payload = gradescope_results(alice, rubric)
    payload["tests"][0]["score"] = 11
    assert validate_gradescope(payload) == [
        "tests[0].score: 11 is more than max_score 10"
    ]


def test_validate_gradescope_rejects_what_is_not_an_object() -> None:
    assert validate_gradescope([]) == ["results must be a JSON object, not list"]


# -- JUnit -----------------------------------------------------------------------


def test_junit_counts_and_elements(
    tmp_path: Path, rubric: Rubric, alice: GradeResult
) -> None:
    carol = _graded(
        "carol",
        Verdict(id="notebook_runs", status="error", points=0, max_points=10,
                message="the kernel died\x1b[31m\x00"),
        Verdict(id="job_completed", status="skipped", points=0, max_points=15,
                message="no job ran"),
    )
    bob = _errored("bob", "notebook.ipynb is not valid JSON\nat byte 0")
    path = tmp_path / "junit.xml"

    write_junit([carol, bob, alice], rubric, path)

    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite"
    assert suite.get("name") == "grader"
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "6", "failures": "1", "errors": "2", "skipped": "1",
    }
    cases = [(c.get("classname"), c.get("name")) for c in suite.iter("testcase")]
    assert cases == [
        ("alice", "notebook_runs"),
        ("alice", "job_completed"),
        ("alice", "auc_threshold"),
        ("bob", "submission"),
        ("carol", "notebook_runs"), ("carol", "job_completed"),
    ]
    failure = suite.find("testcase[@classname='alice'][@name='job_completed']/failure")
    assert failure is not None and failure.get("message") == "job_completed failed"
    assert "Fix: Pass fit" in (failure.text or "")
    error = suite.find("testcase[@name='submission']/error")
    assert error is not None
    assert error.get("message") == "notebook.ipynb is not valid JSON"
    kernel = suite.find("testcase[@classname='carol'][@name='notebook_runs']/error")
    assert kernel is not None and kernel.get("message") == "the kernel died"
    skipped = suite.find("testcase[@classname='carol'][@name='job_completed']/skipped")
    assert skipped is not None and skipped.get("message") == "no job ran"


# -- Class index -----------------------------------------------------------------


class _Page(HTMLParser):
    """The attributes of every element, and the cells of each table's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.attributes: list[tuple[str, str, str]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            self.attributes.append((tag, name, value or ""))
        if tag == "table":
            self._table.append(dict(attrs).get("class") or "")
        elif tag == "tr" and self._table:
            self.rows.setdefault(self._table[-1], []).append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._table:
            self._table.pop()
        elif tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.rows[self._table[-1]][-1].append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _class() -> list[GradeResult]:
    """Alice and Bob fail the same way in differently named jobs; the third
    student has a hostile id and could not be graded."""
    alice = _graded(
        "alice",
        _passed("notebook_runs", 10),
        _failed("job_completed", 15, _cause(JOB_A)),
        _passed("auc_threshold", 15, hidden=True),
    )
    bob = _graded(
        "bob",
        _passed("notebook_runs", 10),
        _failed("job_completed", 15, _cause(JOB_B)),
    )
    return [alice, bob, _errored(HOSTILE_ID, "the grader crashed")]


_LINKS = {
    "alice": "alice/report.html",
    "bob": "bob/report.html",
    HOSTILE_ID: f"{HOSTILE_ID}/report.html",
}


def test_index_links_every_student_report(rubric: Rubric) -> None:
    page = _Page()
    page.feed(render_class_index(_class(), rubric, report_links=_LINKS))
    hrefs = [v for tag, name, v in page.attributes if (tag, name) == ("a", "href")]
    assert hrefs == [
        "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E/report.html",
        "alice/report.html",
        "bob/report.html",
    ]


def test_index_escapes_a_hostile_student_id(rubric: Rubric) -> None:
    html = render_class_index(_class(), rubric, report_links=_LINKS)
    assert HOSTILE_ID not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    page = _Page()
    page.feed(html)
    assert not [a for a in page.attributes if a[1].startswith("on")]
    assert [tag for tag, _, _ in page.attributes].count("img") == 0


def test_index_fetches_nothing_and_runs_only_its_own_script(rubric: Rubric) -> None:
    html = render_class_index(_class(), rubric, report_links=_LINKS)
    page = _Page()
    page.feed(html)
    for tag, name, value in page.attributes:
        if name in ("src", "href", "xlink:href", "action", "srcset"):
            scheme = re.match(r"\s*(?:[a-z][a-z0-9+.-]*:|//)", value, re.I)
            assert not scheme, (tag, value)
    assert not re.search(r"https?://(?!www\.w3\.org/)", html)

    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = re.search(r'Content-Security-Policy"\s+content="([^"]+)"', html)
    assert policy is not None
    assert "default-src 'none'" in policy.group(1)
    assert f"script-src 'sha256-{digest}'" in policy.group(1)
    assert "unsafe-inline'; img-src" in policy.group(1)  # styles only
    assert "script-src 'unsafe-inline'" not in policy.group(1)


def test_index_groups_a_cause_that_differs_only_in_job_name(rubric: Rubric) -> None:
    results = _class()
    groups = common_causes(results, rubric)
    assert [(g.criterion_id, g.count, g.students) for g in groups] == [
        ("job_completed", 2, ("alice", "bob")),
    ]

    page = _Page()
    page.feed(render_class_index(results, rubric, report_links=_LINKS))
    header, *rows = page.rows["causes"]
    assert header == ["Criterion", "Cause", "Submissions"]
    assert len(rows) == 1
    title, cause, count = rows[0]
    assert title == "Training job completes job_completed"
    assert cause.startswith("Training job <job> failed: train.py reads SM_CHANNEL_TRAIN")
    assert JOB_A not in cause and JOB_B not in cause
    assert count == "2"


def test_index_summarises_scores_and_pass_rates(rubric: Rubric) -> None:
    page = _Page()
    page.feed(render_class_index(_class(), rubric, report_links=_LINKS))
    header, *rates = page.rows["pass-rates"]
    assert [row[3] for row in rates] == ["2 / 2", "0 / 2", "1 / 1"]
    html = render_class_index(_class(), rubric, report_links=_LINKS)
    # alice 25, bob 10: the errored submission is left out of both.
    assert re.search(r"Mean</div>\s*<div class=\"value\">17.5<", html)
    assert re.search(r"Median</div>\s*<div class=\"value\">17.5<", html)
    assert "<svg" in html


def test_index_refuses_an_absolute_report_link(rubric: Rubric) -> None:
    with pytest.raises(ValueError, match="relative to index.html"):
        render_class_index(
            _class(), rubric, report_links={"alice": "//evil.example/report"}
        )


def test_index_without_a_link_names_the_student(rubric: Rubric, tmp_path: Path) -> None:
    path = tmp_path / "index.html"
    write_class_index(_class(), rubric, path, report_links={})
    assert "alice <span class=\"muted small\">(no report)</span>" in path.read_text()


def test_class_outputs_follow_the_batch_layout(tmp_path: Path, rubric: Rubric) -> None:
    results = _class()
    for student in ("alice", "bob"):
        (tmp_path / student).mkdir()
        (tmp_path / student / "report.html").write_text("<p>report</p>")

    write_class_outputs(results, rubric, tmp_path)

    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "grades.csv", "index.html", "junit.xml",
    ]
    gradescope = json.loads((tmp_path / "alice" / "gradescope.json").read_text())
    assert validate_gradescope(gradescope) == []
    index = (tmp_path / "index.html").read_text()
    assert 'href="alice/report.html"' in index
    assert "%3Cimg" not in index  # no report folder, so no link
