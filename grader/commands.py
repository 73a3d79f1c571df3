"""What each CLI command does, and how it talks to the terminal.

Kept apart from :mod:`grader.cli` so the argument parser stays a plain
description of the interface, and apart from the library so that only
commands write to the terminal.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from grader.batch import Entry, discover, grade_class, is_submission, shard
from grader.errors import GraderError
from grader.results import GradeResult, Status
from grader.rubric import KNOWN_CRITERIA, Rubric, load_rubric

log = logging.getLogger("grader")

_MARKS = {
    Status.PASSED: ("✓", "green"),
    Status.FAILED: ("✗", "red"),
    Status.ERROR: ("!", "yellow"),
    Status.SKIPPED: ("–", "dim"),
}


def _console(stream: Any = None) -> Console:
    """Colour only on a terminal, and never under NO_COLOR."""
    stream = stream or sys.stdout
    no_color = bool(os.environ.get("NO_COLOR")) or not stream.isatty()
    return Console(file=stream, no_color=no_color, highlight=False, soft_wrap=True)


def _reference(rubric: Rubric) -> Any:
    from grader.grade import reference_scores

    log.info("scoring the reference solution (cached after the first run)")
    return reference_scores(rubric)


def run_grade(args: argparse.Namespace) -> int:
    rubric = load_rubric(args.rubric)
    path: Path = args.path
    if not path.exists():
        raise GraderError(f"{path} does not exist")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise GraderError(f"--out {args.out} is a file; give a folder for the reports")
    if args.workers is not None and args.workers < 1:
        raise GraderError(f"--workers {args.workers}: give at least 1")
    if is_submission(path, rubric) or (path.is_file() and path.suffix == ".zip"):
        entry = Entry(path.stem if path.is_file() else path.resolve().name, path)
        return _grade_single(entry, args.out or Path("reports") / entry.student, rubric, args)
    entries = shard(discover(path), args.shard)
    if not entries:
        raise GraderError(f"{path} holds no submission folders or .zip files")
    out_dir = args.out or Path("reports")
    return _grade_batch(entries, out_dir, rubric, args)


def _grade_single(entry: Entry, out_dir: Path, rubric: Rubric, args: argparse.Namespace) -> int:
    from grader.grade import grade
    from grader.submission import open_submission

    if entry.path.is_dir():
        open_submission(entry.path, rubric)  # bad input fails here, before any work
    else:
        import tempfile

        from grader.batch import unpack_zip

        with tempfile.TemporaryDirectory(prefix="grader-zip-") as staging:
            open_submission(unpack_zip(entry.path, Path(staging)), rubric)
    scores = _manual_scores(args, rubric)
    reference = _reference(rubric)
    if entry.path.is_file():
        from grader.batch import grade_class

        results = grade_class([entry], out_dir.parent, rubric_path=args.rubric,
                              reference=reference, workers=1, force=True)
        result = results[0]
        if result.status == "error":
            raise GraderError(result.error or "the submission could not be graded")
    else:
        result = grade(entry.path, rubric, out_dir, reference=reference)
    if scores:
        scores = {result.submission: scores.get(entry.student, {})}
    _fold_manual([result], scores, lambda r: out_dir)
    console = _console()
    _print_verdicts(console, result, show_hidden=True)
    console.print(f"Report: {out_dir / 'report.html'}")
    return 0


def _grade_batch(
    entries: list[Entry], out_dir: Path, rubric: Rubric, args: argparse.Namespace
) -> int:
    workers = args.workers or os.cpu_count() or 1
    if workers < 1:
        raise GraderError(f"--workers {workers}: give at least 1")
    scores = _manual_scores(args, rubric)
    from grader.grade import cached_reference

    reference = cached_reference(rubric)  # None: a worker scores it alongside
    console = _console(sys.stderr)
    started = time.monotonic()
    columns = (
        TextColumn("[bold]grading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=args.quiet) as progress:
        task = progress.add_task("grading", total=len(entries))

        def finished(entry: Entry, result: GradeResult, kept: bool) -> None:
            progress.advance(task)
            if args.quiet:
                return
            if result.status == "error":
                line = f"[yellow]! {entry.student}: error: {result.error}"
            else:
                note = " (unchanged, kept)" if kept else ""
                line = f"  {entry.student}: {result.score:g}/{result.max_score:g}{note}"
            progress.console.print(line, markup=True, highlight=False)

        results = grade_class(
            entries,
            out_dir,
            rubric_path=args.rubric,
            reference=reference,
            workers=workers,
            force=args.force,
            on_result=finished,
        )
    _fold_manual(results, scores, lambda r: out_dir / r.submission)
    _write_class_outputs(results, rubric, out_dir)
    elapsed = time.monotonic() - started
    errors = sum(1 for r in results if r.status == "error")
    print(
        f"graded {len(results)} submissions in {elapsed:.0f} s "
        f"({errors} could not be graded); summary: {out_dir / 'index.html'}"
    )
    return 0


def _write_class_outputs(results: list[GradeResult], rubric: Rubric, out_dir: Path) -> None:
    from grader import exports

    exports.write_class_outputs(results, rubric, out_dir)


def _manual_scores(args: argparse.Namespace, rubric: Rubric) -> dict[str, Any] | None:
    """Read the scores file first, so a typo in it costs no grading time."""
    if getattr(args, "manual", None) is None:
        return None
    from grader.manual import load_scores

    return load_scores(args.manual, rubric)


def _fold_manual(
    results: list[GradeResult], scores: dict[str, Any] | None, folder_of: Any
) -> None:
    """Apply manual scores and rewrite each affected student's results and report."""
    if not scores:
        return
    from grader.files import write_atomic
    from grader.manual import apply_scores
    from grader.report import write_report

    for result in results:
        if result.submission not in scores:
            continue
        apply_scores(result, scores[result.submission])
        folder = folder_of(result)
        write_report(result, folder / "report.html")
        write_atomic(folder / "results.json", result.model_dump_json(indent=2))


