"""Rubric validation: a bad rubric is one line naming the field."""

from pathlib import Path

import pytest

from grader.errors import RubricError
from grader.rubric import load_rubric


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rubric.yaml"
    path.write_text(text)
    return path


def test_default_rubric_totals_100_points(rubric):
    assert rubric.max_score == 100
    assert [c.id for c in rubric.criteria][0] == "notebook_runs"
    assert rubric.criterion("auc_threshold").hidden is True


def test_public_rubric_drops_hidden_criteria(rubric):
    assert "auc_threshold" not in [c.id for c in rubric.public().criteria]


def test_unknown_criterion_names_the_field(tmp_path):
    path = _write(tmp_path, "name: a\ntitle: t\ncriteria:\n  - {id: vibes, title: x, points: 1}\n")
    with pytest.raises(RubricError) as caught:
        load_rubric(path)
    assert str(caught.value).startswith(f"rubric {path}: criteria.0.id: Value error, unknown")


def test_negative_points_and_typo_in_field_are_rejected(tmp_path):
    path = _write(
        tmp_path,
        "name: a\ntitle: t\ncriteria:\n  - {id: notebook_runs, title: x, points: -1}\n",
    )
    with pytest.raises(RubricError, match=r"criteria\.0\.points: Input should be greater"):
        load_rubric(path)
    path = _write(
        tmp_path,
        "name: a\ntitle: t\ncriteria:\n  - {id: notebook_runs, title: x, points: 1}\n"
        "timeouts: {cell_secnds: 3}\n",
    )
    with pytest.raises(RubricError, match=r"timeouts\.cell_secnds: Extra inputs"):
        load_rubric(path)


def test_holdout_can_never_be_given_to_students(tmp_path):
    path = _write(
        tmp_path,
        "name: a\ntitle: t\ncriteria:\n  - {id: notebook_runs, title: x, points: 1}\n"
        "fixtures: {files: {holdout: data/holdout.csv}}\n",
    )
    with pytest.raises(RubricError, match="split 'holdout' cannot be given to students"):
        load_rubric(path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(RubricError, match="does not exist"):
        load_rubric(tmp_path / "absent.yaml")
    with pytest.raises(RubricError, match="is not valid YAML at line 1"):
        load_rubric(_write(tmp_path, "name: [unclosed"))
