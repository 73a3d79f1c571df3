"""Grade a whole class: discover the submissions, grade them on a pool of
worker processes (each with its own emulator), keep every result as soon
as it exists, and skip what is already graded with the same content.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import logging
import multiprocessing
import multiprocessing.util
import os
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from grader import __version__
from grader.files import write_atomic
from grader.errors import GraderError, SubmissionError
from grader.results import GradeResult, ModelScores
from grader.rubric import Rubric, load_rubric
from grader.submission import tree_hash

log = logging.getLogger("grader")

MAX_ZIP_BYTES = 100 * 1024 * 1024
MAX_ZIP_FILES = 2000


@dataclass(frozen=True)
class Entry:
    """One submission of a class: its student id and where it lives."""

    student: str
    path: Path


def is_submission(path: Path, rubric: Rubric) -> bool:
    """A folder with a notebook or the script at its top is one submission;
    otherwise it is a class folder of submissions."""
    if not path.is_dir():
        return False
    if any(path.glob(rubric.submission.notebook)) or (path / rubric.submission.script).exists():
        return True
    return not any(c.is_dir() or c.suffix == ".zip" for c in path.iterdir())


def unpack_zip(archive: Path, target: Path) -> Path:
    """Unpack a submitted zip, refusing paths that escape, links, and bombs.

    A zip holding a single top-level folder is unwrapped, since that is how
    most tools zip a folder.
    """
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = bundle.infolist()
            if len(members) > MAX_ZIP_FILES:
                raise SubmissionError(f"{archive.name} holds {len(members)} files")
            if sum(m.file_size for m in members) > MAX_ZIP_BYTES:
                raise SubmissionError(f"{archive.name} unpacks to more than 100 MB")
            for member in members:
                name = member.filename
                mode = member.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise SubmissionError(f"{archive.name} contains a link ({name})")
                destination = (target / name).resolve()
                if name.startswith("/") or not destination.is_relative_to(target.resolve()):
                    raise SubmissionError(f"{archive.name} has a path outside it ({name})")
            bundle.extractall(target)
    except zipfile.BadZipFile:
        raise SubmissionError(f"{archive.name} is not a valid zip file") from None
    children = [c for c in target.iterdir() if c.name not in ("__MACOSX",)]
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return target


def discover(class_dir: Path) -> list[Entry]:
    """Every folder or .zip directly inside ``class_dir`` is one submission."""
    if not class_dir.is_dir():
        raise GraderError(f"{class_dir} is not a folder")
    entries = []
    for child in sorted(class_dir.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir() and not child.is_symlink():
            entries.append(Entry(child.name, child))
        elif child.suffix.lower() == ".zip" and child.is_file():
            entries.append(Entry(child.stem, child))
    return entries


def shard(entries: list[Entry], spec: str | None) -> list[Entry]:
    """The K-th of N slices, by a stable hash of the student id."""
    if not spec:
        return entries
    try:
        k, n = (int(part) for part in spec.split("/", 1))
    except ValueError:
        raise GraderError(f"--shard {spec!r}: expected K/N, e.g. 1/4") from None
    if not 1 <= k <= n:
        raise GraderError(f"--shard {spec!r}: K must be between 1 and N")
    chosen = []
    for entry in entries:
        bucket = int(hashlib.sha256(entry.student.encode()).hexdigest(), 16) % n
        if bucket == k - 1:
            chosen.append(entry)
    return chosen


def error_result(student: str, rubric: Rubric, reason: str, content_hash: str = "") -> GradeResult:
    return GradeResult(
        submission=student,
        status="error",
        error=reason,
        max_score=rubric.max_score,
        rubric=rubric.name,
        rubric_hash=rubric.fingerprint(),
        submission_hash=content_hash,
        grader_version=__version__,
        graded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _content_hash(path: Path) -> str:
    """The submission's content hash: of the zip as handed in, or of the
    files grading a folder would copy."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return tree_hash(path)


