"""Every bundled example, graded by the whole pipeline, gets exactly the
verdicts its expected.yaml declares, and its messages name the cause."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import SUBMISSIONS
from grader.commands import compare

EXAMPLES = sorted(p.name for p in SUBMISSIONS.iterdir() if (p / "expected.yaml").is_file())


@pytest.mark.parametrize("example", EXAMPLES)
def test_verdicts_match_expected(example, bundled_results):
    results, _ = bundled_results
    expected = yaml.safe_load((SUBMISSIONS / example / "expected.yaml").read_text())
    assert compare(results[example], expected) == []


def test_reference_scores_full_marks_and_matches_its_own_auc(bundled_results, reference):
    results, _ = bundled_results
    result = results["reference"]
    assert result.score == result.max_score == 100
    assert result.student.holdout_auc == pytest.approx(reference.holdout_auc)
    assert reference.holdout_auc > 0.95


def test_outputs_are_written_for_each_submission(bundled_results):
    results, out = bundled_results
    for name in results:
        folder = out / name
        assert {p.name for p in folder.iterdir()} >= {
            "report.html", "results.json", "executed.ipynb"
        }
        stored = json.loads((folder / "results.json").read_text())
        assert set(stored) >= {"submission", "score", "max_score", "criteria", "reference", "jobs"}
        for criterion in stored["criteria"]:
            assert set(criterion) >= {"id", "status", "points", "max_points", "message"}
        for job in stored["jobs"]:
            assert set(job) >= {
                "name", "status", "failure_reason", "model_data", "hyperparameters", "channels"
            }


def test_channel_mismatch_is_one_root_cause(bundled_results):
    results, _ = bundled_results
    result = results["channel_mismatch"]
    channels = result.verdict("channels_matched")
    assert channels.caused_by is None
    assert channels.cause.startswith("train.py reads SM_CHANNEL_TRAIN, but fit() passed no "
                                     "channel named 'train' (it passed 'training', 'validation')")
    assert result.verdict("job_completed").caused_by == "channels_matched"
    assert result.verdict("notebook_runs").caused_by == "job_completed"
    assert result.verdict("artifact_saved").status.value == "skipped"


def test_executed_notebook_keeps_outputs_and_injected_parameters(bundled_results):
    import nbformat

    _, out = bundled_results
    notebook = nbformat.read(out / "reference" / "executed.ipynb", as_version=4)
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert "s3_train_data = 's3://sagemaker-us-east-1-123456789012/assignment2/train/'" in (
        injected[0].source
    )
    index = notebook.cells.index(injected[0])
    assert "parameters" in notebook.cells[index - 1].metadata.get("tags", [])
    assert any(c.get("outputs") for c in notebook.cells if c.cell_type == "code")


def test_notebook_plots_are_drawn_inline(bundled_results):
    """matplotlib is imported before the kernel exists, yet figures still
    reach the notebook through ipykernel's inline backend."""
    import nbformat

    _, out = bundled_results
    notebook = nbformat.read(out / "reference" / "executed.ipynb", as_version=4)
    plot_cell = next(c for c in notebook.cells if "plt.subplots" in c.source)
    kinds = [o.output_type for o in plot_cell.outputs]
    assert kinds == ["display_data"]
    assert "image/png" in plot_cell.outputs[0].data
