"""Students' self-check: the public verdicts, the right exit code, and no
trace of a hidden criterion or the holdout in its output or report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import SUBMISSIONS


@pytest.mark.parametrize(("example", "exit_code"), [("reference", 0), ("channel_mismatch", 1)])
def test_check_prints_public_verdicts_only(tmp_path, example, exit_code):
    submission = tmp_path / example
    shutil.copytree(SUBMISSIONS / example, submission)
    completed = subprocess.run(
        [sys.executable, "-m", "grader.cli", "check", str(submission)],
        capture_output=True, text=True, timeout=600, env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == exit_code, completed.stderr
    assert "auc_threshold" not in completed.stdout
    assert "\x1b[" not in completed.stdout  # no colour when piped
    report = submission / ".grader-report"
    html = (report / "report.html").read_text()
    stored = json.loads((report / "results.json").read_text())
    assert "auc_threshold" not in html and "Holdout" not in html
    assert [c["id"] for c in stored["criteria"]] == [
        "notebook_runs", "job_completed", "artifact_saved", "channels_matched",
        "hyperparameters_honoured", "metrics_logged", "model_loads", "model_learning",
    ]
    assert stored["student"]["holdout_auc"] is None
    if exit_code == 0:
        assert f"{example}: 85 / 85 points" in completed.stdout
    else:
        assert "✗ channels_matched" in completed.stdout
        assert "cause: train.py reads SM_CHANNEL_TRAIN" in completed.stdout