def existing_result(out_dir: Path, entry: Entry, rubric: Rubric) -> GradeResult | None:
    """The stored result, if it was made from this content with this rubric.

    ``.source-hash`` is written after ``results.json``, so a batch killed
    between the two regrades that submission rather than trusting half of it.
    """
    folder = out_dir / entry.student
    try:
        result = GradeResult.model_validate_json((folder / "results.json").read_text())
        source = (folder / ".source-hash").read_text().strip()
    except (OSError, ValueError):
        return None
    if source == _content_hash(entry.path) and result.rubric_hash == rubric.fingerprint():
        return result
    return None


# -- worker processes --------------------------------------------------------

_worker_state: dict[str, object] = {}


#: Imported once by the pool's fork server, before any worker exists: each
#: worker is a fork of it and does not import them again. Not xgboost,
#: whose OpenMP settings each worker fixes before it loads.
WORKER_PRELOAD = (
    "grader.grade",
    "grader.batch",
    "moto.server",
    "moto.s3.responses",
    "moto.iam.responses",
    "moto.sts.responses",
    "moto.sagemaker.responses",
    "moto.logs.responses",
    "moto.cloudwatch.responses",
    "matplotlib.figure",
    "matplotlib.backends.backend_svg",
)


def _pool_context() -> Any:
    """Workers forked from a server that holds nothing but imports: no
    thread, emulator or state of the calling process reaches them."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(WORKER_PRELOAD))
    return context


def _worker_start(rubric_path: str | None) -> None:
    """Runs once in each worker: one emulator serves all its submissions."""
    # Before xgboost loads OpenMP: the workers share the cores, and threads
    # that spin while idle would take them from each other.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # A SIGTERM to the whole batch unwinds each worker's current grading,
    # which removes its temporary directories and holdout copy.
    signal.signal(signal.SIGTERM, _interrupt)
    from grader.grade import emulator_for

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    rubric = load_rubric(rubric_path)
    scratch = Path(tempfile.mkdtemp(prefix="grader-worker-"))
    emulator = emulator_for(rubric, scratch)
    emulator.start()
    _worker_state.update(rubric=rubric, emulator=emulator)

    def stop() -> None:
        emulator.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    # Workers are forked, so atexit would not run: multiprocessing's own
    # finalizers do, when the pool lets the worker go.
    multiprocessing.util.Finalize(None, stop, exitpriority=10)
    threading.Thread(target=_exit_with_the_pool, args=(stop,), daemon=True).start()


def _exit_with_the_pool(stop: Callable[[], None]) -> None:
    """A worker whose fork server is gone (the grader was killed) would
    wait for work forever, holding an emulator and a sandbox: it cleans up
    and leaves instead. Every other worker holds the queue open, so it
    would never see the queue close."""
    server = os.getppid()
    while os.getppid() == server:
        time.sleep(1)
    stop()
    os._exit(1)


def _interrupt(signum: int, frame: object) -> None:
    """Unwind a grading in progress; an idle worker just exits (either way
    its finalizers stop the emulator and remove its directory)."""
    if _worker_state.get("grading"):
        raise KeyboardInterrupt
    sys.exit(0)


def _score_reference() -> None:
    from grader.grade import score_reference

    score_reference(_worker_state["rubric"], emulator=_worker_state["emulator"])


def _grade_one(entry: Entry, out_dir: str, reference: Any, audience: str) -> GradeResult:
    from grader.grade import grade

    rubric = _worker_state["rubric"]
    emulator = _worker_state["emulator"]
    assert isinstance(rubric, Rubric)
    target = Path(out_dir) / entry.student
    source_hash = _content_hash(entry.path)
    staging = None
    _worker_state["grading"] = True
    try:
        path = entry.path
        if path.is_file():
            staging = Path(tempfile.mkdtemp(prefix="grader-zip-"))
            path = unpack_zip(path, staging)
        result = grade(
            path,
            rubric,
            target,
            reference=ModelScores.model_validate(reference)
            if isinstance(reference, dict) else reference,
            emulator=emulator,  # type: ignore[arg-type]
            audience=audience,
        )
        result.submission = entry.student
    except GraderError as exc:
        result = error_result(entry.student, rubric, str(exc), source_hash)
        _write_error(result, target, audience)
    except Exception as exc:  # a crash of the grader itself must not stop the batch
        log.exception("grading %s crashed", entry.student)
        result = error_result(entry.student, rubric, f"the grader crashed: {exc}", source_hash)
        _write_error(result, target, audience)
    finally:
        _worker_state["grading"] = False
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    write_atomic(target / ".source-hash", source_hash)
    return result


def _write_error(result: GradeResult, target: Path, audience: str) -> None:
    from grader.report import write_report

    target.mkdir(parents=True, exist_ok=True)
    write_report(result, target / "report.html", audience=audience)
    write_atomic(target / "results.json", result.model_dump_json(indent=2))




def grade_class(
    entries: list[Entry],
    out_dir: Path,
    *,
    rubric_path: Path | None,
    reference: ModelScores | None,
    workers: int,
    force: bool = False,
    audience: str = "instructor",
    on_result: Callable[[Entry, GradeResult, bool], None] | None = None,
) -> list[GradeResult]:
    """Grade ``entries`` into ``out_dir``; each result is on disk once returned."""
    from grader.emulator import check_socket_room

    check_socket_room()
    rubric = load_rubric(rubric_path)
    results: dict[str, GradeResult] = {}
    pending = []
    for entry in entries:
        kept = None if force else existing_result(out_dir, entry, rubric)
        if kept is not None:
            results[entry.student] = kept
            if on_result:
                on_result(entry, kept, True)
        else:
            pending.append(entry)

    if pending:
        # Without cached reference scores, the first worker computes them
        # while the others start grading and wait for them only to judge.
        waiter: Any = reference.model_dump() if reference is not None else None
        if reference is None:
            from grader.grade import ReferenceWait

            waiter = ReferenceWait(rubric, timeout=rubric.timeouts.notebook_seconds + 120)
        for entry, result in _run_pool(pending, out_dir, rubric_path, waiter, workers,
                                       audience, rubric):
            results[entry.student] = result
            if on_result:
                on_result(entry, result, False)
    return [results[e.student] for e in entries]


def _run_pool(
    pending: list[Entry],
    out_dir: Path,
    rubric_path: Path | None,
    reference: Any,
    workers: int,
    audience: str,
    rubric: Rubric,
) -> Iterator[tuple[Entry, GradeResult]]:
    context = _pool_context()
    remaining = list(pending)
    while remaining:
        pool = futures.ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(remaining))),
            mp_context=context,
            initializer=_worker_start,
            initargs=(str(rubric_path) if rubric_path else None,),
        )
        if not isinstance(reference, dict):
            pool.submit(_score_reference)
        submitted = {
            pool.submit(_grade_one, e, str(out_dir), reference, audience): e
            for e in remaining
        }
        broken = False
        try:
            for future in futures.as_completed(submitted):
                entry = submitted[future]
                try:
                    result = future.result()
                except futures.process.BrokenProcessPool:
                    broken = True
                    continue
                remaining.remove(entry)
                yield entry, result
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
        if broken:
            # A worker died (killed by the OS, most likely): the submission it
            # held cannot be told apart from its neighbours, so each of the
            # unfinished ones is graded again, alone, to find the culprit.
            survivors = []
            for entry in remaining:
                outcome = _grade_isolated(entry, out_dir, rubric_path, reference, audience)
                if outcome is None:
                    source_hash = _content_hash(entry.path)
                    result = error_result(
                        entry.student, rubric,
                        "grading this submission killed its worker process (out of memory?)",
                        source_hash,
                    )
                    _write_error(result, out_dir / entry.student, audience)
                    write_atomic(out_dir / entry.student / ".source-hash", source_hash)
                    outcome = result
                survivors.append((entry, outcome))
            remaining.clear()
            yield from survivors


def _grade_isolated(
    entry: Entry, out_dir: Path, rubric_path: Path | None, reference: Any,
    audience: str,
) -> GradeResult | None:
    context = _pool_context()
    with futures.ProcessPoolExecutor(
        max_workers=1, mp_context=context, initializer=_worker_start,
        initargs=(str(rubric_path) if rubric_path else None,),
    ) as pool:
        try:
            return pool.submit(
                _grade_one, entry, str(out_dir), reference, audience
            ).result()
        except futures.process.BrokenProcessPool:
            return None
