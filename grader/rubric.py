"""The rubric: which criteria count, for how many points, and the settings
the grader needs to run a submission (timeouts, limits, fixtures and the
notebook parameters it injects).

A rubric is YAML validated by pydantic on load, so a typo is a one-line
error naming the field rather than a surprise halfway through a batch.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grader.errors import RubricError

#: The criteria the grader knows how to judge, in the order they are reported.
KNOWN_CRITERIA = (
    "notebook_runs",
    "job_completed",
    "artifact_saved",
    "channels_matched",
    "hyperparameters_honoured",
    "metrics_logged",
    "model_loads",
    "auc_threshold",
    "model_learning",
)

DEFAULT_RUBRIC = Path(__file__).resolve().parent.parent / "rubrics" / "assignment2.yaml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Criterion(_Strict):
    id: str
    title: str
    points: float = Field(ge=0)
    hidden: bool = False

    @field_validator("id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in KNOWN_CRITERIA:
            raise ValueError(f"unknown criterion {value!r}; known: {', '.join(KNOWN_CRITERIA)}")
        return value


class ManualCriterion(_Strict):
    """An item a person scores; its answer is found by cell tag or heading."""

    id: str
    title: str
    points: float = Field(ge=0)
    tag: str | None = None
    #: A regular expression matched against markdown headings.
    heading: str | None = None

    @field_validator("id")
    @classmethod
    def _not_automated(cls, value: str) -> str:
        if value in KNOWN_CRITERIA:
            raise ValueError(f"{value!r} is an automated criterion")
        return value

    @field_validator("heading")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class Thresholds(_Strict):
    min_validation_auc: float = Field(0.9, ge=0, le=1)
    min_holdout_auc: float = Field(0.9, ge=0, le=1)
    #: How far below the reference's holdout AUC a student may fall.
    max_gap_to_reference: float = Field(0.05, ge=0, le=1)
    #: Validation AUC gain from the first boosting round to the final model.
    min_learning_gain: float = Field(0.0, ge=0, le=1)
    #: Printed or logged AUC further than this from the recomputed one is flagged.
    max_reported_auc_drift: float = Field(0.02, ge=0, le=1)


class Timeouts(_Strict):
    cell_seconds: int = Field(300, gt=0)
    notebook_seconds: int = Field(900, gt=0)
    kernel_start_seconds: int = Field(120, gt=0)
    #: Cap on a training job's wall clock, whatever ``max_run`` the student set.
    job_seconds: int = Field(300, gt=0)


class Limits(_Strict):
    """Resource limits for student code: the kernel and every training job."""

    memory_mb: int = Field(4096, gt=0)
    cpu_seconds: int = Field(1800, gt=0)
    processes: int = Field(512, gt=0)
    file_size_mb: int = Field(1024, gt=0)
    output_bytes: int = Field(5_000_000, gt=0)


class Dataset(_Strict):
    """A dataset that ships with a package, split reproducibly three ways."""

    name: Literal["breast_cancer"] = "breast_cancer"
    seed: int = 2
    validation_fraction: float = Field(0.2, gt=0, lt=1)
    holdout_fraction: float = Field(0.2, gt=0, lt=1)


def _fractions_leave_training_data(dataset: "Dataset") -> "Dataset":
    if dataset.validation_fraction + dataset.holdout_fraction >= 0.9:
        raise ValueError(
            "validation_fraction + holdout_fraction must leave at least 10% for training"
        )
    return dataset


class Fixtures(_Strict):
    dataset: Dataset = Dataset()

    @field_validator("dataset")
    @classmethod
    def _leaves_training_data(cls, value: Dataset) -> Dataset:
        return _fractions_leave_training_data(value)

    #: Files copied into the submission's working directory, by split.
    files: dict[str, str] = {
        "train": "data/train.csv",
        "validation": "data/validation.csv",
    }
    #: Objects seeded into emulated S3 before the notebook runs, by split.
    s3: dict[str, str] = {
        "train": "s3://sagemaker-us-east-1-123456789012/assignment2/train/train.csv",
        "validation": (
            "s3://sagemaker-us-east-1-123456789012/assignment2/validation/validation.csv"
        ),
    }

    @field_validator("files", "s3")
    @classmethod
    def _public_splits_only(cls, value: dict[str, str]) -> dict[str, str]:
        for split in value:
            if split not in ("train", "validation"):
                raise ValueError(
                    f"split {split!r} cannot be given to students; use train or validation"
                )
        return value

    @field_validator("s3")
    @classmethod
    def _s3_uris(cls, value: dict[str, str]) -> dict[str, str]:
        for uri in value.values():
            if not uri.startswith("s3://") or "/" not in uri[5:]:
                raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
        return value


class Submission(_Strict):
    """What a submission must contain."""

    notebook: str = "*.ipynb"
    script: str = "train.py"


class Rubric(_Strict):
    name: str
    title: str
    criteria: list[Criterion]
    manual: list[ManualCriterion] = []
    thresholds: Thresholds = Thresholds()
    timeouts: Timeouts = Timeouts()
    limits: Limits = Limits()
    fixtures: Fixtures = Fixtures()
    submission: Submission = Submission()
    #: Values injected after the notebook's ``parameters`` cell, papermill-style.
    parameters: dict[str, Any] = {}

    @field_validator("criteria")
    @classmethod
    def _unique(cls, value: list[Criterion]) -> list[Criterion]:
        seen: set[str] = set()
        for criterion in value:
            if criterion.id in seen:
                raise ValueError(f"criterion {criterion.id!r} is listed twice")
            seen.add(criterion.id)
        if not value:
            raise ValueError("a rubric needs at least one criterion")
        return value

    @field_validator("manual")
    @classmethod
    def _findable(cls, value: list[ManualCriterion]) -> list[ManualCriterion]:
        for item in value:
            if item.tag is None and item.heading is None:
                raise ValueError(f"manual item {item.id!r} needs a tag or a heading")
        return value

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.criteria)

    def criterion(self, criterion_id: str) -> Criterion | None:
        return next((c for c in self.criteria if c.id == criterion_id), None)

    def public(self) -> "Rubric":
        """This rubric without its hidden criteria, for students' self-checks."""
        visible = [c for c in self.criteria if not c.hidden]
        return self.model_copy(update={"criteria": visible})

    def fingerprint(self) -> str:
        """A hash of every setting that can change a verdict."""
        text = self.model_dump_json()
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_rubric(path: str | Path | None = None) -> Rubric:
    """Read and validate a rubric; raise RubricError naming the bad field."""
    path = Path(path) if path else DEFAULT_RUBRIC
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RubricError(f"rubric {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"rubric {path} cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RubricError(f"rubric {path} is not valid YAML{where}") from None
    if not isinstance(raw, dict):
        raise RubricError(f"rubric {path} must be a mapping with name, title and criteria")
    try:
        return Rubric.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        more = len(exc.errors()) - 1
        extra = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise RubricError(f"rubric {path}: {field}: {first['msg']}{extra}") from None