def run_merge(args: argparse.Namespace) -> int:
    """Combine shard folders into one class folder with one set of exports."""
    import shutil

    rubric = load_rubric(args.rubric)
    scores = _manual_scores(args, rubric)
    found: dict[str, tuple[GradeResult, Path]] = {}
    for source in args.reports:
        if not source.is_dir():
            raise GraderError(f"{source} is not a report folder")
        for results_file in sorted(source.glob("*/results.json")):
            try:
                result = GradeResult.model_validate_json(results_file.read_text())
            except ValueError:
                raise GraderError(f"{results_file} is not a grader results file") from None
            kept = found.get(result.submission)
            if kept is None or result.graded_at > kept[0].graded_at:
                found[result.submission] = (result, results_file.parent)
    if not found:
        raise GraderError("no results.json found in " + ", ".join(map(str, args.reports)))
    args.out.mkdir(parents=True, exist_ok=True)
    for student, (_, folder) in found.items():
        target = args.out / student
        if folder.resolve() != target.resolve():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)
    results = [found[s][0] for s in sorted(found)]
    _fold_manual(results, scores, lambda r: args.out / r.submission)
    _write_class_outputs(results, rubric, args.out)
    print(f"merged {len(results)} submissions; summary: {args.out / 'index.html'}")
    return 0


def _print_verdicts(console: Console, result: GradeResult, *, show_hidden: bool) -> None:
    if result.status == "error":
        console.print(f"[yellow]{result.submission}: not graded: {result.error}")
        return
    shown = [v for v in result.criteria if show_hidden or not v.hidden]
    score = sum(v.points for v in shown)
    total = sum(v.max_points for v in shown)
    console.print(f"[bold]{result.submission}[/bold]: {score:g} / {total:g} points")
    for verdict in shown:
        mark, colour = _MARKS[verdict.status]
        console.print(
            f"[{colour}]{mark}[/{colour}] {verdict.id:<26} "
            f"{verdict.points:g}/{verdict.max_points:g}  {verdict.message}",
            highlight=False,
        )
        if verdict.status in (Status.FAILED, Status.ERROR):
            if verdict.cause:
                console.print(f"    cause: {verdict.cause}", highlight=False)
            if verdict.fix:
                console.print(f"    fix:   {verdict.fix}", highlight=False)
            if verdict.location:
                console.print(f"    where: {verdict.location}", highlight=False)


def run_check(args: argparse.Namespace) -> int:
    """Students: the public criteria only, a terminal summary, exit 0 or 1."""
    from grader.grade import grade
    from grader.submission import open_submission

    rubric = load_rubric(args.rubric).public()
    path = args.path.resolve()
    open_submission(path, rubric)
    out_dir = args.out or path / ".grader-report"
    result = grade(path, rubric, out_dir, reference=None, audience="student")
    console = _console()
    _print_verdicts(console, result, show_hidden=False)
    console.print(f"Report: {out_dir / 'report.html'}")
    passed = all(v.status is Status.PASSED for v in result.criteria)
    return 0 if passed else 1


