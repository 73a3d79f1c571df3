"""Runs inside the student environment: drives the real SageMaker SDK and
prints what it observed as one JSON line."""
import json
import sys
import tarfile
import tempfile
import time

import boto3
import sagemaker
from sagemaker import TrainingJobAnalytics
from sagemaker.inputs import TrainingInput

scenario, source = sys.argv[1], sys.argv[2]
session = sagemaker.Session()
role = sagemaker.get_execution_role()
bucket = session.default_bucket()
out = {"role": role, "bucket": bucket}
prefix = f"s3://{bucket}/assignment2"
inputs = {
    "train": TrainingInput(f"{prefix}/train/", content_type="text/csv"),
    "validation": TrainingInput(f"{prefix}/validation/", content_type="text/csv"),
}
metrics = [{"Name": "validation:auc", "Regex": r"validation-auc:([0-9.]+)"},
           {"Name": "train:auc", "Regex": r"train-auc:([0-9.]+)"}]
common = dict(role=role, instance_count=1, instance_type="ml.m5.xlarge",
              metric_definitions=metrics, source_dir=source)
hps = {"max-depth": 3, "eta": 0.3, "num-round": 12, "k": 7}

if scenario == "upload":
    uri = session.upload_data(__file__, bucket=bucket, key_prefix="uploads")
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="uploads/")
    out.update(uri=uri, keys=[o["Key"] for o in listed["Contents"]])
    print(json.dumps(out))
    sys.exit(0)

if scenario == "xgboost":
    from sagemaker.xgboost import XGBoost

    estimator = XGBoost(entry_point="train_ok.py", framework_version="1.7-1",
                        hyperparameters=hps, **common)
elif scenario in ("pytorch", "pytorch-no-requirements"):
    from sagemaker.pytorch import PyTorch

    estimator = PyTorch(entry_point="train_ok.py", framework_version="2.1", py_version="py310",
                        hyperparameters=hps, **common)
elif scenario == "generic":
    from sagemaker.estimator import Estimator

    image = sagemaker.image_uris.retrieve("xgboost", session.boto_region_name, "1.7-1")
    estimator = Estimator(image_uri=image, entry_point="train_ok.py", hyperparameters=hps,
                          **common)
elif scenario == "fails":
    from sagemaker.xgboost import XGBoost

    estimator = XGBoost(entry_point="train_fails.py", framework_version="1.7-1", **common)
elif scenario == "timeout":
    from sagemaker.xgboost import XGBoost

    estimator = XGBoost(entry_point="train_ok.py", framework_version="1.7-1",
                        hyperparameters={**hps, "sleep": 60}, max_run=3, **common)
elif scenario == "stubborn":
    from sagemaker.xgboost import XGBoost

    estimator = XGBoost(entry_point="train_ok.py", framework_version="1.7-1",
                        hyperparameters={**hps, "sleep": 60, "ignore-sigterm": 1},
                        max_run=3, **common)
elif scenario == "local":
    from sagemaker.xgboost import XGBoost

    estimator = XGBoost(entry_point="train_ok.py", framework_version="1.7-1",
                        hyperparameters=hps, **{**common, "instance_type": "local"})
else:
    raise SystemExit(f"unknown scenario {scenario}")

started = time.monotonic()
try:
    estimator.fit(inputs)
except Exception as exc:
    out["error"] = f"{type(exc).__name__}: {exc}"
out["fit_seconds"] = time.monotonic() - started
job = estimator.latest_training_job
description = job.describe()
out["status"] = description["TrainingJobStatus"]
out["secondary"] = description.get("SecondaryStatus")
out["failure_reason"] = description.get("FailureReason")
out["metric_definitions"] = description["AlgorithmSpecification"].get("MetricDefinitions")
out["final_metrics"] = sorted(m["MetricName"] for m in description.get("FinalMetricDataList") or [])
if out["status"] == "Completed":
    out["model_data"] = estimator.model_data
    s3 = boto3.client("s3")
    key = estimator.model_data.split(f"s3://{bucket}/", 1)[1]
    with tempfile.TemporaryDirectory() as scratch:
        s3.download_file(bucket, key, f"{scratch}/model.tar.gz")
        with tarfile.open(f"{scratch}/model.tar.gz") as tar:
            out["model_files"] = tar.getnames()
        output_key = key.replace("model.tar.gz", "output.tar.gz")
        s3.download_file(bucket, output_key, f"{scratch}/output.tar.gz")
        with tarfile.open(f"{scratch}/output.tar.gz") as tar:
            tar.extractall(scratch, filter="data")
        with open(f"{scratch}/seen.json") as handle:
            out["seen"] = json.load(handle)
    if scenario != "local":
        frame = TrainingJobAnalytics(job.name).dataframe()
        out["analytics_metrics"] = sorted(set(frame["metric_name"]))
print(json.dumps(out, default=str))
