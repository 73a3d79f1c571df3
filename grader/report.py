"""The HTML feedback report for one graded submission.

This module decides what each audience sees; the templates under
``grader/templates`` decide how it looks. A report is one self-contained
file: inline CSS and SVG, no scripts, nothing fetched from the network.

The student audience never sees a hidden criterion or a holdout AUC. That
filter works on fields only: a visible verdict whose message quotes a
holdout number would still show it.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from grader.plots import learning_curve_svg
from grader.files import write_atomic
from grader.results import GradeResult, Status, Verdict

__all__ = [
    "AUDIENCES",
    "TrimmedLog",
    "render_report",
    "strip_ansi",
    "template_environment",
    "trim_log",
    "write_report",
]

log = logging.getLogger("grader")

AUDIENCES = ("instructor", "student")

#: A log longer than this many lines is shown as its head and tail only.
LOG_LINE_LIMIT = 200
LOG_HEAD_LINES = 60
LOG_TAIL_LINES = 120

# CSI sequences (colours, cursor moves), OSC sequences (titles, links) and
# the two-byte escapes, as Jupyter and most terminals emit them.
_ANSI_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[@-Z\\-_]"
)

_TIMING_LABELS = (
    ("setup", "Setup"),
    ("kernel_start", "Kernel start"),
    ("notebook", "Notebook"),
    ("training", "Training"),
    ("checks", "Checks"),
    ("report", "Report"),
)


@dataclass(frozen=True)
class TrimmedLog:
    """A training log cut to its head and tail, and how many lines went."""

    head: str
    tail: str
    total_lines: int
    omitted_lines: int


def render_report(result: GradeResult, *, audience: str = "instructor") -> str:
    """The report as an HTML document, filtered for ``audience``."""
    if audience not in AUDIENCES:
        raise ValueError(
            f"audience {audience!r} is not one of {', '.join(AUDIENCES)}"
        )
    template = template_environment().get_template("report.html.j2")
    return template.render(_context(result, audience))


def write_report(
    result: GradeResult, path: Path, *, audience: str = "instructor"
) -> None:
    """Write the report to ``path`` atomically.

    The HTML goes to a temporary file beside ``path`` and is then renamed
    over it, so a reader never finds a half-written report.
    """
    write_atomic(Path(path), render_report(result, audience=audience))
    log.debug("wrote %s report for %s to %s", audience, result.submission, path)


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape codes, which HTML would show raw."""
    return _ANSI_ESCAPE.sub("", text)


def trim_log(text: str) -> TrimmedLog:
    """Keep the start of a log (setup, hyperparameters) and its end (the
    error or final metrics), since the middle is mostly per-round lines."""
    lines = strip_ansi(text).splitlines()
    total = len(lines)
    if total <= LOG_LINE_LIMIT:
        return TrimmedLog("\n".join(lines), "", total, 0)
    return TrimmedLog(
        head="\n".join(lines[:LOG_HEAD_LINES]),
        tail="\n".join(lines[-LOG_TAIL_LINES:]),
        total_lines=total,
        omitted_lines=total - LOG_HEAD_LINES - LOG_TAIL_LINES,
    )


@functools.cache
def template_environment() -> Environment:
    """The Jinja2 environment of every HTML page grader writes.

    The per-submission report and the class index (:mod:`grader.exports`)
    share it, so both escape the same way and format points alike.
    """
    environment = Environment(
        loader=PackageLoader("grader", "templates"),
        # Templates escape everything by default; stylesheets and scripts
        # are our own raw text.
        autoescape=select_autoescape(
            enabled_extensions=("html", "j2"),
            disabled_extensions=("css", "js"),
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["plain"] = strip_ansi
    environment.filters["points"] = _format_points
    environment.filters["percent"] = _format_percent
    environment.filters["auc"] = _format_auc
    environment.filters["seconds"] = _format_seconds
    return environment


def _context(result: GradeResult, audience: str) -> dict[str, Any]:
    instructor = audience == "instructor"
    verdicts = [v for v in result.criteria if instructor or not v.hidden]
    visible = [v for v in result.criteria if not v.hidden]

    if instructor:
        score, max_score = result.score, result.max_score
    else:
        score, max_score = _total(visible)

    percent = 100 * score / max_score if max_score else None

    own, reference = result.student, result.reference
    scores = [("Validation AUC", own.validation_auc, reference.validation_auc)]
    if instructor:
        scores.append(("Holdout AUC", own.holdout_auc, reference.holdout_auc))

    curve = result.learning_curve
    curve_svg = learning_curve_svg(curve) if curve else None

    return {
        "result": result,
        "instructor": instructor,
        "graded": result.status != "error",
        "score": score,
        "max_score": max_score,
        "percent": percent,
        "bar_width": min(max(percent or 0.0, 0.0), 100.0),
        "visible_total": _total(visible),
        "hidden_count": len(result.criteria) - len(visible),
        "verdicts": verdicts,
        "to_fix": _root_causes_first(verdicts),
        "titles": {v.id: v.title or v.id for v in verdicts},
        "scores": scores,
        # Built by our own plotting code from numbers; the one metric name
        # it carries is escaped by matplotlib's SVG writer.
        "curve_svg": Markup(curve_svg) if curve_svg else None,
        "training_log": trim_log(result.training_log),
        "timings": [
            (label, getattr(result.timings, field)) for field, label in _TIMING_LABELS
        ],
    }


def _root_causes_first(verdicts: list[Verdict]) -> list[Verdict]:
    """Failures that explain others come first; their consequences follow."""
    failing = [v for v in verdicts if v.status in (Status.FAILED, Status.ERROR)]
    failing_ids = {v.id for v in failing}
    roots = [v for v in failing if v.caused_by not in failing_ids]
    return roots + [v for v in failing if v.caused_by in failing_ids]


def _total(verdicts: list[Verdict]) -> tuple[float, float]:
    return sum(v.points for v in verdicts), sum(v.max_points for v in verdicts)


def _format_points(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _format_percent(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") + "%"


def _format_auc(value: float | None) -> str:
    return "not computed" if value is None else f"{value:.4f}"


def _format_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes}m {seconds:02d}s"
