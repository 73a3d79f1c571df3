"""A student's submission: find its notebook and script, read them, and lay
out a fresh working copy for the kernel, with the rubric's fixture files.

Everything a malformed submission can get wrong surfaces here as a
:class:`SubmissionError` with a one-line message, before any code runs.
"""

from __future__ import annotations

import hashlib
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.data import Splits, write_split
from grader.errors import SubmissionError
from grader.rubric import Rubric

#: Never copied into the working directory, nor counted in the content hash.
IGNORED_NAMES = frozenset(
    {".ipynb_checkpoints", "__pycache__", ".git", ".DS_Store", "__MACOSX", ".venv"}
)
MAX_SUBMISSION_BYTES = 50 * 1024 * 1024
MAX_SUBMISSION_FILES = 2000


@dataclass(frozen=True)
class Submission:
    """A submission folder that has what the rubric asks for."""

    root: Path
    notebook_path: Path
    script_path: Path
    notebook: nbformat.NotebookNode

    @property
    def name(self) -> str:
        return self.root.name

    def content_hash(self) -> str:
        return tree_hash(self.root)


def tree_hash(root: Path) -> str:
    """A hash of every file the grader would copy from ``root``: same hash,
    same verdicts."""
    digest = hashlib.sha256()
    for path in _files(root):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _files(root: Path) -> list[Path]:
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part in IGNORED_NAMES for part in relative.parts):
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
    return found


def open_submission(path: Path, rubric: Rubric) -> Submission:
    """Validate a submission folder; raise SubmissionError naming what is wrong."""
    if not path.exists():
        raise SubmissionError(f"{path} does not exist")
    if not path.is_dir():
        raise SubmissionError(f"{path} is not a folder; give the folder holding the notebook")
    files = _files(path)
    if len(files) > MAX_SUBMISSION_FILES:
        raise SubmissionError(f"{path} holds {len(files)} files; at most {MAX_SUBMISSION_FILES}")
    total = sum(f.stat().st_size for f in files)
    if total > MAX_SUBMISSION_BYTES:
        raise SubmissionError(
            f"{path} holds {total / 1e6:.0f} MB; at most {MAX_SUBMISSION_BYTES / 1e6:.0f} MB "
            "(leave data and model files out)"
        )

    pattern = rubric.submission.notebook
    notebooks = sorted(
        p for p in path.glob(pattern) if p.is_file() and not p.name.startswith(".")
    )
    if not notebooks:
        raise SubmissionError(f"{path} has no notebook matching {pattern!r}")
    if len(notebooks) > 1:
        names = ", ".join(p.name for p in notebooks)
        raise SubmissionError(f"{path} has several notebooks ({names}); keep exactly one")
    notebook_path = notebooks[0]

    script_name = rubric.submission.script
    candidates = [path / script_name, *sorted(path.glob(f"*/{script_name}"))]
    script_path = next((p for p in candidates if p.is_file()), None)
    if script_path is None:
        raise SubmissionError(f"{path} has no {script_name} (looked in the folder and one level down)")

    for candidate in (notebook_path, script_path):
        if candidate.is_symlink():
            raise SubmissionError(
                f"{candidate.name} is a link; submit the file itself, not a link to it"
            )
    try:
        with warnings.catch_warnings():
            # Cells without ids are common and harmless; nbformat fills them in.
            warnings.simplefilter("ignore")
            notebook = nbformat.read(notebook_path, as_version=4)
            nbformat.validate(notebook)
    except OSError as exc:
        raise SubmissionError(f"{notebook_path.name} cannot be read: {exc.strerror}") from None
    except Exception as exc:  # nbformat raises many kinds for malformed files
        text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        reason = str(text).splitlines()[0][:120]
        raise SubmissionError(
            f"{notebook_path.name} is not a valid Jupyter notebook ({reason}); open and "
            "save it in Jupyter, then submit again"
        ) from None
    if not any(cell.cell_type == "code" for cell in notebook.cells):
        raise SubmissionError(f"{notebook_path.name} has no code cells")
    return Submission(path, notebook_path, script_path, notebook)


def lay_out_workdir(submission: Submission, workdir: Path, rubric: Rubric, splits: Splits) -> None:
    """A fresh copy of the submission, with the rubric's files for students."""
    workdir.mkdir(parents=True, exist_ok=True)
    for source in _files(submission.root):
        target = workdir / source.relative_to(submission.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    for split, relative in rubric.fixtures.files.items():
        target = (workdir / relative).resolve()
        if not target.is_relative_to(workdir.resolve()):
            raise SubmissionError(f"fixture path {relative!r} leaves the working directory")
        write_split(splits, split, target)
