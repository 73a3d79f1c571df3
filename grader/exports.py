"""A class's grades in the formats other tools read: a CSV gradebook,
Gradescope's ``results.json``, JUnit XML for CI, and an HTML index that
links every submission's report.

Every writer takes the results as graded (one :class:`GradeResult` per
student, ``submission`` being the student id) with the rubric they were
graded against, and writes atomically: a reader finds the old file or the
new one, never half of either. Student ids and verdict texts are treated
as hostile wherever they land: escaped in HTML, defused in CSV, stripped
of characters XML cannot hold.
"""

from __future__ import annotations

import base64
import csv
import functools
import hashlib
import io
import json
import logging
import math
import re
import statistics
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from grader.plots import score_histogram_svg
from grader.report import strip_ansi, template_environment
from grader.files import write_atomic
from grader.results import GradeResult, Status, Verdict
from grader.rubric import Criterion, Rubric

__all__ = [
    "GRADESCOPE_FORMATS",
    "GRADESCOPE_STATUSES",
    "GRADESCOPE_VISIBILITIES",
    "CauseGroup",
    "common_causes",
    "gradescope_results",
    "render_class_index",
    "validate_gradescope",
    "write_class_index",
    "write_class_outputs",
    "write_grades_csv",
    "write_gradescope",
    "write_junit",
]

log = logging.getLogger("grader")

#: Values Gradescope accepts for ``visibility`` and ``stdout_visibility``.
GRADESCOPE_VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")
GRADESCOPE_STATUSES = ("passed", "failed")
GRADESCOPE_FORMATS = ("text", "html", "simple_format", "md", "ansi")

#: How many groups of identical mistakes the class index lists.
TOP_CAUSES = 10
#: Longest cause shown in the index; the full text is in each report.
CAUSE_DISPLAY_CHARS = 300

_FAILING = (Status.FAILED, Status.ERROR)

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Characters XML 1.0 cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# -- CSV gradebook -------------------------------------------------------------


