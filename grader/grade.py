"""Grade one submission end to end: lay out a fresh working copy, run the
notebook against the emulator, wait for its jobs, gather the evidence,
judge every criterion and write the results, the report and the executed
notebook.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any
from datetime import datetime, timezone
from pathlib import Path

import nbformat

from grader import __version__
from grader.checks import judge
from grader.data import Splits, load_splits, write_split
from grader.emulator import Emulator, student_environment
from grader.evidence import Evidence, inspect_artifact
from grader.execute import inject_parameters, run_notebook
from grader.errors import GraderError
from grader.files import write_atomic
from grader.manual import find_answers
from grader.report import write_report
from grader.results import GradeResult, JobRecord, LearningCurve, ModelScores, Timings
from grader.rubric import Rubric
from grader.sandbox import ResourceLimits
from grader.submission import Submission, lay_out_workdir, open_submission
from grader.training import JobRun

log = logging.getLogger("grader")

REFERENCE_SOLUTION = Path(__file__).resolve().parent.parent / "reference_solution"


def emulator_for(rubric: Rubric, root: Path) -> Emulator:
    """An emulator whose training jobs obey the rubric's limits."""
    return Emulator(
        root=root,
        settings={
            "limits": ResourceLimits.from_rubric(rubric.limits),
            "max_job_seconds": rubric.timeouts.job_seconds,
            "max_log_bytes": rubric.limits.output_bytes,
        },
    )


@contextlib.contextmanager
def _emulator(rubric: Rubric, shared: Emulator | None) -> Iterator[Emulator]:
    if shared is not None:
        yield shared
        return
    root = Path(tempfile.mkdtemp(prefix="grader-"))
    try:
        with emulator_for(rubric, root) as emulator:
            yield emulator
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _job_record(run: JobRun) -> JobRecord:
    return JobRecord(
        name=run.name,
        status=run.status,
        failure_reason=run.failure_reason,
        model_data=run.model_data,
        image=run.image,
        entry_point=run.entry_point,
        hyperparameters=run.user_hyperparameters,
        channels=run.channels,
        metric_definitions=run.metric_definitions,
        duration_seconds=round(run.duration, 2) if run.duration is not None else None,
        exit_code=run.exit_code,
        local_mode=run.local_mode,
    )


def _write_private_splits(splits: Splits, directory: Path) -> dict[str, Path]:
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = {}
    for name in ("train", "validation", "holdout"):
        paths[name] = directory / f"{name}.csv"
        write_split(splits, name, paths[name])
    return paths




def grade(
    submission_path: Path,
    rubric: Rubric,
    out_dir: Path,
    *,
    reference: ModelScores | Callable[[], ModelScores] | None = None,
    emulator: Emulator | None = None,
    audience: str = "instructor",
) -> GradeResult:
    """Grade the submission at ``submission_path`` and write its outputs.

    Raises SubmissionError before anything runs when the submission is not
    gradable; once it runs, every failure of student code is a verdict.
    """
    started = time.monotonic()
    submission = open_submission(submission_path, rubric)
    timings = Timings()
    # The holdout lives here, outside anything student code can see.
    private = Path(tempfile.mkdtemp(prefix="grader-private-"))
    try:
        with _emulator(rubric, emulator) as active:
            scratch = active.new_slot()
            try:
                result = _grade_in(scratch, private, submission, rubric, reference, active,
                                   timings, audience)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    finally:
        shutil.rmtree(private, ignore_errors=True)

    report_started = time.monotonic()
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = result.__dict__.pop("_executed", None)
    if executed is not None:
        write_atomic(out_dir / "executed.ipynb", nbformat.writes(executed))
    write_report(result, out_dir / "report.html", audience=audience)
    timings.report = time.monotonic() - report_started
    timings.total = time.monotonic() - started
    result.timings = Timings(**{k: round(v, 3) for k, v in timings.model_dump().items()})
    write_atomic(out_dir / "results.json", result.model_dump_json(indent=2))
    return result


