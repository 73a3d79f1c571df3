"""The shape of a grading result, as written to ``results.json``.

These models are the single contract between the checks, the report, the
exports and the CLI. Field names are stable: downstream tools read them.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field


class Status(str, Enum):
    """The outcome of one criterion."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


class Verdict(BaseModel):
    """One criterion judged: the status, the points and the reason why.

    ``message`` is the one-line verdict; ``cause`` and ``fix`` say, in the
    student's terms, what went wrong and what to change; ``location`` points
    at the notebook cell or script line where that can be found.
    """

    id: str
    title: str = ""
    status: Status
    points: float = 0.0
    max_points: float = 0.0
    message: str
    cause: str | None = None
    fix: str | None = None
    location: str | None = None
    hidden: bool = False
    #: The criterion whose failure explains this one, when it is a consequence.
    caused_by: str | None = None
    evidence: dict[str, Any] = Field(default_factory=dict)


class JobRecord(BaseModel):
    """A training job as the emulator ran it."""

    name: str
    status: str
    failure_reason: str | None = None
    model_data: str | None = None
    image: str | None = None
    entry_point: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    channels: dict[str, str] = Field(default_factory=dict)
    metric_definitions: list[dict[str, str]] = Field(default_factory=list)
    duration_seconds: float | None = None
    exit_code: int | None = None
    local_mode: bool = False


class ModelScores(BaseModel):
    """AUCs the grader computed itself from a model artifact."""

    validation_auc: float | None = None
    holdout_auc: float | None = None


class LearningCurve(BaseModel):
    """Train and validation AUC after each boosting round, recomputed."""

    rounds: list[int] = Field(default_factory=list)
    train: list[float] = Field(default_factory=list)
    validation: list[float] = Field(default_factory=list)
    metric: str = "auc"


class CellFailure(BaseModel):
    """The notebook cell that stopped execution, for the report."""

    index: int
    source: str
    error_name: str
    error_value: str
    traceback: str


class Timings(BaseModel):
    """Where the grading time went, in seconds."""

    setup: float = 0.0
    kernel_start: float = 0.0
    notebook: float = 0.0
    training: float = 0.0
    checks: float = 0.0
    report: float = 0.0
    total: float = 0.0


class ManualItem(BaseModel):
    """A criterion a person scores, with the answer the grader found for it.

    ``points`` stays None until an instructor's scores file gives it.
    """

    id: str
    title: str
    max_points: float
    points: float | None = None
    comment: str = ""
    answer: str = ""
    location: str | None = None


class GradeResult(BaseModel):
    """Everything the grader decided about one submission."""

    submission: str
    status: str = "graded"
    error: str | None = None
    score: float = 0.0
    max_score: float = 0.0
    rubric: str = ""
    rubric_hash: str = ""
    submission_hash: str = ""
    grader_version: str = ""
    graded_at: str = ""
    criteria: list[Verdict] = Field(default_factory=list)
    manual: list[ManualItem] = Field(default_factory=list)
    reference: ModelScores = Field(default_factory=ModelScores)
    student: ModelScores = Field(default_factory=ModelScores)
    jobs: list[JobRecord] = Field(default_factory=list)
    learning_curve: LearningCurve | None = None
    cell_failure: CellFailure | None = None
    training_log: str = ""
    timings: Timings = Field(default_factory=Timings)

    def verdict(self, criterion_id: str) -> Verdict | None:
        """The verdict for ``criterion_id``, or None when it was not judged."""
        return next((v for v in self.criteria if v.id == criterion_id), None)
