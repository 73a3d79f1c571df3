"""One common Assignment 2 mistake per fixture, graded by the whole pipeline:
each gets the verdicts its expected.yaml declares, its messages name the
cause (the variable, the column, the file), and where it says so, the
verdict points at the line of the notebook or script to change."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grader.commands import compare

MISTAKES = Path(__file__).resolve().parent / "fixtures" / "mistakes"
FIXTURES = sorted(p.name for p in MISTAKES.iterdir() if (p / "expected.yaml").is_file())


@pytest.fixture(scope="session")
def mistake_results(reference, tmp_path_factory: pytest.TempPathFactory):
    """Every fixture graded once per session, keyed by its folder name."""
    from grader.batch import discover, grade_class

    out = tmp_path_factory.mktemp("mistakes")
    results = grade_class(
        discover(MISTAKES), out, rubric_path=None, reference=reference, workers=2
    )
    return {r.submission: r for r in results}


def _expected(fixture: str) -> dict:
    return yaml.safe_load((MISTAKES / fixture / "expected.yaml").read_text())


@pytest.mark.parametrize("fixture", FIXTURES)
def test_mistake_is_named(fixture, mistake_results):
    result = mistake_results[fixture]
    expected = _expected(fixture)
    problems = compare(result, expected)
    for criterion, location in (expected.get("locations") or {}).items():
        verdict = result.verdict(criterion)
        actual = verdict.location if verdict else None
        if actual != location:
            problems.append(f"{criterion}: location {actual!r}, expected {location!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_consequences_point_at_the_root(fixture, mistake_results):
    """A criterion failed because of another names a criterion that failed."""
    result = mistake_results[fixture]
    statuses = {v.id: v.status.value for v in result.criteria}
    for verdict in result.criteria:
        if verdict.caused_by:
            assert statuses.get(verdict.caused_by) == "failed", (verdict.id, verdict.caused_by)