def write_grades_csv(
    results: Sequence[GradeResult], rubric: Rubric, path: Path
) -> None:
    """One row per student, sorted by id: status, score, the points of each
    criterion (empty when it was not judged) and the grading error.

    A text cell that a spreadsheet would run as a formula is prefixed with
    ``'``, since student ids come from file names anyone can choose.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    ids = [criterion.id for criterion in rubric.criteria]
    manual_ids = [item.id for item in rubric.manual]
    writer.writerow(["student", "status", "score", "max_score", *ids, *manual_ids, "error"])
    for result in _by_student(results):
        points = []
        for criterion_id in ids:
            verdict = result.verdict(criterion_id)
            points.append("" if verdict is None else _number(verdict.points))
        scored = {item.id: item.points for item in result.manual}
        for item_id in manual_ids:
            given = scored.get(item_id)
            points.append("" if given is None else _number(given))
        writer.writerow([
            _cell(result.submission),
            result.status,
            _number(result.score),
            _number(_max_score(result, rubric)),
            *points,
            _cell(result.error or ""),
        ])
    write_atomic(Path(path), buffer.getvalue())
    log.debug("wrote grades of %d students to %s", len(results), path)


# -- Gradescope ----------------------------------------------------------------


def gradescope_results(result: GradeResult, rubric: Rubric) -> dict[str, Any]:
    """``result`` as the ``results.json`` a Gradescope autograder uploads.

    One test per rubric criterion, in rubric order. Hidden criteria are
    ``after_published``: students see them, and so their total score, only
    once the instructor publishes grades. All text is plain (``text``
    format), so nothing a student wrote is rendered as HTML or Markdown.
    """
    payload: dict[str, Any] = {
        "score": result.score,
        # Not in Gradescope's published spec, which takes the assignment's
        # points from its settings; kept for readers of this file.
        "max_score": _max_score(result, rubric),
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "submission": result.submission,
            "rubric": result.rubric or rubric.name,
            "rubric_hash": result.rubric_hash,
            "grader_version": result.grader_version,
        },
    }
    if result.timings.total > 0:
        payload["execution_time"] = round(result.timings.total)

    if result.status == "error":
        reason = strip_ansi(result.error or "the grader recorded no reason")
        payload["score"] = 0.0
        payload["output"] = f"Your submission could not be graded: {reason}"
        payload["tests"] = []
        return payload

    tests = [_gradescope_test(verdict) for verdict in _in_rubric_order(result, rubric)]
    for criterion in rubric.criteria:
        if result.verdict(criterion.id) is None:
            tests.append({
                "name": criterion.title,
                "score": 0.0,
                "max_score": criterion.points,
                "status": "failed",
                "output": "The grader did not judge this criterion.",
                "visibility": "after_published" if criterion.hidden else "visible",
            })
    for item in result.manual:
        if item.points is not None:
            tests.append({
                "name": item.title,
                "score": item.points,
                "max_score": item.max_points,
                "status": "passed" if item.points >= item.max_points else "failed",
                "output": item.comment or "Scored by the course staff.",
                "visibility": "visible",
            })
    payload["output"] = _gradescope_summary(result)
    payload["tests"] = tests
    return payload


def write_gradescope(result: GradeResult, rubric: Rubric, path: Path) -> None:
    """Write :func:`gradescope_results` as JSON to ``path``."""
    payload = gradescope_results(result, rubric)
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    write_atomic(Path(path), text)
    log.debug("wrote Gradescope results for %s to %s", result.submission, path)


def validate_gradescope(payload: Any) -> list[str]:
    """Every way ``payload`` breaks Gradescope's ``results.json`` spec:
    unknown or mistyped fields, values outside the allowed sets, and a
    score above its maximum. An empty list means it conforms."""
    if not isinstance(payload, dict):
        return [f"results must be a JSON object, not {type(payload).__name__}"]

    problems = _check_fields(payload, _GRADESCOPE_TOP, "")
    tests = payload.get("tests", [])
    if not isinstance(tests, list):
        tests = []
    for index, test in enumerate(tests):
        where = f"tests[{index}]"
        if not isinstance(test, dict):
            problems.append(f"{where}: must be an object, not {type(test).__name__}")
            continue
        problems += _check_fields(test, _GRADESCOPE_TEST, f"{where}.")
        if "score" not in test and "score" not in payload:
            problems.append(f"{where}.score: required when there is no top-level score")

    if "score" not in payload and not tests:
        problems.append("score: required when there are no tests")
    leaderboard = payload.get("leaderboard", [])
    for index, entry in enumerate(leaderboard if isinstance(leaderboard, list) else []):
        where = f"leaderboard[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be an object, not {type(entry).__name__}")
            continue
        problems += _check_fields(entry, _GRADESCOPE_LEADER, f"{where}.")
        for required in ("name", "value"):
            if required not in entry:
                problems.append(f"{where}.{required}: missing")
    return problems


def _gradescope_test(verdict: Verdict) -> dict[str, Any]:
    return {
        "name": verdict.title or verdict.id,
        "score": verdict.points,
        "max_score": verdict.max_points,
        "status": "passed" if verdict.status is Status.PASSED else "failed",
        "output": _verdict_text(verdict),
        "visibility": "after_published" if verdict.hidden else "visible",
    }


def _gradescope_summary(result: GradeResult) -> str:
    """Counts over visible criteria only: a total would give hidden points
    away before the grades are published."""
    visible = [v for v in result.criteria if not v.hidden]
    passed = sum(1 for v in visible if v.status is Status.PASSED)
    lines = [f"{passed} of {len(visible)} criteria passed."]
    hidden = len(result.criteria) - len(visible)
    if hidden:
        more = "criterion is" if hidden == 1 else "criteria are"
        lines.append(f"{hidden} more {more} shown when grades are published.")
    if passed < len(visible):
        lines.append("Each failed test below says what went wrong and how to fix it.")
    return "\n".join(lines)


def _verdict_text(verdict: Verdict) -> str:
    parts = [verdict.message]
    for label, text in (
        ("Cause", verdict.cause),
        ("Fix", verdict.fix),
        ("Where", verdict.location),
    ):
        if text:
            parts.append(f"{label}: {text}")
    return strip_ansi("\n\n".join(parts))


@dataclass(frozen=True)
class _Field:
    types: tuple[type, ...]
    choices: tuple[str, ...] = ()


_NUMBER = (int, float)
_GRADESCOPE_TOP = {
    "score": _Field(_NUMBER),
    "max_score": _Field(_NUMBER),
    "execution_time": _Field(_NUMBER),
    "output": _Field((str,)),
    "output_format": _Field((str,), GRADESCOPE_FORMATS),
    "test_output_format": _Field((str,), GRADESCOPE_FORMATS),
    "test_name_format": _Field((str,), GRADESCOPE_FORMATS),
    "visibility": _Field((str,), GRADESCOPE_VISIBILITIES),
    "stdout_visibility": _Field((str,), GRADESCOPE_VISIBILITIES),
    "extra_data": _Field((dict,)),
    "tests": _Field((list,)),
    "leaderboard": _Field((list,)),
}
_GRADESCOPE_TEST = {
    "score": _Field(_NUMBER),
    "max_score": _Field(_NUMBER),
    "status": _Field((str,), GRADESCOPE_STATUSES),
    "name": _Field((str,)),
    "name_format": _Field((str,), GRADESCOPE_FORMATS),
    "number": _Field((str,)),
    "output": _Field((str,)),
    "output_format": _Field((str,), GRADESCOPE_FORMATS),
    "tags": _Field((list,)),
    "visibility": _Field((str,), GRADESCOPE_VISIBILITIES),
    "extra_data": _Field((dict,)),
}
_GRADESCOPE_LEADER = {
    "name": _Field((str,)),
    "value": _Field((int, float, str)),
    "order": _Field((str,), ("asc", "desc")),
}


def _check_fields(
    mapping: dict[str, Any], fields: dict[str, _Field], prefix: str
) -> list[str]:
    problems = []
    for key, value in mapping.items():
        where = f"{prefix}{key}"
        field = fields.get(key)
        if field is None:
            problems.append(f"{where}: not a field Gradescope knows")
            continue
        # bool is an int to Python, never a number to Gradescope.
        if isinstance(value, bool) or not isinstance(value, field.types):
            expected = " or ".join(t.__name__ for t in field.types)
            problems.append(f"{where}: expected {expected}, got {value!r}")
            continue
        if field.choices and value not in field.choices:
            problems.append(
                f"{where}: {value!r} is not one of {', '.join(field.choices)}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}: {value!r} is not a finite number")
    tags = mapping.get("tags")
    if isinstance(tags, list) and not all(isinstance(tag, str) for tag in tags):
        problems.append(f"{prefix}tags: every tag must be a string")

    score, maximum = mapping.get("score"), mapping.get("max_score")
    if _is_number(score) and _is_number(maximum) and score > maximum:
        problems.append(f"{prefix}score: {score:g} is more than max_score {maximum:g}")
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, _NUMBER) and not isinstance(value, bool)


# -- JUnit XML -----------------------------------------------------------------


def write_junit(results: Sequence[GradeResult], rubric: Rubric, path: Path) -> None:
    """JUnit XML for CI dashboards: one testcase per judged criterion, with
    the student as its class, so a dashboard groups them by student.

    A submission that could not be graded is one ``submission`` testcase
    holding the error.
    """
    suite = ET.Element("testsuite", name="grader")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for result in _by_student(results):
        student = _xml_text(result.submission)
        if result.status == "error":
            case = ET.SubElement(
                suite, "testcase", classname=student, name="submission"
            )
            reason = _xml_text(result.error or "the grader recorded no reason")
            error = ET.SubElement(case, "error", message=_first_line(reason))
            error.text = reason
            counts["tests"] += 1
            counts["errors"] += 1
            continue
        for verdict in _in_rubric_order(result, rubric):
            case = ET.SubElement(suite, "testcase", classname=student, name=verdict.id)
            counts["tests"] += 1
            tag = _JUNIT_TAGS.get(verdict.status)
            if tag is None:
                continue
            element = ET.SubElement(case, tag, message=_xml_text(verdict.message))
            if tag != "skipped":
                element.text = _xml_text(_verdict_text(verdict))
            counts[_JUNIT_COUNTS[tag]] += 1
    for name, count in counts.items():
        suite.set(name, str(count))

    ET.indent(suite)
    text = ET.tostring(suite, encoding="unicode", xml_declaration=False)
    prolog = '<?xml version="1.0" encoding="utf-8"?>\n'
    write_atomic(Path(path), prolog + text + "\n")
    log.debug("wrote %d JUnit testcases to %s", counts["tests"], path)


_JUNIT_TAGS = {
    Status.FAILED: "failure",
    Status.ERROR: "error",
    Status.SKIPPED: "skipped",
}
_JUNIT_COUNTS = {"failure": "failures", "error": "errors", "skipped": "skipped"}


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", strip_ansi(text))


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


# -- Common causes -------------------------------------------------------------


@dataclass(frozen=True)
class CauseGroup:
    """One mistake several students made: a criterion failed for the same
    cause once run-specific details are taken out."""

    criterion_id: str
    cause: str
    students: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.students)


def common_causes(
    results: Sequence[GradeResult], rubric: Rubric, *, limit: int = TOP_CAUSES
) -> list[CauseGroup]:
    """The failed or errored verdicts grouped by criterion and cause, most
    frequent first.

    Causes are compared by their first line (what follows is mostly a
    stack trace) after job names, S3 URIs, directories, addresses, clock
    times and numbers are replaced by placeholders, so two students with
    the same mistake in differently named training jobs share a group. A
    verdict without a cause is grouped by its message.
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for result in _by_student(results):
        for verdict in result.criteria:
            if verdict.status not in _FAILING:
                continue
            cause = _normalise_cause(_first_line(verdict.cause or verdict.message))
            groups.setdefault((verdict.id, cause), []).append(result.submission)

    order = {criterion.id: index for index, criterion in enumerate(rubric.criteria)}
    ranked = sorted(
        groups.items(),
        key=lambda item: (-len(item[1]), order.get(item[0][0], len(order)), item[0]),
    )
    return [
        CauseGroup(criterion_id, cause, tuple(students))
        for (criterion_id, cause), students in ranked[:limit]
    ]


