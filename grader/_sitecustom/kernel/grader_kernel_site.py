"""Installed first in the notebook's kernel (and any Python it starts): it
points AWS at the grader's emulator and keeps everything on this machine.

- Every botocore client talks to the emulator. ``AWS_ENDPOINT_URL`` covers
  most clients, but the SageMaker SDK gives its STS clients an explicit
  regional endpoint, which wins over the variable; such AWS endpoints are
  rewritten to the emulator's.
- Connections to anything but loopback are refused, so no telemetry or
  other call can leave the machine.
- The SDK's polling waits (5 s before the first describe, 10 s between
  log reads, 30 s between status checks) run on an accelerated clock, so
  ``fit()`` returns about as soon as the emulated job ends.
- The SDK validates its defaults config against a large JSON schema on
  every lookup (about half a second each here); a config that passed once
  is not validated again.
- Local mode (``instance_type='local'``) needs Docker; its training calls
  are sent to the emulator's CreateTrainingJob, so the same runner trains.
"""

import os
import socket
import sys
import time as _real_time

import grader_import_hooks

_EMULATOR = ""
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "", None}
_CLOCK_SPEEDUP = float(os.environ.get("GRADER_POLL_SPEEDUP", "100"))


def _is_aws_endpoint(url):
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".aws"))


def _redirect_clients(botocore_session_module):
    create_client = botocore_session_module.Session.create_client

    def create_emulated_client(self, service_name, *args, **kwargs):
        endpoint = kwargs.get("endpoint_url")
        if endpoint and _is_aws_endpoint(endpoint):
            kwargs["endpoint_url"] = _EMULATOR
        return create_client(self, service_name, *args, **kwargs)

    botocore_session_module.Session.create_client = create_emulated_client


def _loopback_only(event, args):
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and address and address[0] not in _LOCAL_HOSTS:
            raise ConnectionRefusedError(
                f"the grader runs offline: connection to {address[0]} refused"
            )
    elif event == "socket.getaddrinfo":
        if args[0] not in _LOCAL_HOSTS and not _is_numeric_loopback(args[0]):
            raise socket.gaierror(socket.EAI_NONAME, f"offline: cannot resolve {args[0]}")


def _is_numeric_loopback(host):
    return isinstance(host, str) and host.startswith("127.")


class _AcceleratedClock:
    """The ``time`` module as the SDK's waiters see it: sleeps are short and
    the clock jumps ahead by the time they would have taken."""

    def __init__(self):
        self._offset = 0.0

    def sleep(self, seconds):
        if seconds > 0:
            _real_time.sleep(seconds / _CLOCK_SPEEDUP)
            self._offset += seconds - seconds / _CLOCK_SPEEDUP

    def time(self):
        return _real_time.time() + self._offset

    def __getattr__(self, name):
        return getattr(_real_time, name)


def _accelerate_polling(module):
    module.time = _AcceleratedClock()


def _validate_configs_once(config_module):
    import json

    validate = config_module.validate_sagemaker_config
    valid = set()

    def validate_once(sagemaker_config=None):
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in valid:
            validate(sagemaker_config)
            valid.add(key)

    # Modules imported before this ran hold their own reference to it.
    for name in ("sagemaker.config.config", "sagemaker.config", "sagemaker.session",
                 "sagemaker.utils", "sagemaker.local.local_session"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "validate_sagemaker_config"):
            module.validate_sagemaker_config = validate_once
    config_module.validate_sagemaker_config = validate_once


def _emulate_local_mode(local_session_module):
    """Train local-mode jobs on the emulator rather than in Docker."""
    import boto3

    client_class = local_session_module.LocalSagemakerClient
    tag = {"Key": "grader:local-mode", "Value": "true"}

    def emulator_client():
        return boto3.client("sagemaker", endpoint_url=_EMULATOR)

    def create_training_job(self, TrainingJobName, AlgorithmSpecification, OutputDataConfig,
                            ResourceConfig, InputDataConfig=None, Environment=None, **kwargs):
        request = dict(
            TrainingJobName=TrainingJobName,
            AlgorithmSpecification=AlgorithmSpecification,
            OutputDataConfig=OutputDataConfig,
            ResourceConfig=ResourceConfig,
            InputDataConfig=InputDataConfig or [],
            RoleArn=kwargs.get("RoleArn") or "arn:aws:iam::123456789012:role/SageMakerRole",
            StoppingCondition=kwargs.get("StoppingCondition") or {"MaxRuntimeInSeconds": 86400},
            HyperParameters=kwargs.get("HyperParameters") or {},
            Environment=Environment or {},
            Tags=list(kwargs.get("Tags") or []) + [tag],
        )
        client = emulator_client()
        client.create_training_job(**request)
        while True:
            description = client.describe_training_job(TrainingJobName=TrainingJobName)
            if description["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
                break
            _real_time.sleep(0.05)
        _print_job_log(TrainingJobName)
        if description["TrainingJobStatus"] == "Failed":
            raise RuntimeError(
                f"Failed to run: training job {TrainingJobName}: "
                f"{description.get('FailureReason', '')}"
            )

    def describe_training_job(self, TrainingJobName):
        return emulator_client().describe_training_job(TrainingJobName=TrainingJobName)

    client_class.create_training_job = create_training_job
    client_class.describe_training_job = describe_training_job


def _print_job_log(job_name):
    import boto3

    logs = boto3.client("logs", endpoint_url=_EMULATOR)
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=job_name + "/")
    for stream in streams.get("logStreams", []):
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
        )
        for event in events.get("events", []):
            print(f"algo-1-local | {event['message']}")


def install():
    """Apply every adjustment, as configured by the environment.

    Works at interpreter start (from sitecustomize) and in a kernel forked
    from a warm interpreter that has already imported the SDK.
    """
    global _EMULATOR
    _EMULATOR = os.environ.get("GRADER_EMULATOR_URL", "")
    if not _EMULATOR:
        return
    sys.addaudithook(_loopback_only)
    adjustments = {
        "botocore.session": _redirect_clients,
        "sagemaker.config.config": _validate_configs_once,
        "sagemaker.session": _accelerate_polling,
        "sagemaker.local.local_session": _emulate_local_mode,
    }
    for name, adjust in adjustments.items():
        if name in sys.modules:
            adjust(sys.modules[name])
    grader_import_hooks.install({n: a for n, a in adjustments.items() if n not in sys.modules})
