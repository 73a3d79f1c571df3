"""Grade one submission inside Gradescope's container and write the
``results.json`` Gradescope reads.

``run_autograder`` (built by :mod:`grader.gradescope`) calls this as
``python -m grader.gradescope_run --root /autograder``. Under the root,
``submission/`` holds the student's files and ``results/results.json`` is
the answer. Any root works, which is how the tests stand in for Gradescope.

A submission the grader cannot grade still gets a results.json, with score
0 and the reason, so the student reads why rather than Gradescope's "the
autograder failed". Only a broken bundle (a rubric that does not load)
ends without one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from grader.batch import error_result, unpack_zip
from grader.cli import quiet_libraries
from grader.errors import GraderError, SubmissionError
from grader.exports import write_gradescope
from grader.results import GradeResult
from grader.rubric import Rubric, load_rubric

log = logging.getLogger("grader")

GRADESCOPE_ROOT = Path("/autograder")


def run(root: Path, rubric: Rubric) -> GradeResult:
    """Grade ``root/submission`` into ``root/results``; the result is also
    written there as Gradescope's ``results.json``."""
    results = root / "results"
    folder = root / "submission"
    with tempfile.TemporaryDirectory(prefix="grader-gradescope-") as scratch:
        try:
            from grader.grade import grade, reference_scores
            from grader.submission import open_submission

            submission = _submission_folder(folder, rubric, Path(scratch))
            # Bad input is refused before the reference is scored.
            open_submission(submission, rubric)
            reference = reference_scores(rubric)
            result = grade(
                submission, rubric, results / "report", reference=reference
            )
        except SubmissionError as exc:
            log.warning("not graded: %s", exc)
            result = error_result(folder.name, rubric, str(exc))
        except GraderError as exc:
            log.error("the autograder could not run: %s", exc)
            result = error_result(folder.name, rubric, _not_your_fault(str(exc)))
        except Exception as exc:  # the student still needs a results.json
            log.exception("the grader crashed")
            reason = _not_your_fault(f"crash: {exc}")
            result = error_result(folder.name, rubric, reason)
    write_gradescope(result, rubric, results / "results.json")
    return result


def _not_your_fault(reason: str) -> str:
    return (
        f"the autograder itself failed ({reason}); this is not a mistake in "
        "your work: ask your instructor to rerun it"
    )


def _submission_folder(folder: Path, rubric: Rubric, scratch: Path) -> Path:
    """Where the submission's files are: the folder itself, the one folder
    inside it (a zipped folder, unpacked), or a zip left whole."""
    if not folder.is_dir():
        raise SubmissionError(f"{folder} holds no submission")
    script = rubric.submission.script
    if any(folder.glob(rubric.submission.notebook)) or (folder / script).exists():
        return folder
    children = [
        child for child in folder.iterdir()
        if not child.name.startswith(".") and child.name != "__MACOSX"
    ]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    if len(children) == 1 and children[0].suffix.lower() == ".zip":
        return unpack_zip(children[0], scratch)
    return folder


def _configure_logging(verbose: bool) -> None:
    """Plain lines on stdout, which Gradescope shows to instructors only."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    quiet_libraries()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader.gradescope_run",
        description="Grade ROOT/submission and write ROOT/results/results.json.",
    )
    parser.add_argument("--root", type=Path, default=GRADESCOPE_ROOT,
                        help="Gradescope's root folder (default: /autograder)")
    parser.add_argument("--rubric", type=Path, default=None,
                        help="rubric YAML (default: ROOT/source/rubric.yaml)")
    parser.add_argument("--reference-only", action="store_true",
                        help="only score the reference solution, into the cache")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    root = args.root.resolve()
    # Outside Gradescope's scripts, the reference cache stays under the root.
    os.environ.setdefault("GRADER_CACHE_DIR", str(root / "cache"))
    try:
        rubric = load_rubric(args.rubric or root / "source" / "rubric.yaml")
        if args.reference_only:
            from grader.grade import reference_scores

            scores = reference_scores(rubric)
            log.info("reference holdout AUC %s", scores.holdout_auc)
            return 0 if scores.holdout_auc is not None else 1
    except GraderError as exc:
        print(f"grader: error: {exc}", file=sys.stderr)
        return 2
    result = run(root, rubric)
    log.info("%s: %g / %g", result.submission, result.score, result.max_score)
    return 0


if __name__ == "__main__":
    sys.exit(main())
