"""The HTML report: what each audience sees, escaping, and self-containment."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from grader import files
from grader.plots import learning_curve_svg
from grader.report import render_report, strip_ansi, trim_log, write_report
from grader.results import (
    CellFailure,
    GradeResult,
    JobRecord,
    LearningCurve,
    ModelScores,
    Verdict,
)

PAYLOAD = "<script>alert(1)</script>"
ESCAPED_PAYLOAD = "&lt;script&gt;alert(1)&lt;/script&gt;"
SVG_NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def _verdicts() -> list[Verdict]:
    return [
        Verdict(
            id="notebook_runs", title="Notebook runs from top to bottom",
            status="failed", points=0, max_points=10,
            message="Cell 4 raised KeyError",
            cause="train.py reads SM_CHANNEL_VALIDATION, which fit() never set.",
            fix="Pass a validation channel to estimator.fit().",
            location="cell 4",
        ),
        Verdict(
            id="job_completed", title="Training job completes",
            status="passed", points=15, max_points=15,
            message="the job completed in 41.2 s",
        ),
        Verdict(
            id="metrics_logged", title="Training and validation metrics logged",
            status="error", points=0, max_points=5,
            message="No metric_definitions matched the training log.",
        ),
        Verdict(
            id="auc_threshold", title="Validation and holdout AUC meet the bar",
            status="passed", points=15, max_points=15, hidden=True,
            message="holdout AUC clears the secret bar",
        ),
    ]


def _result(**overrides: object) -> GradeResult:
    fields: dict[str, object] = {
        "submission": "student-042",
        "score": 30,
        "max_score": 45,
        "rubric": "assignment2",
        "grader_version": "9.9.9",
        "graded_at": "2025-05-01T10:04:31+00:00",
        "criteria": _verdicts(),
        "student": ModelScores(validation_auc=0.9871, holdout_auc=0.8123),
        "reference": ModelScores(validation_auc=0.9912, holdout_auc=0.7456),
        "learning_curve": LearningCurve(
            rounds=[1, 2, 3], train=[0.91, 0.95, 0.97], validation=[0.90, 0.93, 0.94]
        ),
    }
    fields.update(overrides)
    return GradeResult.model_validate(fields)


class _TextOnly(HTMLParser):
    """What a reader sees: the document's text, minus styles and SVG."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("style", "svg"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "svg"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text(html: str) -> str:
    parser = _TextOnly()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def _fix_first_box(html: str) -> str:
    match = re.search(r'<section class="fix">(.*?)</section>', html, re.S)
    assert match, "no 'What to fix first' box in the report"
    return _text(match.group(1))


def test_student_report_omits_hidden_criterion() -> None:
    html = render_report(_result(), audience="student")
    text = _text(html)

    assert "Validation and holdout AUC meet the bar" not in text
    assert "auc_threshold" not in html
    assert "holdout AUC clears the secret bar" not in text
    assert "hidden from students" not in text
    # 30 of 45 includes the hidden 15; students see the visible sum only.
    assert "15 / 30" in text
    assert "30 / 45" not in text


def test_student_report_omits_holdout_aucs() -> None:
    html = render_report(_result(), audience="student")

    assert "0.8123" not in html
    assert "0.7456" not in html
    assert "Holdout AUC" not in _text(html)
    assert "0.9871" in html and "0.9912" in html


def test_instructor_report_shows_hidden_criterion_and_holdout() -> None:
    text = _text(render_report(_result()))

    assert "Validation and holdout AUC meet the bar" in text
    assert "holdout AUC clears the secret bar" in text
    assert "hidden from students" in text
    assert "30 / 45" in text
    assert "Students see 15 / 30" in text
    assert "Holdout AUC 0.8123 0.7456" in text


def test_missing_aucs_read_not_computed() -> None:
    result = _result(student=ModelScores(), reference=ModelScores(validation_auc=0.99))
    text = _text(render_report(result))

    assert "Validation AUC not computed 0.9900" in text
    assert "Holdout AUC not computed not computed" in text


def test_fix_first_lists_failures_in_order_with_cause_and_fix() -> None:
    box = _fix_first_box(render_report(_result(), audience="student"))

    first = box.index("Notebook runs from top to bottom")
    second = box.index("Training and validation metrics logged")
    assert first < second
    assert "train.py reads SM_CHANNEL_VALIDATION, which fit() never set." in box
    assert "Pass a validation channel to estimator.fit()." in box
    assert "cell 4" in box
    # Without a cause the message stands in; passed criteria are not listed.
    assert "No metric_definitions matched the training log." in box
    assert "Cell 4 raised KeyError" not in box
    assert "Training job completes" not in box


