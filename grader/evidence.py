"""What the grader saw, gathered in one place for the checks to judge.

Nothing here comes from what the student printed: the training jobs are the
emulator's own records, the artifact is the archive the emulated service
packed, the channels' contents are the files the job was given, and the
model's figures come from :mod:`grader.model_probe`.
"""

from __future__ import annotations

import ast
import json
import logging
import math
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from grader.execute import NotebookRun
from grader.rubric import Rubric
from grader.sandbox import ResourceLimits, kill_group
from grader.submission import Submission
from grader.training import JobRun

log = logging.getLogger("grader")

_PROBE_SECONDS = 120
#: Bytes read from each archive member that xgboost could not load, to name
#: what it is instead.
_HEAD_BYTES = 256
#: Channel files larger than this are listed but not parsed.
_MAX_PARSED_BYTES = 20 * 1024 * 1024
_TRACEBACK_CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


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
class ChannelFile:
    """One file the job found in a channel directory."""

    name: str
    rows: int
    columns: int
    #: Every field of every row is a number: a data file as the course gives it.
    numeric: bool
    #: Numeric but for a first row of names: a CSV file with a header.
    header: bool = False


@dataclass
class ChannelData:
    """What a channel held, to compare with what the script built from it.

    ``labels`` are the distinct values of column 0 and ``ranges`` the
    minimum and maximum of each column, over the channel's numeric files.
    """

    files: list[ChannelFile] = field(default_factory=list)
    rows: int = 0
    columns: int = 0
    labels: list[float] = field(default_factory=list)
    ranges: list[tuple[float, float]] = field(default_factory=list)

    @property
    def data_files(self) -> list[ChannelFile]:
        return [f for f in self.files if f.numeric]


@dataclass
class Evidence:
    rubric: Rubric
    submission: Submission
    notebook: NotebookRun
    runs: list[JobRun]
    artifact: Artifact | None
    reference_scores: dict[str, float | None]
    script_text: str

    @property
    def graded_run(self) -> JobRun | None:
        """The job whose model is graded: the last one that completed, else the last."""
        completed = [r for r in self.runs if r.status == "Completed"]
        if completed:
            return completed[-1]
        return self.runs[-1] if self.runs else None

    def code_cells(self) -> list[tuple[int, str]]:
        """Code cells numbered as in the student's notebook (no injected cell)."""
        return [
            (index, cell.source)
            for index, cell in enumerate(self.submission.notebook.cells)
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
        """"train.py line N" of the first line of code matching ``pattern``;
        docstrings and comments are not code."""
        regex = re.compile(pattern)
        for number, line in self._script_code:
            if regex.search(line):
                return f"{self.script_name} line {number}"
        return None

    @cached_property
    def _script_code(self) -> list[tuple[int, str]]:
        lines = self.script_text.splitlines()
        prose: set[int] = set()
        try:
            tree = ast.parse(self.script_text)
        except SyntaxError:
            tree = None
        for node in ast.walk(tree) if tree is not None else ():
            is_text = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            if is_text and isinstance(node.value.value, str):
                prose.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
        return [
            (number, line)
            for number, line in enumerate(lines, 1)
            if number not in prose and not line.lstrip().startswith("#")
        ]

    @property
    def script_name(self) -> str:
        return self.submission.script_path.relative_to(self.submission.root).as_posix()

    def failure_location(self) -> str | None:
        """The failing cell, with the line its traceback points at."""
        failure = self.notebook.failure
        if failure is None or failure.index < 0:
            return None
        match = _TRACEBACK_CELL_LINE.search(_ANSI.sub("", failure.traceback or ""))
        line = f", line {match.group(1)}" if match else ""
        return f"notebook cell {failure.index + 1}{line}"

    @cached_property
    def notebook_names(self) -> dict[str, int]:
        """Each name a code cell binds, with the index of the first cell binding it."""
        names: dict[str, int] = {}
        for index, source in self.code_cells():
            lines = [
                line for line in source.splitlines()
                if not line.lstrip().startswith(("%", "!"))
            ]
            try:
                tree = ast.parse("\n".join(lines))
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                bound: list[str] = []
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                    bound = [node.id]
                elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    bound = [node.name]
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    bound = [(a.asname or a.name).partition(".")[0] for a in node.names]
                for name in bound:
                    names.setdefault(name, index)
        return names

    def channel_data(self, run: JobRun) -> dict[str, ChannelData]:
        """Each channel's files as the job received them, read by the grader."""
        cache = self.__dict__.setdefault("_channel_data", {})
        if run.name not in cache:
            cache[run.name] = {
                channel: _read_channel(run.paths.channel_dir(channel))
                for channel in run.channels
            }
        return cache[run.name]


def _parse_row(line: str) -> list[float] | None:
    try:
        values = [float(field) for field in line.split(",")]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def _all_numeric(rows: list[list[float] | None], width: int) -> bool:
    return bool(rows) and all(r is not None and len(r) == width for r in rows)


def _read_channel(directory: Path) -> ChannelData:
    data = ChannelData()
    if not directory.is_dir():
        return data
    labels: set[float] = set()
    files = (p for p in directory.rglob("*") if p.is_file() and not p.is_symlink())
    for path in sorted(files):
        name = path.relative_to(directory).as_posix()
        if path.stat().st_size > _MAX_PARSED_BYTES:
            data.files.append(ChannelFile(name, rows=0, columns=0, numeric=False))
            continue
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
        rows = [_parse_row(line) for line in lines]
        width = len(lines[0].split(",")) if lines else 0
        numeric = _all_numeric(rows, width)
        header = not numeric and rows[0] is None and _all_numeric(rows[1:], width)
        data.files.append(ChannelFile(name, len(lines), width, numeric, header))
        if not numeric or (data.columns and width != data.columns):
            continue
        data.columns = width
        data.rows += len(rows)
        for row in rows:
            assert row is not None
            labels.add(row[0])
            if not data.ranges:
                data.ranges = [(v, v) for v in row]
            else:
                data.ranges = [
                    (min(lo, v), max(hi, v)) for (lo, hi), v in zip(data.ranges, row)
                ]
    data.labels = sorted(labels)[:20]
    return data


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
    _add_heads(archive, artifact.other_files)
    model = artifact.model
    if model is not None:
        artifact.scores = _score(Path(model["normalized"]), splits)
    return artifact


def _add_heads(archive: Path, entries: list[dict[str, Any]]) -> None:
    """The first bytes of each member xgboost could not load, as text, so a
    check can say what the file is. Reading a named regular member from the
    archive writes nothing and runs nothing."""
    if not entries:
        return
    try:
        with tarfile.open(archive) as tar:
            for entry in entries:
                member = tar.getmember(entry["name"])
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    entry["head"] = handle.read(_HEAD_BYTES).decode("utf-8", errors="replace")
    except (tarfile.TarError, OSError, KeyError):
        return


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