# Order matters: URIs and job names hold numbers, paths hold job names.
_CAUSE_PATTERNS = (
    (re.compile(r"s3://[^\s'\"()\[\]]+"), "s3://…"),
    # SageMaker's default job names: a base name and a millisecond stamp.
    (
        re.compile(r"\b[A-Za-z0-9][A-Za-z0-9-]*?-\d{4}(?:-\d{2}){5}-\d{3}\b"),
        "<job>",
    ),
    # A name the student chose; a hyphen or digit tells it from a plain word.
    (
        re.compile(
            r"(?i)\b(training job )(?=[A-Za-z0-9-]*[0-9-])[A-Za-z0-9][A-Za-z0-9-]*"
        ),
        r"\1<job>",
    ),
    # The directories of an absolute path; the file name is kept.
    (re.compile(r"(?<![\w.~:/-])(?:/[\w.+@~-]+)*/(?=[\w.+@~-])"), "…/"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "0x…"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:\.\d+)?\b"), "hh:mm:ss"),
    (re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?![\w-])"), "#"),
    (re.compile(r"\s+"), " "),
)


def _normalise_cause(text: str) -> str:
    text = strip_ansi(text)
    for pattern, replacement in _CAUSE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text.strip()


# -- Class index ---------------------------------------------------------------

