"""Pack a student's submission folder into the zip they hand in.

The zip holds what grading reads and nothing else: the notebook, the
training script and, when the script sits in a source_dir, that folder's
Python files and ``requirements.txt``. Data, model artifacts, checkpoints
and caches stay out: the grader brings its own data and trains its own
model. Before the zip is written, the packed files are opened exactly as
``grader grade`` opens a submission, so a zip that packs is a zip that
grades, and a folder that would not grade is refused with grade's message.
Packing an unchanged folder again gives the same bytes, so batch grading,
which hashes each zip, keeps the earlier result.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.errors import GraderError, SubmissionError
from grader.rubric import Rubric
from grader.submission import IGNORED_NAMES, Submission, open_submission
from grader.zipfiles import write_zip

log = logging.getLogger("grader")

#: Optional files above this size stay out; the notebook is kept, with a warning.
MAX_PACKED_FILE_BYTES = 5 * 1024 * 1024
REQUIREMENTS = "requirements.txt"

_DATA_SUFFIXES = (".csv", ".parquet")
_MODEL_SUFFIXES = (".tar.gz", ".pkl", ".joblib")
_MODEL_NAMES = frozenset({"xgboost-model"})
_MODEL_DIRS = frozenset({"model", "models"})
_MODEL_DIR_SUFFIXES = (".json", ".ubj")

# Why a file or folder stays out, as pack's summary says it.
_FOLDER_REASONS = {
    "__pycache__": "Python cache",
    ".ipynb_checkpoints": "notebook checkpoints",
    ".venv": "virtualenv",
    ".git": "git history",
    ".grader-report": "grader check report",
}
_DATA = "data; the grader brings its own"
_MODEL = "model file; the grader trains its own"


@dataclass(frozen=True)
class Packed:
    """A packed submission: the zip, the names in it, and what stayed out."""

    archive: Path
    files: list[str]
    #: ``(name, reason)`` for each file or folder left out; folders end in "/".
    left_out: list[tuple[str, str]] = field(default_factory=list)


def pack(folder: Path, rubric: Rubric, *, out: Path | None = None) -> Packed:
    """Zip the submission in ``folder`` to ``out`` (default: ``<folder>.zip``
    beside it); raise SubmissionError when grade would refuse the result."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise SubmissionError(f"{folder} is not a folder; give the submission folder")
    archive = (out or folder.parent / f"{folder.name}.zip").resolve()
    if archive.suffix.lower() != ".zip":
        raise GraderError(f"{archive.name}: the packed submission must end in .zip")

    candidates, left_out = _survey(folder, rubric)
    with tempfile.TemporaryDirectory(prefix="grader-pack-") as scratch:
        required = _required(folder, rubric, candidates)
        found = _open_staged(folder, required, Path(scratch) / "required", rubric)
        chosen, unread = _choose(folder, found, candidates)
        # The final copy is opened once more: this is what grade will see.
        staged = _open_staged(folder, chosen, Path(scratch) / "final", rubric)
        names = sorted(relative.as_posix() for relative in chosen)
        write_zip(archive, [
            (name, (staged.root / name).read_bytes(), 0o644) for name in names
        ])
    log.debug("packed %d files from %s into %s", len(names), folder, archive)
    return Packed(archive, names, sorted(left_out + unread))