def test_fix_first_sits_above_the_criteria_table() -> None:
    html = render_report(_result())

    assert html.index("What to fix first") < html.index('<table class="criteria">')


def test_all_passed_has_no_failures_to_fix() -> None:
    passed = [v for v in _verdicts() if v.status == "passed"]
    html = render_report(_result(criteria=passed))

    assert '<section class="fix">' not in html
    assert "Nothing: no criterion failed." in _text(html)


def _failing(**fields: str) -> dict[str, list[Verdict]]:
    return {"criteria": [Verdict(id="x", status="failed", **{"message": "m", **fields})]}


# Every field that carries text from the submission, one at a time.
_STUDENT_FIELDS = {
    "submission": {"submission": PAYLOAD},
    "message": _failing(message=PAYLOAD),
    "cause": _failing(cause=PAYLOAD),
    "fix": _failing(fix=PAYLOAD),
    "location": _failing(location=PAYLOAD),
    "title": _failing(title=PAYLOAD),
    "cell source": {"cell_failure": CellFailure(
        index=3, source=PAYLOAD, error_name="E", error_value="v", traceback="t")},
    "traceback": {"cell_failure": CellFailure(
        index=3, source="s", error_name="E", error_value=PAYLOAD, traceback=PAYLOAD)},
    "training log": {"training_log": f"line one\n{PAYLOAD}\nline three"},
    "job": {"jobs": [JobRecord(
        name=PAYLOAD, status=PAYLOAD, failure_reason=PAYLOAD, entry_point=PAYLOAD,
        hyperparameters={PAYLOAD: PAYLOAD}, channels={"train": PAYLOAD})]},
    "metric name": {"learning_curve": LearningCurve(
        rounds=[1, 2], train=[0.9, 0.95], validation=[0.8, 0.9], metric=PAYLOAD)},
    "error": {"status": "error", "error": PAYLOAD},
}


@pytest.mark.parametrize("field", _STUDENT_FIELDS)
@pytest.mark.parametrize("audience", ["instructor", "student"])
def test_student_text_is_escaped(field: str, audience: str) -> None:
    html = render_report(_result(**_STUDENT_FIELDS[field]), audience=audience)

    assert "<script" not in html
    assert ESCAPED_PAYLOAD in html


def test_ansi_codes_are_stripped_from_tracebacks() -> None:
    failure = CellFailure(
        index=5,
        source="estimator.fit(inputs)",
        error_name="KeyError",
        error_value="\x1b[0;31m'SM_CHANNEL_VALIDATION'\x1b[0m",
        traceback=(
            "\x1b[0;31m-----------\x1b[0m\n"
            "\x1b[0;31mKeyError\x1b[0m    Traceback (most recent call last)\n"
            "Cell \x1b[0;32mIn[5], line 1\x1b[0m\n"
            "\x1b[38;5;241m----> 1\x1b[39m estimator.fit(inputs)"
        ),
    )
    html = render_report(_result(cell_failure=failure))

    assert "\x1b" not in html
    assert "[0;31m" not in html and "[38;5;241m" not in html
    assert "KeyError    Traceback (most recent call last)" in html
    assert "----&gt; 1 estimator.fit(inputs)" in html
    assert "KeyError: &#39;SM_CHANNEL_VALIDATION&#39;" in html


def test_strip_ansi_handles_cursor_and_title_sequences() -> None:
    assert strip_ansi("\x1b[2K\x1b[1Gdone\x1b]0;title\x07!") == "done!"


def test_report_loads_nothing_from_the_network() -> None:
    url = "https://example.com/steal?x=1"
    result = _result(
        criteria=[Verdict(id="x", status="failed", message=f"see {url}")],
        training_log=f"downloading {url}",
    )
    html = render_report(result)

    for attribute in ("src=", "href=", "action="):
        assert not re.search(attribute + r"[\"']?\s*(https?:)?//", html), attribute
    # url() is allowed only for the SVG's own fragment references.
    assert not re.search(r"url\(\s*[\"']?(?!#)", html)
    assert "@import" not in html
    assert "<script" not in html and "<link" not in html
    # What remains is the student's own text and the SVG's namespace names.
    found = set(re.findall(r"https?://[^\s\"'<]+", html))
    assert found - SVG_NAMESPACES == {url}


