"""The SageMaker training container contract, in one place.

This module alone spells out the ``/opt/ml`` layout, the ``SM_*``
environment variables and how hyperparameters become command-line
arguments, following the SageMaker training toolkit. Everything else in the
grader asks this module rather than hard-coding a path or a variable name.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CURRENT_HOST = "algo-1"
#: Where the container mounts the job's tree; a confined job sees it there too.
CONTAINER_ROOT = "/opt/ml"
RESERVED_PREFIX = "sagemaker_"
PROGRAM_KEY = "sagemaker_program"
SUBMIT_DIRECTORY_KEY = "sagemaker_submit_directory"

#: The CloudWatch names the service writes a training job's logs and metrics under.
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRIC_NAMESPACE = "/aws/sagemaker/TrainingJobs"


@dataclass(frozen=True)
class JobPaths:
    """The directories of one job, shaped like the container's ``/opt/ml``."""

    root: Path

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def config_dir(self) -> Path:
        return self.input_dir / "config"

    @property
    def data_dir(self) -> Path:
        return self.input_dir / "data"

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.output_dir / "data"

    @property
    def intermediate_dir(self) -> Path:
        return self.output_dir / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    def create(self, channels: list[str]) -> None:
        for directory in (
            self.config_dir,
            self.code_dir,
            self.model_dir,
            self.output_data_dir,
            self.intermediate_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        for channel in channels:
            self.channel_dir(channel).mkdir(parents=True, exist_ok=True)


def decode_hyperparameters(raw: dict[str, str]) -> dict[str, Any]:
    """Undo the SDK's encoding: framework estimators JSON-encode each value,
    the generic Estimator sends plain strings; keep whichever decodes."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def split_reserved(hyperparameters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the user's hyperparameters from the SDK's ``sagemaker_*`` keys."""
    user = {k: v for k, v in hyperparameters.items() if not k.startswith(RESERVED_PREFIX)}
    reserved = {k: v for k, v in hyperparameters.items() if k.startswith(RESERVED_PREFIX)}
    return user, reserved


def _as_text(value: Any) -> str:
    return "" if value is None else str(value)


def to_cmd_args(hyperparameters: dict[str, Any]) -> list[str]:
    """Hyperparameters as the toolkit passes them to the entry point: sorted
    by key, ``--key value``, a one-letter key as ``-k value``, a mapping as
    ``k=v,k2=v2``."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        name = str(key)
        flag = f"--{name}" if len(name) > 1 else f"-{name}"
        value = hyperparameters[key]
        if isinstance(value, dict):
            text = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        else:
            text = _as_text(value)
        args.extend([flag, text])
    return args


def to_env_vars(mapping: dict[str, Any]) -> dict[str, str]:
    """``SM_``-prefixed, upper-cased names; strings as they are, other values
    as compact JSON, as the toolkit writes them."""

    def encode(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"))

    return {f"SM_{str(key).upper()}": encode(value) for key, value in mapping.items()}


@dataclass(frozen=True)
class ContainerSpec:
    """What the service tells the container about one job."""

    job_name: str
    paths: JobPaths
    hyperparameters: dict[str, Any]
    input_data_config: dict[str, dict[str, str]]
    instance_type: str
    entry_point: str
    num_cpus: int
    num_gpus: int = 0

    @property
    def channels(self) -> list[str]:
        return sorted(self.input_data_config)

    @property
    def resource_config(self) -> dict[str, Any]:
        return {
            "current_host": CURRENT_HOST,
            "current_instance_type": self.instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": [CURRENT_HOST],
            "instance_groups": [
                {
                    "instance_group_name": "homogeneousCluster",
                    "instance_type": self.instance_type,
                    "hosts": [CURRENT_HOST],
                }
            ],
            "network_interface_name": "eth0",
        }

    @property
    def module_name(self) -> str:
        return Path(self.entry_point).stem

    def write_config(self, raw_hyperparameters: dict[str, str]) -> None:
        """The three files the service writes under ``input/config``."""
        config = self.paths.config_dir
        (config / "hyperparameters.json").write_text(json.dumps(raw_hyperparameters))
        (config / "inputdataconfig.json").write_text(json.dumps(self.input_data_config))
        (config / "resourceconfig.json").write_text(json.dumps(self.resource_config))

    def training_env(self) -> dict[str, Any]:
        paths = self.paths
        user_hps, _ = split_reserved(self.hyperparameters)
        return {
            "additional_framework_parameters": {},
            "channel_input_dirs": {c: str(paths.channel_dir(c)) for c in self.channels},
            "current_host": CURRENT_HOST,
            "current_instance_group": "homogeneousCluster",
            "current_instance_type": self.instance_type,
            "distribution_hosts": [],
            "framework_module": None,
            "hosts": [CURRENT_HOST],
            "hyperparameters": user_hps,
            "input_config_dir": str(paths.config_dir),
            "input_data_config": self.input_data_config,
            "input_dir": str(paths.input_dir),
            "is_master": True,
            "job_name": self.job_name,
            "log_level": 20,
            "master_hostname": CURRENT_HOST,
            "model_dir": str(paths.model_dir),
            "module_dir": str(paths.code_dir),
            "module_name": self.module_name,
            "network_interface_name": "eth0",
            "num_cpus": self.num_cpus,
            "num_gpus": self.num_gpus,
            "num_neurons": 0,
            "output_data_dir": str(paths.output_data_dir),
            "output_dir": str(paths.output_dir),
            "output_intermediate_dir": str(paths.intermediate_dir),
            "resource_config": self.resource_config,
            "user_entry_point": self.entry_point,
        }

    def environment(self) -> dict[str, str]:
        """Every ``SM_*`` variable the toolkit sets before running the entry point."""
        training_env = self.training_env()
        user_hps = training_env["hyperparameters"]
        env = to_env_vars(
            {
                "hosts": training_env["hosts"],
                "network_interface_name": "eth0",
                "hps": user_hps,
                "resource_config": training_env["resource_config"],
                "input_data_config": self.input_data_config,
                "output_data_dir": training_env["output_data_dir"],
                "channels": self.channels,
                "current_host": CURRENT_HOST,
                "current_instance_type": self.instance_type,
                "current_instance_group": "homogeneousCluster",
                "module_name": self.module_name,
                "log_level": 20,
                "framework_module": "",
                "input_dir": training_env["input_dir"],
                "input_config_dir": training_env["input_config_dir"],
                "output_dir": training_env["output_dir"],
                "num_cpus": self.num_cpus,
                "num_gpus": self.num_gpus,
                "num_neurons": 0,
                "model_dir": training_env["model_dir"],
                "module_dir": training_env["module_dir"],
                "training_env": training_env,
                "user_args": to_cmd_args(user_hps),
                "output_intermediate_dir": training_env["output_intermediate_dir"],
                "user_entry_point": self.entry_point,
                "is_master": True,
                "master_hostname": CURRENT_HOST,
            }
        )
        for channel in self.channels:
            env[f"SM_CHANNEL_{channel.upper()}"] = str(self.paths.channel_dir(channel))
        for key, value in user_hps.items():
            env.update(to_env_vars({f"hp_{key}": value}))
        return env


def channel_variable(channel: str) -> str:
    """The variable a script reads to find a channel's files."""
    return f"SM_CHANNEL_{channel.upper()}"


def log_stream_name(job_name: str, started_epoch: int) -> str:
    return f"{job_name}/{CURRENT_HOST}-{started_epoch}"


def default_cpu_count() -> int:
    return os.cpu_count() or 1
