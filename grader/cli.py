"""The ``grader`` command line. Only this module configures logging and
writes to the terminal; the library reports through the ``grader`` logger.

Exit codes: 0 graded (whatever the score), 1 ``check`` found a failing
criterion or ``selftest`` a drifted verdict, 2 bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from grader import __version__
from grader.errors import GraderError

log = logging.getLogger("grader")


def _configure_logging(quiet: bool, verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    handler = RichHandler(
        console=Console(stderr=True), show_path=False, show_time=False, markup=False
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    quiet_libraries()


def quiet_libraries() -> None:
    """Libraries that log every request or deprecation speak only of errors."""
    for noisy in ("werkzeug", "traitlets", "botocore", "urllib3", "sagemaker"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade SageMaker Estimator assignments offline, from evidence.",
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    grade = commands.add_parser(
        "grade",
        help="grade one submission, or every submission in a class folder",
        description="Grade PATH: a submission folder (holding the notebook), or a "
        "class folder whose every sub-folder or .zip is one submission.",
    )
    grade.add_argument("path", type=Path, help="a submission or a class folder")
    _common(grade)
    grade.add_argument("--out", type=Path, default=None,
                       help="where reports go (default: reports/<name>)")
    grade.add_argument("--workers", type=int, default=None,
                       help="submissions graded at once (default: the number of cores)")
    grade.add_argument("--force", action="store_true",
                       help="regrade submissions whose results are up to date")
    grade.add_argument("--shard", default=None, metavar="K/N",
                       help="grade only the K-th of N deterministic slices of the class")
    grade.add_argument("--manual", type=Path, default=None, metavar="FILE",
                       help="YAML of manual scores and comments to fold into the totals")

    merge = commands.add_parser(
        "merge",
        help="combine the reports of several shards into one class summary",
        description="Combine REPORTS folders written by `grade --shard K/N` into one "
        "folder with one summary, gradebook and set of exports.",
    )
    merge.add_argument("reports", type=Path, nargs="+", help="report folders to combine")
    _common(merge)
    merge.add_argument("--out", type=Path, required=True, help="the combined folder")
    merge.add_argument("--manual", type=Path, default=None, metavar="FILE",
                       help="YAML of manual scores and comments to fold into the totals")

    check = commands.add_parser(
        "check",
        help="students: grade your own submission with the public criteria",
        description="Grade the submission in PATH with the rubric's public criteria "
        "and print what to fix. Exits 0 when every criterion passes, 1 otherwise.",
    )
    check.add_argument("path", type=Path, nargs="?", default=Path("."),
                       help="the submission folder (default: here)")
    _common(check)
    check.add_argument("--out", type=Path, default=None,
                       help="where the report goes (default: PATH/.grader-report)")

    selftest = commands.add_parser(
        "selftest",
        help="course CI: the reference scores full marks and examples keep their verdicts",
    )
    _common(selftest)
    selftest.add_argument("--examples", type=Path, default=None,
                          help="folder of examples with expected.yaml "
                          "(default: the repository's submissions/)")
    selftest.add_argument("--out", type=Path, default=Path("reports/selftest"),
                          help="where reports and junit.xml go")

    pack = commands.add_parser(
        "pack",
        help="students: zip your submission folder, with only what grading reads",
        description="Zip the submission in PATH: the notebook, train.py and its "
        "source_dir; data, model files and caches are left out.",
    )
    pack.add_argument("path", type=Path, nargs="?", default=Path("."),
                      help="the submission folder (default: here)")
    _common(pack)
    pack.add_argument("--out", type=Path, default=None,
                      help="the zip to write (default: <folder name>.zip beside it)")

    bundle = commands.add_parser(
        "gradescope-bundle",
        help="instructors: build the autograder zip to upload to Gradescope",
        description="Build a Gradescope autograder zip (setup.sh, run_autograder, "
        "the rubric and the grader's source) that grades with this rubric.",
    )
    _common(bundle)
    bundle.add_argument("--out", type=Path, default=Path("autograder.zip"),
                        help="the zip to write (default: autograder.zip)")
    return parser


def _common(command: argparse.ArgumentParser) -> None:
    command.add_argument("--rubric", type=Path, default=None,
                         help="rubric YAML (default: rubrics/assignment2.yaml)")
    command.add_argument("--quiet", "-q", action="store_true",
                         help="only warnings and the final summary")
    command.add_argument("--verbose", "-v", action="store_true", help="debug logging")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM (a CI timeout, `kill`) ends a run as Ctrl-C does: what is
    # written stays, temporary directories and the holdout copy go.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    _configure_logging(args.quiet, args.verbose)
    try:
        from grader import commands

        runner = {
            "grade": commands.run_grade,
            "check": commands.run_check,
            "selftest": commands.run_selftest,
            "pack": commands.run_pack,
            "gradescope-bundle": commands.run_gradescope_bundle,
            "merge": commands.run_merge,
        }[args.command]
        return runner(args)
    except GraderError as exc:
        print(f"grader: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grader: interrupted; results written so far are kept", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
