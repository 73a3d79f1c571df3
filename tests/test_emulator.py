"""The emulated AWS and training jobs, driven through the real SageMaker SDK
in a separate interpreter with exactly the environment a notebook gets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.data import load_splits
from grader.emulator import ROLE_ARN, student_environment
from grader.grade import emulator_for

SCRIPTS = Path(__file__).parent / "sdk_scripts"
BUCKET = "sagemaker-us-east-1-123456789012"


@pytest.fixture(scope="module")
def emulator(rubric, tmp_path_factory):
    work = tmp_path_factory.mktemp("emulator")
    with emulator_for(rubric, work) as running:
        splits = load_splits(rubric.fixtures.dataset)
        for split, uri in rubric.fixtures.s3.items():
            running.seed_object(uri, splits.csv(split))
        yield running


def _drive(emulator, tmp_path: Path, scenario: str, requirements: str | None = None) -> dict:
    source = tmp_path / "src"
    source.mkdir(parents=True)
    for script in ("train_ok.py", "train_fails.py"):
        shutil.copy(SCRIPTS / script, source / script)
    if requirements is not None:
        (source / "requirements.txt").write_text(requirements)
    env = student_environment(emulator, tmp_path / "home")
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / "client.py"), scenario, str(source)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    last = completed.stdout.strip().splitlines()[-1]
    # the SDK prints progress dots without a newline before the JSON
    return json.loads(last[last.index("{"):])


def _run(emulator, name_prefix: str):
    runs = [r for r in emulator.training.runs.values() if r.name.startswith(name_prefix)]
    return runs[-1]


def test_session_role_and_upload_reach_the_emulator(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "upload")
    assert out["role"] == ROLE_ARN == "arn:aws:iam::123456789012:role/SageMakerRole"
    assert out["bucket"] == BUCKET
    assert out["uri"] == f"s3://{BUCKET}/uploads/client.py"
    assert out["keys"] == ["uploads/client.py"]


def test_xgboost_estimator_trains_for_real(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "xgboost")
    assert out["status"] == "Completed"
    assert out["model_files"] == ["xgboost-model.json"]
    assert out["model_data"].startswith(f"s3://{BUCKET}/sagemaker-xgboost-")
    assert out["model_data"].endswith("/output/model.tar.gz")
    # the request's metric definitions survive, unlike stock moto's rewrite
    assert [m["Name"] for m in out["metric_definitions"]] == ["validation:auc", "train:auc"]
    assert out["final_metrics"] == ["train:auc", "validation:auc"]
    assert out["analytics_metrics"] == ["train:auc", "validation:auc"]
    seen = out["seen"]
    assert seen["argv"] == ["--eta", "0.3", "-k", "7", "--max-depth", "3", "--num-round", "12"]
    assert seen["SM_CHANNELS"] == '["train","validation"]'
    assert seen["SM_HP_MAX-DEPTH"] == "3"
    assert seen["SM_CURRENT_HOST"] == "algo-1"
    assert seen["SM_MODULE_NAME"] == "train_ok"
    # polling on the accelerated clock: fit() returns soon after the job ends
    run = _run(emulator, "sagemaker-xgboost")
    assert out["fit_seconds"] < run.duration + 5
    assert any("validation-auc" in line for line in run.log_lines)
    assert len(run.metric_values["validation:auc"]) == 12


def test_cloudwatch_log_stream_follows_the_service_naming(emulator, tmp_path):
    _drive(emulator, tmp_path, "xgboost")
    run = _run(emulator, "sagemaker-xgboost")
    logs = emulator.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=run.name + "/"
    )["logStreams"]
    assert [s["logStreamName"] for s in streams] == [f"{run.name}/algo-1-{int(run.started)}"]


def test_pytorch_estimator_needs_requirements_for_xgboost(emulator, tmp_path):
    failed = _drive(emulator, tmp_path / "a", "pytorch-no-requirements")
    assert failed["status"] == "Failed"
    assert failed["failure_reason"].startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n")
    assert "ErrorMessage \"ModuleNotFoundError: No module named 'xgboost'\"" in failed["failure_reason"]
    run = _run(emulator, "pytorch-training")
    assert run.image.endswith("/pytorch-training:2.1-cpu-py310")
    assert run.observations["blocked_imports"] == ["xgboost"]

    passed = _drive(emulator, tmp_path / "b", "pytorch", requirements="xgboost>=1.0\n")
    assert passed["status"] == "Completed"


def test_requirement_that_cannot_be_installed_fails_like_pip(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "pytorch", requirements="no-such-package-xyz==1.0\n")
    assert out["status"] == "Failed"
    assert "InstallRequirementsError" in out["failure_reason"]
    assert "no-such-package-xyz==1.0" in out["failure_reason"]


def test_generic_estimator_with_entry_point(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "generic")
    assert out["status"] == "Completed"
    assert out["seen"]["argv"] == ["--eta", "0.3", "-k", "7", "--max-depth", "3", "--num-round", "12"]


def test_failed_job_raises_in_the_notebook_with_the_service_reason(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "fails")
    assert out["status"] == "Failed"
    assert out["error"].startswith("UnexpectedStatusException: Error for Training job")
    reason = out["failure_reason"]
    assert reason.startswith("AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n")
    # os.listdir(None) lists the working directory: the code dir's two scripts
    assert 'ErrorMessage "ValueError: could not parse 2 files"' in reason
    assert 'Command "' in reason and '", exit code: 1' in reason


def test_job_past_max_run_is_stopped(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "timeout")
    assert out["status"] == "Stopped"
    assert out["secondary"] == "MaxRuntimeExceeded"
    assert out["failure_reason"].startswith("MaxRuntimeExceeded: Training job stopped after 3 seconds")
    assert out["fit_seconds"] < 20
    # SIGTERM first, as the service does: the script's record survives it.
    run = _run(emulator, "sagemaker-xgboost")
    assert run.observations["argparse"]["namespace"]["sleep"] == 60.0


def test_job_that_ignores_sigterm_is_killed_after_the_grace_period(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "stubborn")
    assert out["status"] == "Stopped"
    assert out["secondary"] == "MaxRuntimeExceeded"
    assert out["fit_seconds"] < 25
    # Killed outright, it could not write what it did.
    assert _run(emulator, "sagemaker-xgboost").observations == {}


def test_local_mode_runs_through_the_same_runner(emulator, tmp_path):
    out = _drive(emulator, tmp_path, "local")
    assert out["status"] == "Completed"
    assert out["model_files"] == ["xgboost-model.json"]
    run = _run(emulator, "sagemaker-xgboost")
    assert run.local_mode is True
