"""Emulated AWS for one grading process: a moto server on loopback, an
account with a SageMaker execution role, and training jobs that really run.

moto keeps its state per process, so a process hosts one emulator at a time;
:meth:`Emulator.reset` wipes every bucket, role, job and log between two
submissions. Parallel grading uses one process, and one emulator, per worker.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import logging
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from grader.errors import EmulatorError
from grader.training import ServiceSettings, TrainingService
from grader.kernels import kernel_interpreter
from grader.relay import unix_to_tcp
from grader.sandbox import confinement_for
from grader.warm import WarmInterpreter

log = logging.getLogger("grader")

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
ROLE_NAME = "SageMakerRole"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE_NAME}"
DEFAULT_BUCKET = f"sagemaker-{REGION}-{ACCOUNT_ID}"
# The grader's own identity towards moto; student code gets assumed-role keys.
_ADMIN_KEY, _ADMIN_SECRET = "AKIAGRADERADMIN00000", "grader-admin-secret"

_TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}

_ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sagemaker:*", "s3:*", "logs:*"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["cloudwatch:*", "iam:GetRole"], "Resource": "*"},
    ],
}

_SITE = Path(__file__).resolve().parent / "_sitecustom"

_ACTIVE: "Emulator | None" = None
_ACTIVE_LOCK = threading.Lock()
_PATCHED = False


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    session_token: str


def _install_training_hook() -> None:
    """Route moto's CreateTrainingJob to the active emulator's training service.

    Stock moto records a job as Completed on the spot and replaces its
    MetricDefinitions; here the job starts InProgress with the request kept
    as sent, and the training service moves it on.
    """
    global _PATCHED
    if _PATCHED:
        return
    from moto.sagemaker.models import SageMakerModelBackend

    original = SageMakerModelBackend.create_training_job

    def create_training_job(self: Any, **kwargs: Any) -> Any:
        request = {
            "TrainingJobName": kwargs["training_job_name"],
            "HyperParameters": copy.deepcopy(kwargs.get("hyper_parameters")),
            "AlgorithmSpecification": copy.deepcopy(kwargs.get("algorithm_specification")),
            "RoleArn": kwargs.get("role_arn"),
            "InputDataConfig": copy.deepcopy(kwargs.get("input_data_config")),
            "OutputDataConfig": copy.deepcopy(kwargs.get("output_data_config")),
            "ResourceConfig": copy.deepcopy(kwargs.get("resource_config")),
            "StoppingCondition": copy.deepcopy(kwargs.get("stopping_condition")),
            "Tags": copy.deepcopy(kwargs.get("tags")),
        }
        job = original(self, **kwargs)
        job.algorithm_specification = copy.deepcopy(request["AlgorithmSpecification"])
        job.final_metric_data_list = None
        job.secondary_status_transitions = []
        emulator = _ACTIVE
        if emulator is None:
            job.training_job_status = "Failed"
            job.failure_reason = "InternalServerError: no training service is running"
            return job
        emulator.training.submit(job, request)
        return job

    SageMakerModelBackend.create_training_job = create_training_job
    _PATCHED = True


class Emulator:
    """A moto server with the account, role and training service a notebook expects."""

    def __init__(self, *, root: Path, settings: dict[str, Any]):
        #: Everything student code may touch lives under ``slots``; sockets
        #: shared with the sandboxes under ``control``.
        self.root = root
        self.slots = root / "slots"
        self.control = root / "control"
        for directory in (self.slots, self.control):
            directory.mkdir(parents=True, exist_ok=True)
        self.work_root = self.slots
        self._service_settings = settings
        self._server: Any = None
        self._relay: Any = None
        self._relay_socket: tuple[Path, int, int] = (Path(), 0, 0)
        self.endpoint_url = ""
        self._clients: dict[str, Any] = {}
        self.training: TrainingService
        self.credentials: Credentials
        self.confinement: Any = None
        self.warm: WarmInterpreter

    def new_slot(self) -> Path:
        """A fresh, empty directory for the next submission; the previous
        submission's processes and files are removed first, so none outlive
        it."""
        self.warm.clear(keep=[self.slots, self.control])
        self._keep_relay_intact()
        for previous in self.slots.iterdir():
            shutil.rmtree(previous, ignore_errors=True)
        slot = Path(tempfile.mkdtemp(prefix="submission-", dir=self.slots))
        return slot

    def __enter__(self) -> "Emulator":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        global _ACTIVE
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)

        check_socket_room(self.control / "emulator.sock")
        with _ACTIVE_LOCK:
            if _ACTIVE is not None:
                raise EmulatorError("an emulator is already running in this process")
            _install_training_hook()
            try:
                self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
                self._server.start()
            except OSError as exc:
                raise EmulatorError(f"cannot start the AWS emulator on 127.0.0.1: {exc}") from None
            host, port = self._server.get_host_and_port()
            self.endpoint_url = f"http://{host}:{port}"
            self._clients.clear()
            _ACTIVE = self
        log.debug("AWS emulator listening on %s", self.endpoint_url)
        self._start_interpreters(port)
        # moto's state outlives a server in the same process: start from nothing.
        self._reset_state()
        self._prepare_account()

    def _start_interpreters(self, port: int) -> None:
        self.confinement = confinement_for([self.slots, self.control])
        relay = None
        if self.confinement is not None:
            socket_path = self.control / "emulator.sock"
            self._open_relay(socket_path, port)
            relay = (port, str(socket_path))
        # One warm interpreter serves kernels, jobs and probes alike: what a
        # job needs is a subset of what a kernel imports, and a second one
        # would cost its imports again per worker. A job's fork installs the
        # job's start-up code itself.
        self.warm = kernel_interpreter(
            [str(_SITE / "kernel"), str(_SITE / "common")],
            directory=self.control, confinement=self.confinement, relay=relay,
        )
        self.warm.start()

    def _open_relay(self, socket_path: Path, port: int) -> None:
        socket_path.unlink(missing_ok=True)
        self._relay = unix_to_tcp(str(socket_path), port)
        self._relay_socket = (socket_path, port, socket_path.stat().st_ino)

    def _keep_relay_intact(self) -> None:
        """The relay's socket lies where sandboxed code can write: one that
        a submission replaced is bound anew, so the next one reaches the
        emulator and no listener of the last."""
        if self._relay is None:
            return
        socket_path, port, inode = self._relay_socket
        try:
            intact = socket_path.stat().st_ino == inode
        except OSError:
            intact = False
        if not intact:
            self._relay.close()
            self._open_relay(socket_path, port)

    def stop(self) -> None:
        global _ACTIVE
        with _ACTIVE_LOCK:
            if self._server is not None:
                self._server.stop()
                self._server = None
            if _ACTIVE is self:
                _ACTIVE = None
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if getattr(self, "warm", None) is not None:
            self.warm.close()

    def reset(self, *, work_root: Path | None = None) -> None:
        """Forget every resource, so the next submission starts from nothing."""
        self._reset_state()
        if work_root is not None:
            self.work_root = work_root
        self._prepare_account()

    def _reset_state(self) -> None:
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def client(self, service: str) -> Any:
        """A boto3 client with the grader's own identity, made once per
        service: the identity and the endpoint outlive every reset."""
        if service not in self._clients:
            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=REGION,
                aws_access_key_id=_ADMIN_KEY,
                aws_secret_access_key=_ADMIN_SECRET,
                config=Config(retries={"max_attempts": 2}),
            )
        return self._clients[service]

    def _prepare_account(self) -> None:
        iam = self.client("iam")
        iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(_TRUST_POLICY),
            Description="Execution role for the course's SageMaker jobs",
        )
        iam.put_role_policy(
            RoleName=ROLE_NAME,
            PolicyName="course-sagemaker-access",
            PolicyDocument=json.dumps(_ROLE_POLICY),
        )
        assumed = self.client("sts").assume_role(
            RoleArn=ROLE_ARN, RoleSessionName="SageMaker", DurationSeconds=43200
        )["Credentials"]
        self.credentials = Credentials(
            assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"]
        )
        jobs_root = self.work_root / "jobs"
        jobs_root.mkdir(parents=True, exist_ok=True)
        self.training = TrainingService(
            ServiceSettings(
                endpoint_url=self.endpoint_url,
                region=REGION,
                access_key=self.credentials.access_key,
                secret_key=self.credentials.secret_key,
                jobs_root=jobs_root,
                local_roots=(self.work_root.resolve(),),
                warm=self.warm,
                **self._service_settings,
            )
        )

    def seed_object(self, uri: str, body: bytes) -> None:
        parsed = urlparse(uri)
        s3 = self.client("s3")
        bucket = parsed.netloc
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        s3.put_object(Bucket=bucket, Key=parsed.path.lstrip("/"), Body=body)

    def read_object(self, uri: str) -> bytes:
        parsed = urlparse(uri)
        response = self.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
        return response["Body"].read()


_KERNEL_SITE = _SITE / "kernel"
_COMMON_SITE = _SITE / "common"
_SDK_CONFIG = """\
SchemaVersion: '1.0'
SageMaker:
  PythonSDK:
    Modules:
      TelemetryOptOut: true