def run_selftest(args: argparse.Namespace) -> int:
    """Course CI: the reference earns full marks, examples keep their verdicts."""
    from grader.grade import REFERENCE_SOLUTION

    rubric = load_rubric(args.rubric)
    examples: Path = args.examples or REFERENCE_SOLUTION.parent / "submissions"
    if not examples.is_dir():
        raise GraderError(f"--examples {examples} is not a folder")
    cases: list[tuple[Entry, dict[str, Any]]] = [
        (Entry("reference_solution", REFERENCE_SOLUTION), {"full_marks": True})
    ]
    for folder in sorted(p for p in examples.iterdir() if p.is_dir()) if examples.is_dir() else []:
        expected_file = folder / "expected.yaml"
        if expected_file.is_file():
            cases.append((Entry(folder.name, folder), _load_expected(expected_file)))
    from grader.grade import cached_reference

    if len(cases) == 1:
        raise GraderError(
            f"{examples} holds no example with an expected.yaml; selftest would check "
            "nothing but the reference"
        )
    reference = cached_reference(rubric)  # None: a worker scores it alongside
    results = grade_class(
        [entry for entry, _ in cases],
        args.out,
        rubric_path=args.rubric,
        reference=reference,
        workers=os.cpu_count() or 1,
        force=True,
    )
    console = _console()
    drift: dict[str, list[str]] = {}
    for (entry, expected), result in zip(cases, results):
        drift[entry.student] = compare(result, expected)
        status = "[green]ok[/green]" if not drift[entry.student] else "[red]DRIFT[/red]"
        console.print(f"{status} {entry.student}")
        for problem in drift[entry.student]:
            console.print(f"    {problem}", highlight=False)
    _write_selftest_junit(drift, args.out / "junit.xml")
    return 1 if any(drift.values()) else 0


def _load_expected(path: Path) -> dict[str, Any]:
    try:
        expected = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise GraderError(f"{path}: not valid YAML: {exc}") from None
    verdicts = expected.get("verdicts") or {}
    unknown = sorted(set(verdicts) - set(KNOWN_CRITERIA))
    if unknown:
        raise GraderError(f"{path}: unknown criteria {', '.join(unknown)}")
    for criterion, status in verdicts.items():
        if status not in {s.value for s in Status}:
            raise GraderError(f"{path}: {criterion}: {status!r} is not a verdict status")
    return expected


def compare(result: GradeResult, expected: dict[str, Any]) -> list[str]:
    """Every way ``result`` differs from what an example declares."""
    if result.status == "error":
        return [f"not graded: {result.error}"]
    problems = []
    if expected.get("full_marks") and result.score != result.max_score:
        problems.append(f"score {result.score:g}/{result.max_score:g}, expected full marks")
    for criterion, status in (expected.get("verdicts") or {}).items():
        verdict = result.verdict(criterion)
        actual = verdict.status.value if verdict else "absent"
        if actual != status:
            problems.append(f"{criterion}: expected {status}, got {actual}")
    for criterion, needles in (expected.get("messages") or {}).items():
        verdict = result.verdict(criterion)
        text = " ".join(filter(None, [verdict.message, verdict.cause, verdict.fix])) if verdict else ""
        for needle in needles or []:
            if needle not in text:
                problems.append(f"{criterion}: message lacks {needle!r}")
    return problems


def _write_selftest_junit(drift: dict[str, list[str]], path: Path) -> None:
    import xml.etree.ElementTree as ET

    suite = ET.Element("testsuite", name="grader-selftest", tests=str(len(drift)),
                       failures=str(sum(1 for p in drift.values() if p)))
    for case, problems in drift.items():
        element = ET.SubElement(suite, "testcase", classname="selftest", name=case)
        if problems:
            failure = ET.SubElement(element, "failure", message=problems[0])
            failure.text = "\n".join(problems)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)


# -- pack and gradescope-bundle ----------------------------------------------------

#: How many left-out files ``pack`` names before it summarises the rest.
_LEFT_OUT_SHOWN = 8


def run_pack(args: argparse.Namespace) -> int:
    """Students: zip the submission with only what grading reads."""
    from grader.pack import pack

    rubric = load_rubric(args.rubric)
    packed = pack(args.path, rubric, out=args.out)
    console = _console()
    console.print(f"Packed {len(packed.files)} files into {packed.archive}")
    for name in packed.files:
        console.print(f"  {name}", highlight=False)
    if packed.left_out and not args.quiet:
        console.print("Left out:")
        shown = len(packed.left_out) if args.verbose else _LEFT_OUT_SHOWN
        for name, reason in packed.left_out[:shown]:
            console.print(f"  {name} ({reason})", highlight=False)
        hidden = len(packed.left_out) - shown
        if hidden > 0:
            console.print(f"  and {hidden} more (--verbose lists them all)")
    return 0


def run_gradescope_bundle(args: argparse.Namespace) -> int:
    """Instructors: the autograder zip Gradescope builds its image from."""
    from grader.gradescope import build_bundle

    bundle = build_bundle(args.rubric, args.out)
    console = _console()
    console.print(f"Gradescope autograder: {bundle.archive} ({len(bundle.files)} files)")
    console.print("Upload it under the assignment's Configure Autograder page.")
    return 0