#: The index's one script, kept apart so its hash can go in the page policy.
_SORT_SCRIPT = "sort-table.js"


def render_class_index(
    results: Sequence[GradeResult], rubric: Rubric, *, report_links: dict[str, str]
) -> str:
    """The class summary page as one self-contained HTML document.

    ``report_links`` maps a student id to the path of that student's
    report relative to the index, such as ``alice/report.html``. It is a
    file path, not a URL: it is percent-encoded here, and an absolute path
    is refused since it would leave the folder the index is shared in.
    """
    script, script_hash = _sort_script()
    context = _index_context(results, rubric, report_links)
    context.update(script=Markup(script), script_hash=script_hash)
    template = template_environment().get_template("index.html.j2")
    return template.render(context)


def write_class_index(
    results: Sequence[GradeResult],
    rubric: Rubric,
    path: Path,
    *,
    report_links: dict[str, str],
) -> None:
    """Write :func:`render_class_index` to ``path``."""
    html = render_class_index(results, rubric, report_links=report_links)
    write_atomic(Path(path), html)
    log.debug("wrote the class index of %d submissions to %s", len(results), path)


def write_class_outputs(
    results: Sequence[GradeResult], rubric: Rubric, out_dir: Path
) -> None:
    """Everything a graded class folder gets: ``grades.csv``, ``junit.xml``,
    ``index.html`` and a ``gradescope.json`` beside each student's report.

    Expects the batch layout, ``out_dir/<student>/report.html``; a student
    whose report is missing is listed in the index without a link.
    """
    out_dir = Path(out_dir)
    links = {}
    for result in results:
        if PurePosixPath(result.submission).name != result.submission:
            log.warning(
                "student id %r cannot be a folder name, so it gets no "
                "gradescope.json and no report link", result.submission,
            )
            continue
        folder = out_dir / result.submission
        if (folder / "report.html").is_file():
            links[result.submission] = f"{result.submission}/report.html"
        if folder.is_dir():
            write_gradescope(result, rubric, folder / "gradescope.json")
    write_grades_csv(results, rubric, out_dir / "grades.csv")
    write_junit(results, rubric, out_dir / "junit.xml")
    write_class_index(results, rubric, out_dir / "index.html", report_links=links)