def _choose(
    folder: Path, found: Submission, candidates: set[Path]
) -> tuple[list[Path], list[tuple[str, str]]]:
    """The notebook and script grade found, the requirements and, for a
    script in a source_dir, that folder's Python files; and what is unread."""
    notebook = found.notebook_path.relative_to(found.root)
    script = found.script_path.relative_to(found.root)
    chosen = [notebook, script]
    size = (folder / notebook).stat().st_size
    if size > MAX_PACKED_FILE_BYTES:
        log.warning(
            "%s is %.1f MB; it is packed as is, but clearing large outputs "
            "makes it quicker to hand in", notebook, size / 2**20,
        )

    # Python files beside the notebook: it may import them, and grading the
    # folder would find them there.
    optional = [Path(REQUIREMENTS)] + sorted(
        p for p in candidates if p.parent == Path(".") and p.suffix == ".py" and p != script
    )
    if script.parent != Path("."):
        optional += sorted(
            p for p in candidates
            if p.is_relative_to(script.parent) and _is_source(p) and p != script
        )
    too_large = set()
    for relative in optional:
        if relative not in candidates:
            continue
        if (folder / relative).stat().st_size > MAX_PACKED_FILE_BYTES:
            too_large.add(relative)
        else:
            chosen.append(relative)

    limit = f"larger than {MAX_PACKED_FILE_BYTES // 2**20} MB"
    unread = [
        (p.as_posix(), limit if p in too_large else "not read by the grader")
        for p in sorted(candidates) if p not in chosen
    ]
    return chosen, unread


def _survey(folder: Path, rubric: Rubric) -> tuple[set[Path], list[tuple[str, str]]]:
    """Every file that may be packed, and why each other one is left out.

    Caches, checkpoints, hidden folders and the data folders the grader
    fills itself are not walked at all: they can hold thousands of files.
    """
    data_dirs = {"data"} | {
        PurePosixPath(relative).parts[0]
        for relative in rubric.fixtures.files.values()
        if len(PurePosixPath(relative).parts) > 1
    }
    candidates: set[Path] = set()
    left_out: list[tuple[str, str]] = []
    for directory, subdirectories, files in os.walk(folder):
        here = Path(directory).relative_to(folder)
        for name in sorted(subdirectories):
            relative = here / name
            reason = _skipped_folder(relative, data_dirs)
            if reason is None and (folder / relative).is_symlink():
                reason = "a link"
            if reason:
                subdirectories.remove(name)
                left_out.append((f"{relative.as_posix()}/", reason))
        for name in files:
            relative = here / name
            reason = _skipped_file(relative)
            if reason is None and (folder / relative).is_symlink():
                reason = "a link"
            if reason:
                left_out.append((relative.as_posix(), reason))
            else:
                candidates.add(relative)
    return candidates, left_out


def _skipped_folder(relative: Path, data_dirs: set[str]) -> str | None:
    name = relative.name
    if name in IGNORED_NAMES or name.startswith("."):
        return _FOLDER_REASONS.get(name, "hidden folder")
    if relative.parent == Path(".") and name in data_dirs:
        return _DATA
    return None


def _skipped_file(relative: Path) -> str | None:
    name = relative.name.lower()
    if relative.name in IGNORED_NAMES or name.startswith("."):
        return "hidden file"
    if name.endswith(_DATA_SUFFIXES):
        return _DATA
    in_model_dir = any(part.lower() in _MODEL_DIRS for part in relative.parts[:-1])
    if (
        name.endswith(_MODEL_SUFFIXES)
        or name in _MODEL_NAMES
        or (in_model_dir and name.endswith(_MODEL_DIR_SUFFIXES))
    ):
        return _MODEL
    return None


def _required(folder: Path, rubric: Rubric, candidates: set[Path]) -> list[Path]:
    """Every file that could be the notebook or the script: open_submission
    then picks among them by the same rules grade applies."""
    script = rubric.submission.script
    patterns = (rubric.submission.notebook, script, f"*/{script}")
    found = {
        path.relative_to(folder)
        for pattern in patterns
        for path in folder.glob(pattern)
    }
    return sorted(found & candidates)


def _is_source(relative: Path) -> bool:
    return relative.suffix == ".py" or relative.name == REQUIREMENTS


def _open_staged(
    folder: Path, files: Iterable[Path], scratch: Path, rubric: Rubric
) -> Submission:
    """Copy ``files`` to a folder named like ``folder`` and open it as grade
    would; a refusal names the student's folder, not the copy."""
    staged = scratch / folder.name
    staged.mkdir(parents=True)
    for relative in files:
        (staged / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / relative, staged / relative)
    try:
        return open_submission(staged, rubric)
    except SubmissionError as exc:
        raise SubmissionError(str(exc).replace(str(staged), str(folder))) from None


