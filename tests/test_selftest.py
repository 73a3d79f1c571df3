"""Course CI: selftest passes as shipped and fails, naming the case, when an
expected verdict drifts."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import yaml

from conftest import SUBMISSIONS


def test_selftest_names_the_drifted_case(tmp_path):
    examples = tmp_path / "examples"
    shutil.copytree(SUBMISSIONS / "no_metric_definitions", examples / "no_metrics")
    expected_file = examples / "no_metrics" / "expected.yaml"
    expected = yaml.safe_load(expected_file.read_text())
    expected["verdicts"]["metrics_logged"] = "passed"  # wrong on purpose
    expected_file.write_text(yaml.safe_dump(expected))

    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "grader.cli", "selftest", "--examples", str(examples),
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 1, completed.stderr
    assert "ok reference_solution" in completed.stdout
    assert "DRIFT no_metrics" in completed.stdout
    assert "metrics_logged: expected passed, got failed" in completed.stdout
    suite = ET.parse(out / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    failing = [case.get("name") for case in suite if case.find("failure") is not None]
    assert failing == ["no_metrics"]