"""


#: The longest path a Unix socket can have on Linux.
_SOCKET_PATH_LIMIT = 107
#: What a batch worker's emulator adds below the temporary directory.
_WORKER_SOCKET = "grader-worker-xxxxxxxx/control/emulator.sock"


def check_socket_room(socket_path: Path | None = None) -> None:
    """The emulator's sockets (by default a batch worker's, below the
    temporary directory) need a short path: say so plainly when it is not."""
    path = str(socket_path or Path(tempfile.gettempdir()) / _WORKER_SOCKET)
    if len(path) > _SOCKET_PATH_LIMIT:
        raise EmulatorError(
            f"the temporary directory {tempfile.gettempdir()} is too long for the "
            f"grader's sockets ({len(path)} of at most {_SOCKET_PATH_LIMIT} bytes); "
            "set TMPDIR to a shorter path, such as /tmp"
        )


def student_environment(emulator: Emulator, home: Path) -> dict[str, str]:
    """The environment of the notebook's kernel: assumed-role credentials of
    the execution role, every AWS endpoint at the emulator, SDK telemetry off,
    and nothing of the grader's own environment."""
    import os

    home.mkdir(parents=True, exist_ok=True)
    sdk_config = home / ".sagemaker-config.yaml"
    sdk_config.write_text(_SDK_CONFIG)
    creds = emulator.credentials
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONPATH": os.pathsep.join([str(_KERNEL_SITE), str(_COMMON_SITE)]),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_SESSION_TOKEN": creds.session_token,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": emulator.endpoint_url,
        "AWS_CONFIG_FILE": str(home / ".aws-config-absent"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws-credentials-absent"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "GRADER_EMULATOR_URL": emulator.endpoint_url,
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(sdk_config),
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE": str(sdk_config),
    }
