"""Build the autograder zip an instructor uploads to Gradescope.

Gradescope unpacks the zip in ``/autograder/source``, runs its
``setup.sh`` once while building the image, and then runs
``run_autograder`` for every submission. The zip therefore carries the
grader's own source tree (it is not on PyPI), which ``setup.sh`` installs
into a virtualenv, and the rubric that :mod:`grader.gradescope_run`
grades with.

    setup.sh          installs Python 3.11 and the grader
    run_autograder    grades /autograder/submission into results.json
    rubric.yaml       the rubric, as given
    source/           pyproject.toml, README.md, grader/, rubrics/,
                      reference_solution/
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from grader.errors import GraderError
from grader.rubric import DEFAULT_RUBRIC, load_rubric
from grader.submission import IGNORED_NAMES
from grader.zipfiles import write_zip

log = logging.getLogger("grader")

#: The project checkout the running grader was imported from.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: What ``source/`` holds: enough to ``pip install`` the grader and to
#: score the reference solution.
SOURCE_FILES = ("pyproject.toml", "README.md")
SOURCE_FOLDERS = ("grader", "rubrics", "reference_solution")

_SCRIPTS = {
    "setup.sh": "gradescope-setup.sh",
    "run_autograder": "gradescope-run_autograder",
}


@dataclass(frozen=True)
class Bundle:
    """A built autograder zip and the names in it."""

    archive: Path
    files: list[str]


def build_bundle(rubric_path: Path | None, out: Path) -> Bundle:
    """Write the autograder zip to ``out`` for the rubric at ``rubric_path``
    (default: the course's rubric), refusing a rubric that does not load."""
    rubric_file = Path(rubric_path) if rubric_path else DEFAULT_RUBRIC
    load_rubric(rubric_file)
    if out.suffix.lower() != ".zip":
        raise GraderError(f"{out.name}: Gradescope takes the autograder as a .zip")

    members: list[tuple[str, bytes, int]] = []
    templates = resources.files("grader") / "templates"
    for name, template in _SCRIPTS.items():
        members.append((name, templates.joinpath(template).read_bytes(), 0o755))
    members.append(("rubric.yaml", rubric_file.read_bytes(), 0o644))
    for relative in _source_files():
        content = (PROJECT_ROOT / relative).read_bytes()
        members.append((f"source/{relative.as_posix()}", content, 0o644))

    write_zip(out, members)
    names = [name for name, _, _ in members]
    log.debug("wrote the Gradescope autograder %s (%d files)", out, len(names))
    return Bundle(out.resolve(), names)


def _source_files() -> list[Path]:
    """The grader's source, relative to the checkout, without caches."""
    wanted = (*SOURCE_FILES, *SOURCE_FOLDERS)
    missing = [name for name in wanted if not (PROJECT_ROOT / name).exists()]
    if missing:
        raise GraderError(
            f"{PROJECT_ROOT} lacks {', '.join(missing)}: build the Gradescope bundle "
            "from a checkout of the grader (pip install -e), not an installed copy"
        )
    files = [Path(name) for name in SOURCE_FILES]
    for folder in SOURCE_FOLDERS:
        for path in sorted((PROJECT_ROOT / folder).rglob("*")):
            relative = path.relative_to(PROJECT_ROOT)
            parts = relative.parts
            skipped = any(p in IGNORED_NAMES or p.startswith(".") for p in parts)
            if path.is_file() and not skipped and path.suffix != ".pyc":
                files.append(relative)
    return files

