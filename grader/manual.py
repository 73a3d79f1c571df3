"""Criteria a person scores: the assignment's "understanding" questions.

The rubric names each item and where its answer lives in the notebook (a
cell tag, or a markdown heading matching a pattern). The grader finds the
answer and shows it in the instructor's report; an instructor's scores file
then folds points and comments into the totals and every export.

A scores file is YAML, by student id then item id::

    alice:
      explain_estimators: {points: 4, comment: "Clear on Framework vs Estimator."}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import yaml

from grader.errors import GraderError
from grader.results import GradeResult, ManualItem
from grader.rubric import Rubric

_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*)$")


def find_answers(notebook: nbformat.NotebookNode, rubric: Rubric) -> list[ManualItem]:
    """Each manual item with the markdown the student wrote for it."""
    items = []
    cells = notebook.cells
    for spec in rubric.manual:
        answer, location = "", None
        for index, cell in enumerate(cells):
            if cell.cell_type != "markdown":
                continue
            tags = cell.get("metadata", {}).get("tags", [])
            first_line = (cell.source.strip().splitlines() or [""])[0]
            heading = _HEADING.match(first_line)
            tagged = spec.tag is not None and spec.tag in tags
            titled = spec.heading is not None and heading is not None and re.search(
                spec.heading, heading.group(2), re.IGNORECASE
            )
            if tagged or titled:
                answer = _section(cells, index)
                location = f"notebook cell {index + 1}"
                break
        items.append(
            ManualItem(id=spec.id, title=spec.title, max_points=spec.points,
                       answer=answer, location=location)
        )
    return items


def _section(cells: list[Any], start: int) -> str:
    """The answer cell and the markdown that follows it, up to the next
    heading of the same or a higher level, or the next code cell."""
    first = cells[start].source
    match = _HEADING.match((first.strip().splitlines() or [""])[0])
    level = len(match.group(1)) if match else 7
    parts = [first]
    for cell in cells[start + 1:]:
        if cell.cell_type != "markdown":
            break
        head = _HEADING.match((cell.source.strip().splitlines() or [""])[0])
        if head and len(head.group(1)) <= level:
            break
        parts.append(cell.source)
    return "\n\n".join(parts).strip()


def load_scores(path: Path, rubric: Rubric) -> dict[str, dict[str, dict[str, Any]]]:
    """Read and check an instructor's scores file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise GraderError(f"manual scores file {path} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise GraderError(f"manual scores file {path} cannot be read: {exc}") from None
    if not isinstance(raw, dict):
        raise GraderError(f"{path}: expected a mapping of student id to item scores")
    known = {item.id: item for item in rubric.manual}
    scores: dict[str, dict[str, dict[str, Any]]] = {}
    for student, items in raw.items():
        if not isinstance(items, dict):
            raise GraderError(f"{path}: {student}: expected a mapping of item id to a score")
        scores[str(student)] = {}
        for item_id, entry in items.items():
            if item_id not in known:
                raise GraderError(
                    f"{path}: {student}: unknown manual item {item_id!r}; the rubric "
                    f"has {', '.join(known) or 'none'}"
                )
            entry = entry if isinstance(entry, dict) else {"points": entry}
            points = entry.get("points")
            if not isinstance(points, (int, float)) or not 0 <= points <= known[item_id].points:
                raise GraderError(
                    f"{path}: {student}: {item_id}: points must be a number from 0 to "
                    f"{known[item_id].points:g}"
                )
            scores[str(student)][item_id] = {
                "points": float(points), "comment": str(entry.get("comment") or "")
            }
    return scores


def apply_scores(result: GradeResult, scores: dict[str, dict[str, Any]]) -> GradeResult:
    """Fold a student's manual scores into the result's totals.

    Automated points are recomputed from the criteria, so applying the same
    scores twice (a resumed batch) changes nothing.
    """
    if result.status == "error":
        return result
    automated = sum(v.points for v in result.criteria)
    automated_max = sum(v.max_points for v in result.criteria)
    for item in result.manual:
        given = scores.get(item.id)
        if given is not None:
            item.points = given["points"]
            item.comment = given["comment"]
    scored = [item for item in result.manual if item.points is not None]
    result.score = automated + sum(item.points or 0.0 for item in scored)
    result.max_score = automated_max + sum(item.max_points for item in scored)
    return result