def test_learning_curve_svg_is_inlined() -> None:
    html = render_report(_result())

    assert html.count("<svg") == 1
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert "No learning curve was recorded" not in html


@pytest.mark.parametrize("curve", [None, LearningCurve(), LearningCurve(rounds=[1, 2])])
def test_learning_curve_absent_without_points(curve: LearningCurve | None) -> None:
    html = render_report(_result(learning_curve=curve))

    assert "<svg" not in html
    assert "No learning curve was recorded for this submission." in _text(html)


def test_learning_curve_svg_is_deterministic_and_bare() -> None:
    curve = LearningCurve(rounds=[1, 2, 3], train=[0.9, 0.95, 0.97], validation=[0.8, 0.9])
    first, second = learning_curve_svg(curve), learning_curve_svg(curve)

    assert first is not None and first == second
    assert first.startswith("<svg") and first.endswith("</svg>")
    assert "<metadata" not in first
    assert learning_curve_svg(LearningCurve()) is None


def test_long_training_log_is_trimmed_to_head_and_tail() -> None:
    log = "\n".join(f"[{n}] validation-auc:0.9" for n in range(1, 301))
    html = render_report(_result(training_log=log))

    assert "[60] validation-auc" in html
    assert "[61] validation-auc" not in html
    assert "... 120 lines omitted ..." in html
    assert "[180] validation-auc" not in html
    assert "[181] validation-auc" in html and "[300] validation-auc" in html
    assert re.search(r"<details>\s*<summary>", html)


def test_short_training_log_is_kept_whole() -> None:
    lines = [f"line {n}" for n in range(1, 201)]
    trimmed = trim_log("\n".join(lines))

    assert trimmed.omitted_lines == 0
    assert trimmed.head.splitlines() == lines


def test_error_result_shows_the_error_instead_of_criteria() -> None:
    result = _result(status="error", error="no notebook matching *.ipynb in submission.zip")
    result.criteria = []
    text = _text(render_report(result, audience="student"))

    assert "Grading stopped before the criteria could be judged" in text
    assert "no notebook matching *.ipynb in submission.zip" in text
    assert "Not graded" in text
    assert "What to fix first" not in text
    assert "Notebook runs from top to bottom" not in text


def test_jobs_table_shows_the_job_record() -> None:
    job = JobRecord(
        name="xgb-2025-05-01-10-00-00-000",
        status="Failed",
        failure_reason="AlgorithmError: ExecuteUserScriptError",
        model_data=None,
        image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1",
        entry_point="train.py",
        hyperparameters={"max_depth": 5, "eta": 0.2},
        channels={"train": "s3://bucket/assignment2/train/"},
        duration_seconds=75.6,
    )
    text = _text(render_report(_result(jobs=[job])))

    for expected in (
        "xgb-2025-05-01-10-00-00-000 Failed 1m 16s",
        "Failure reason AlgorithmError: ExecuteUserScriptError",
        "Model artifact not saved",
        "sagemaker-xgboost:1.7-1",
        "Entry point train.py",
        "max_depth = 5 eta = 0.2",
        "train = s3://bucket/assignment2/train/",
    ):
        assert expected in text


def test_footer_names_the_grader_version() -> None:
    assert "Generated by grader 9.9.9" in _text(render_report(_result()))


def test_unknown_audience_is_rejected() -> None:
    with pytest.raises(ValueError, match="'public' is not one of instructor, student"):
        render_report(_result(), audience="public")


def test_write_report_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "student-042.html"
    write_report(_result(), target, audience="student")

    assert [p.name for p in target.parent.iterdir()] == ["student-042.html"]
    assert target.read_text(encoding="utf-8") == render_report(_result(), audience="student")


def test_write_report_cleans_up_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "student-042.html"
    target.write_text("previous report", encoding="utf-8")

    def refuse(source: object, destination: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_report(_result(), target)

    assert os.listdir(tmp_path) == ["student-042.html"]
    assert target.read_text(encoding="utf-8") == "previous report"


def test_error_after_judging_shows_the_reason_and_the_criteria() -> None:
    result = _result(status="error", error="notebook cell 3: the cell ran longer than 30 s")
    text = _text(render_report(result, audience="instructor"))

    assert "This submission broke the grader's limits" in text
    assert "notebook cell 3: the cell ran longer than 30 s" in text
    assert "Criteria" in text