@functools.cache
def _sort_script() -> tuple[str, str]:
    """The table-sorting script and its hash for the page's policy."""
    source = resources.files("grader").joinpath("templates", _SORT_SCRIPT)
    script = source.read_text(encoding="utf-8").strip()
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return script, f"sha256-{digest}"


def _index_context(
    results: Sequence[GradeResult], rubric: Rubric, report_links: dict[str, str]
) -> dict[str, Any]:
    ordered = _by_student(results)
    graded = [r for r in ordered if r.status != "error"]
    scores = [r.score for r in graded]
    max_score = rubric.max_score
    histogram = score_histogram_svg(scores, max_score)
    titles = {criterion.id: criterion.title for criterion in rubric.criteria}

    return {
        "rubric": rubric,
        "max_score": max_score,
        "submission_count": len(ordered),
        "graded_count": len(graded),
        "error_count": len(ordered) - len(graded),
        "mean": statistics.fmean(scores) if scores else None,
        "median": statistics.median(scores) if scores else None,
        # Drawn by our plotting code from numbers and our own labels only.
        "histogram_svg": Markup(histogram) if histogram else None,
        "criteria": [_criterion_row(c, graded) for c in rubric.criteria],
        "causes": [
            {
                "title": titles.get(group.criterion_id, group.criterion_id),
                "criterion_id": group.criterion_id,
                "cause": _shorten(group.cause, CAUSE_DISPLAY_CHARS),
                "count": group.count,
                "students": group.students,
            }
            for group in common_causes(ordered, rubric)
        ],
        "rows": [_submission_row(r, rubric, report_links) for r in ordered],
        "grader_version": next(
            (r.grader_version for r in ordered if r.grader_version), ""
        ),
        "rubric_hash": rubric.fingerprint(),
    }


def _criterion_row(criterion: Criterion, graded: list[GradeResult]) -> dict[str, Any]:
    verdicts = [v for r in graded if (v := r.verdict(criterion.id)) is not None]
    tally = {status: 0 for status in Status}
    for verdict in verdicts:
        tally[verdict.status] += 1
    judged = len(verdicts)
    return {
        "criterion": criterion,
        "judged": judged,
        "passed": tally[Status.PASSED],
        "others": [
            (status.value, count)
            for status, count in tally.items()
            if status is not Status.PASSED and count
        ],
        "rate": 100 * tally[Status.PASSED] / judged if judged else None,
    }


def _submission_row(
    result: GradeResult, rubric: Rubric, report_links: dict[str, str]
) -> dict[str, Any]:
    link = report_links.get(result.submission)
    marks = []
    for criterion in rubric.criteria:
        verdict = result.verdict(criterion.id)
        marks.append({"criterion": criterion, "verdict": verdict})
    return {
        "result": result,
        "graded": result.status != "error",
        "href": _href(result.submission, link) if link else None,
        "error": _shorten(_first_line(strip_ansi(result.error or "")), 120),
        "marks": marks,
    }


def _href(student: str, link: str) -> str:
    path = PurePosixPath(link.replace("\\", "/"))
    if path.is_absolute():
        raise ValueError(
            f"report link {link!r} for {student!r} is absolute; give the report's "
            "path relative to index.html, such as 'alice/report.html'"
        )
    # Percent-encoding ':' too means no link can name a scheme.
    return quote(path.as_posix(), safe="/")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- Shared --------------------------------------------------------------------


def _by_student(results: Sequence[GradeResult]) -> list[GradeResult]:
    return sorted(results, key=lambda result: result.submission)


def _in_rubric_order(result: GradeResult, rubric: Rubric) -> list[Verdict]:
    """The verdicts in the rubric's order; any the rubric lacks go last."""
    order = {criterion.id: index for index, criterion in enumerate(rubric.criteria)}
    return sorted(result.criteria, key=lambda v: order.get(v.id, len(order)))


def _max_score(result: GradeResult, rubric: Rubric) -> float:
    return result.max_score or rubric.max_score


def _number(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


