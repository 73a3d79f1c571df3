"""What the grader saw, gathered in one place for the checks to judge.

Nothing here comes from what the student printed: the training jobs are the
emulator's own records, the artifact is the archive the emulated service
packed, and the model's figures come from :mod:`grader.model_probe`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.execute import NotebookRun
from grader.rubric import Rubric
from grader.sandbox import ResourceLimits, kill_group
from grader.submission import Submission
from grader.training import JobRun

log = logging.getLogger("grader")

_PROBE_SECONDS = 120


@dataclass
class Artifact:
    """What ``model.tar.gz`` held and what could be loaded from it."""

    archive: Path
    members: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    other_files: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    scores: dict[str, Any] | None = None

    @property
    def files(self) -> list[str]:
        return [m["name"] for m in self.members if m["kind"] == "file"]

    @property
    def model(self) -> dict[str, Any] | None:
        return self.models[0] if self.models else None


@dataclass
class Evidence:
    rubric: Rubric
    submission: Submission
    notebook: NotebookRun
    runs: list[JobRun]
    artifact: Artifact | None
    reference_scores: dict[str, float | None]
    script_text: str
    workdir: Path

    @property
    def graded_run(self) -> JobRun | None:
        """The job whose model is graded: the last one that completed, else the last."""
        completed = [r for r in self.runs if r.status == "Completed"]
        if completed:
            return completed[-1]
        return self.runs[-1] if self.runs else None

    def code_cells(self) -> list[tuple[int, str]]:
        return [
            (index, cell.source)
            for index, cell in enumerate(self.notebook.notebook.cells)
            if cell.cell_type == "code"
        ]

    def notebook_location(self, pattern: str) -> str | None:
        """"cell N, line M" of the first code line matching ``pattern``."""
        regex = re.compile(pattern)
        for index, source in self.code_cells():
            for number, line in enumerate(source.splitlines(), 1):
                if regex.search(line):
                    return f"notebook cell {index + 1}, line {number}"
        return None

    def script_location(self, pattern: str) -> str | None:
        regex = re.compile(pattern)
        name = self.submission.script_path.relative_to(self.submission.root).as_posix()
        for number, line in enumerate(self.script_text.splitlines(), 1):
            if regex.search(line):
                return f"{name} line {number}"
        return None


def _probe(args: list[str], *, cwd: Path, limits: ResourceLimits, warm: Any) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
    }
    try:
        if warm is not None:
            stdout, stderr = _probe_warm(args, cwd=cwd, env=env, limits=limits, warm=warm)
        else:
            completed = subprocess.run(
                [sys.executable, "-m", "grader.model_probe", *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                timeout=_PROBE_SECONDS,
                start_new_session=True,
                preexec_fn=limits.preexec(),
            )
            stdout, stderr = completed.stdout, completed.stderr
    except subprocess.TimeoutExpired:
        return {"errors": [f"loading the model took longer than {_PROBE_SECONDS} s"]}
    try:
        return json.loads(stdout.decode() or "{}")
    except ValueError:
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:]
        return {"errors": [f"the model probe failed: {' '.join(tail) or 'no output'}"]}


def _probe_warm(
    args: list[str], *, cwd: Path, env: dict[str, str], limits: ResourceLimits, warm: Any
) -> tuple[bytes, bytes]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, open(
        os.devnull, "rb"
    ) as devnull:
        child = warm.spawn(
            cwd=cwd, env=env, stdin=devnull.fileno(), stdout=out.fileno(),
            stderr=err.fileno(), rlimits=limits.as_rlimits(),
            module="grader.model_probe", args=args,
        )
        try:
            child.wait(timeout=_PROBE_SECONDS)
        except subprocess.TimeoutExpired:
            kill_group(child.pid)
            raise
        out.seek(0)
        err.seek(0)
        return out.read(), err.read()


def inspect_artifact(
    run: JobRun,
    *,
    scratch: Path,
    splits: dict[str, Path],
    limits: ResourceLimits,
    warm: Any = None,
) -> Artifact | None:
    """Open the job's ``model.tar.gz`` and score the model it holds."""
    archive = run.paths.root.parent / "model.tar.gz"
    if not run.model_data or not archive.is_file():
        return None
    artifact = Artifact(archive=archive)
    opened_dir = scratch / "opened"
    opened_dir.mkdir(parents=True, exist_ok=True)
    opened = _probe(
        ["open", str(archive), str(opened_dir)], cwd=opened_dir, limits=limits, warm=warm
    )
    artifact.members = opened.get("members", [])
    artifact.models = opened.get("models", [])
    artifact.other_files = opened.get("other_files", [])
    artifact.errors = list(opened.get("errors", []))
    model = artifact.model
    if model is not None:
        artifact.scores = _score(Path(model["normalized"]), splits)
    return artifact


def _score(model: Path, splits: dict[str, Path]) -> dict[str, Any]:
    """Score in the grader's own process: the holdout must never be opened
    where student code runs. The file is the JSON that xgboost itself wrote
    in the sandboxed step, never a pickle."""
    from grader.model_probe import MAX_SCORED_ROUNDS, score

    try:
        return score(model, {name: str(path) for name, path in splits.items()})
    except Exception as exc:  # a malformed model is a finding, not a crash
        return {"errors": [f"{type(exc).__name__}: {exc}"[:300]],
                "limit": MAX_SCORED_ROUNDS}
