"""The course dataset, split three ways: train and validation go to the
student; the holdout stays with the grader.

The table ships inside scikit-learn, so grading needs no download. Files
are written the way SageMaker's built-in XGBoost expects them: the label in
column 0, no header, no index.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from grader.errors import RubricError
from grader.rubric import Dataset

_LOADERS = {
    "breast_cancer": datasets.load_breast_cancer,
}


@dataclass(frozen=True)
class Splits:
    """Label-first frames for each split; ``label`` is column 0."""

    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    _csv: dict[str, bytes] = field(default_factory=dict, compare=False, repr=False)

    @property
    def feature_count(self) -> int:
        return self.train.shape[1] - 1

    def split(self, name: str) -> pd.DataFrame:
        return {"train": self.train, "validation": self.validation, "holdout": self.holdout}[
            name
        ]

    def csv(self, name: str) -> bytes:
        """The split as SageMaker's XGBoost reads CSV: label first, no
        header. Formatted once: every submission gets the same bytes."""
        if name not in self._csv:
            self._csv[name] = self.split(name).to_csv(header=False, index=False).encode()
        return self._csv[name]


def load_splits(spec: Dataset) -> Splits:
    """Load the named dataset and split it reproducibly, stratified by label.
    A process that grades many submissions splits once."""
    return _load_splits(spec.model_dump_json())


@functools.lru_cache(maxsize=4)
def _load_splits(spec_json: str) -> Splits:
    spec = Dataset.model_validate_json(spec_json)
    try:
        loader = _LOADERS[spec.name]
    except KeyError:
        known = ", ".join(sorted(_LOADERS))
        raise RubricError(f"fixtures.dataset.name: unknown dataset {spec.name!r}; known: {known}")
    bunch = loader()
    features = pd.DataFrame(np.asarray(bunch.data, dtype=float))
    table = pd.concat([pd.Series(bunch.target, name="label"), features], axis=1)
    table.columns = ["label"] + [f"f{i}" for i in range(features.shape[1])]

    rest, holdout = train_test_split(
        table,
        test_size=spec.holdout_fraction,
        random_state=spec.seed,
        stratify=table["label"],
    )
    validation_share = spec.validation_fraction / (1 - spec.holdout_fraction)
    train, validation = train_test_split(
        rest,
        test_size=validation_share,
        random_state=spec.seed,
        stratify=rest["label"],
    )
    return Splits(
        train=train.reset_index(drop=True),
        validation=validation.reset_index(drop=True),
        holdout=holdout.reset_index(drop=True),
    )


def write_split(splits: Splits, name: str, path: Path) -> None:
    """Write one split as SageMaker's XGBoost reads CSV: label first, no header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(splits.csv(name))