def _grade_in(
    scratch: Path,
    private_dir: Path,
    submission: Submission,
    rubric: Rubric,
    reference: ModelScores | Callable[[], ModelScores] | None,
    emulator: Emulator,
    timings: Timings,
    audience: str,
) -> GradeResult:
    setup_started = time.monotonic()
    # A students' self-check never touches the holdout, so nothing can leak it.
    rubric_is_public = not any(c.hidden for c in rubric.criteria) and audience == "student"
    workdir = scratch / "work"
    splits = load_splits(rubric.fixtures.dataset)
    lay_out_workdir(submission, workdir, rubric, splits)
    private = _write_private_splits(splits, private_dir / "splits")
    emulator.reset(work_root=scratch)
    for split, uri in rubric.fixtures.s3.items():
        emulator.seed_object(uri, splits.csv(split))
    notebook = copy.deepcopy(submission.notebook)
    injected_at = inject_parameters(notebook, rubric.parameters)
    env = student_environment(emulator, scratch / "home")
    limits = ResourceLimits.from_rubric(rubric.limits)
    timings.setup = time.monotonic() - setup_started

    notebook_run = run_notebook(
        notebook,
        workdir=workdir,
        env=env,
        cell_timeout=rubric.timeouts.cell_seconds,
        notebook_timeout=rubric.timeouts.notebook_seconds,
        startup_timeout=rubric.timeouts.kernel_start_seconds,
        limits=limits,
        output_limit=rubric.limits.output_bytes,
        warm=emulator.warm,
    )
    failure = notebook_run.failure
    if failure is not None and 0 <= injected_at < failure.index:
        # Number cells as the student's own notebook does, without ours.
        failure.index -= 1
    timings.kernel_start = notebook_run.kernel_start_seconds
    timings.notebook = notebook_run.execution_seconds
    # A job started with fit(wait=False) may still be running.
    emulator.training.wait_all(timeout=rubric.timeouts.job_seconds + 30)

    checks_started = time.monotonic()
    if callable(reference):
        reference = reference()
    runs = list(emulator.training.runs.values())
    timings.training = sum(r.duration or 0.0 for r in runs)
    evidence = Evidence(
        rubric=rubric,
        submission=submission,
        notebook=notebook_run,
        runs=runs,
        artifact=None,
        reference_scores=(reference or ModelScores()).model_dump(),
        script_text=submission.script_path.read_text(errors="replace"),
    )
    graded = evidence.graded_run
    if graded is not None:
        evidence.artifact = inspect_artifact(
            graded,
            scratch=scratch / "probe",
            splits={name: path for name, path in private.items()
                    if name != "holdout" or not rubric_is_public},
            limits=limits,
            warm=emulator.warm,
        )
    verdicts = judge(evidence)
    timings.checks = time.monotonic() - checks_started

    scores = evidence.artifact.scores if evidence.artifact else None
    auc = (scores or {}).get("auc", {})
    curve = (scores or {}).get("curve", {})
    result = GradeResult(
        submission=submission.name,
        score=sum(v.points for v in verdicts),
        max_score=rubric.max_score,
        rubric=rubric.name,
        rubric_hash=rubric.fingerprint(),
        submission_hash=submission.content_hash(),
        grader_version=__version__,
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        criteria=verdicts,
        reference=reference or ModelScores(),
        student=ModelScores(
            validation_auc=auc.get("validation"), holdout_auc=auc.get("holdout")
        ),
        jobs=[_job_record(r) for r in runs],
        learning_curve=LearningCurve(
            rounds=list(range(1, len(curve.get("validation", [])) + 1)),
            train=curve.get("train", []),
            validation=curve.get("validation", []),
        )
        if curve.get("validation")
        else None,
        manual=find_answers(submission.notebook, rubric),
        cell_failure=notebook_run.failure,
        training_log=graded.log_text if graded else "",
    )
    abuse = _abuse(notebook_run)
    if abuse:
        result.status, result.error = "error", abuse
    result.__dict__["_executed"] = notebook_run.notebook
    return result


def _abuse(run: Any) -> str | None:
    """Why a notebook that broke its limits could not be graded normally."""
    failure = run.failure
    if failure is None:
        return None
    if run.failure_kind in ("notebook_timeout", "cell_timeout", "kernel_died", "output_flood"):
        return f"notebook cell {failure.index + 1}: {failure.error_value}"
    if failure.error_name == "BlockingIOError" and "fork" in failure.traceback:
        return (f"notebook cell {failure.index + 1} started processes without end and hit "
                "the process limit")
    if failure.error_name == "MemoryError":
        return (f"notebook cell {failure.index + 1} ran out of memory (the limit is the "
                "rubric's limits.memory_mb)")
    return None


def _reference_cache_path(rubric: Rubric) -> Path:
    digest = hashlib.sha256(rubric.fingerprint().encode())
    for path in sorted(REFERENCE_SOLUTION.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.name.encode() + path.read_bytes())
    root = Path(os.environ.get("GRADER_CACHE_DIR") or Path.home() / ".cache" / "sagemaker-grader")
    return root / f"reference-{digest.hexdigest()[:16]}.json"


def cached_reference(rubric: Rubric) -> ModelScores | None:
    """The reference's AUCs from the cache, when this rubric and reference
    content were scored before."""
    try:
        return ModelScores.model_validate_json(_reference_cache_path(rubric).read_text())
    except (OSError, ValueError):
        return None


def score_reference(rubric: Rubric, *, emulator: Emulator | None = None) -> ModelScores:
    """Grade the reference solution and cache its AUCs; a reference that
    cannot be scored stops grading, with the reason, for every waiter too."""
    cache = _reference_cache_path(rubric)
    failure = cache.with_suffix(".failed")
    failure.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="grader-reference-") as scratch:
        result = grade(REFERENCE_SOLUTION, rubric, Path(scratch) / "out", emulator=emulator)
    scores = result.student
    if scores.holdout_auc is None:
        failing = [v for v in result.criteria if v.status.value != "passed"]
        reason = failing[0].message if failing else (result.error or "no model")
        message = (
            f"the reference solution could not be scored ({reason}); students are "
            "compared against it, so grading stops here. Run `grader selftest` to see why."
        )
        write_atomic(failure, message)
        raise GraderError(message)
    write_atomic(cache, json.dumps(scores.model_dump()))
    return scores


def reference_scores(rubric: Rubric, *, emulator: Emulator | None = None) -> ModelScores:
    """The reference solution's AUCs, graded by the same machinery, cached
    per rubric and reference content."""
    return cached_reference(rubric) or score_reference(rubric, emulator=emulator)


class ReferenceWait:
    """Stands in for the reference's scores while another worker computes
    them: called when a submission is judged, it waits for the cache."""

    def __init__(self, rubric: Rubric, timeout: float):
        self.cache = str(_reference_cache_path(rubric))
        self.timeout = timeout

    def __call__(self) -> ModelScores:
        cache = Path(self.cache)
        failure = cache.with_suffix(".failed")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if failure.is_file():
                raise GraderError(failure.read_text())
            try:
                return ModelScores.model_validate_json(cache.read_text())
            except (OSError, ValueError):
                time.sleep(0.5)
        raise GraderError(f"the reference solution was not scored within {self.timeout:.0f} s")
