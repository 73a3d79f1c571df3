"""The container contract: how hyperparameters and channels reach a script."""

from pathlib import Path

from grader import sm_contract


def test_cmd_args_are_sorted_with_short_and_mapping_forms():
    args = sm_contract.to_cmd_args(
        {"num-round": 100, "k": 3, "eta": 0.2, "extra": {"b": 2, "a": 1}, "flag": True}
    )
    assert args == [
        "--eta", "0.2",
        "--extra", "a=1,b=2",
        "--flag", "True",
        "-k", "3",
        "--num-round", "100",
    ]


def test_framework_json_encoding_and_plain_strings_both_decode():
    decoded = sm_contract.decode_hyperparameters(
        {"max-depth": "5", "objective": '"binary:logistic"', "plain": "binary:logistic"}
    )
    assert decoded == {"max-depth": 5, "objective": "binary:logistic", "plain": "binary:logistic"}


def test_reserved_keys_are_split_off():
    user, reserved = sm_contract.split_reserved(
        {"eta": 0.2, "sagemaker_program": "train.py", "sagemaker_region": "us-east-1"}
    )
    assert user == {"eta": 0.2}
    assert set(reserved) == {"sagemaker_program", "sagemaker_region"}


def test_environment_names_every_channel_and_hyperparameter(tmp_path: Path):
    paths = sm_contract.JobPaths(tmp_path / "opt_ml")
    spec = sm_contract.ContainerSpec(
        job_name="job-1",
        paths=paths,
        hyperparameters={"max-depth": 4, "sagemaker_program": "train.py"},
        input_data_config={"train": {"ContentType": "text/csv"}, "validation": {}},
        instance_type="ml.m5.xlarge",
        entry_point="train.py",
        num_cpus=2,
    )
    env = spec.environment()
    assert env["SM_MODEL_DIR"] == str(tmp_path / "opt_ml" / "model")
    assert env["SM_CHANNEL_TRAIN"] == str(tmp_path / "opt_ml" / "input" / "data" / "train")
    assert env["SM_CHANNELS"] == '["train","validation"]'
    assert env["SM_HPS"] == '{"max-depth":4}'
    assert env["SM_HP_MAX-DEPTH"] == "4"
    assert env["SM_USER_ARGS"] == '["--max-depth","4"]'
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_HOSTS"] == '["algo-1"]'
    assert env["SM_NUM_CPUS"] == "2"
    assert env["SM_NUM_GPUS"] == "0"
    assert env["SM_MODULE_NAME"] == "train"
    assert env["SM_OUTPUT_DATA_DIR"] == str(tmp_path / "opt_ml" / "output" / "data")
    assert '"job_name":"job-1"' in env["SM_TRAINING_ENV"]
    assert "SM_HP_SAGEMAKER_PROGRAM" not in env
