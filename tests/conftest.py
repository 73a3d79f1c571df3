"""Shared fixtures: the default rubric, and the bundled submissions graded
once per test session (grading is the slow part, so tests share it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader.rubric import Rubric, load_rubric

ROOT = Path(__file__).resolve().parent.parent
SUBMISSIONS = ROOT / "submissions"


@pytest.fixture(scope="session")
def rubric() -> Rubric:
    return load_rubric()


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the reference-score cache out of the user's home."""
    os.environ["GRADER_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def reference(rubric: Rubric):
    from grader.grade import reference_scores

    return reference_scores(rubric)


@pytest.fixture(scope="session")
def bundled_results(rubric: Rubric, reference, tmp_path_factory: pytest.TempPathFactory):
    """Every bundled submission graded by the real pipeline, keyed by name."""
    from grader.batch import discover, grade_class

    out = tmp_path_factory.mktemp("bundled")
    entries = discover(SUBMISSIONS)
    results = grade_class(entries, out, rubric_path=None, reference=reference, workers=2)
    return {r.submission: r for r in results}, out
