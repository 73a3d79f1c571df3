"""Emulated SageMaker training jobs: CreateTrainingJob really trains.

The service side of a job, as SageMaker with the training toolkit runs it:
download the channels from S3, unpack the source dir, honour its
requirements.txt, run the entry point with the toolkit's arguments and
environment, stream its output to CloudWatch Logs, apply the metric
definitions and publish the values, then pack ``model/`` into
``model.tar.gz`` and report Completed, Failed or Stopped in the service's
words. Every job leaves a :class:`JobRun`, the evidence the checks judge.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

from grader import images, sm_contract
from grader.sandbox import ResourceLimits, kill_group

log = logging.getLogger("grader")

_SITE_ROOT = Path(__file__).resolve().parent / "_sitecustom"
_JOB_SITE = _SITE_ROOT / "job"
_COMMON_SITE = _SITE_ROOT / "common"
_LOG_BATCH_SECONDS = 0.25
#: Between SIGTERM and SIGKILL when a job reaches its time limit.
_STOP_GRACE_SECONDS = 3.0
_FAILURE_REASON_LIMIT = 1024
_ERROR_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")
LOCAL_MODE_TAG = "grader:local-mode"


@dataclass
class JobRun:
    """What the grader observed of one training job, start to end."""

    name: str
    request: dict[str, Any]
    paths: sm_contract.JobPaths
    status: str = "InProgress"
    secondary_status: str = "Starting"
    failure_reason: str | None = None
    stop_reason: str | None = None
    exit_code: int | None = None
    command: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    stderr_tail: list[str] = field(default_factory=list)
    metric_values: dict[str, list[float]] = field(default_factory=dict)
    metric_errors: dict[str, str] = field(default_factory=dict)
    observations: dict[str, Any] = field(default_factory=dict)
    model_data: str | None = None
    image_label: str = ""
    unavailable_modules: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.time)
    ended: float | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        raw = self.request.get("HyperParameters") or {}
        return sm_contract.decode_hyperparameters(raw)

    @property
    def user_hyperparameters(self) -> dict[str, Any]:
        return sm_contract.split_reserved(self.hyperparameters)[0]

    @property
    def channels(self) -> dict[str, str]:
        """Channel name to data URI; local mode may give ``file://`` URIs."""
        channels = {}
        for channel in self.request.get("InputDataConfig") or []:
            source = channel.get("DataSource") or {}
            uri = (source.get("S3DataSource") or {}).get("S3Uri") or (
                source.get("FileDataSource") or {}
            ).get("FileUri", "")
            channels[channel["ChannelName"]] = uri
        return channels

    @property
    def image(self) -> str:
        return (self.request.get("AlgorithmSpecification") or {}).get("TrainingImage", "")

    @property
    def metric_definitions(self) -> list[dict[str, str]]:
        spec = self.request.get("AlgorithmSpecification") or {}
        return list(spec.get("MetricDefinitions") or [])

    @property
    def entry_point(self) -> str | None:
        program = self.hyperparameters.get(sm_contract.PROGRAM_KEY)
        return str(program) if program else None

    @property
    def local_mode(self) -> bool:
        tags = self.request.get("Tags") or []
        return any(t.get("Key") == LOCAL_MODE_TAG for t in tags)

    @property
    def duration(self) -> float | None:
        return None if self.ended is None else self.ended - self.started

    @property
    def log_text(self) -> str:
        return "\n".join(self.log_lines)


class _JobFailed(Exception):
    """Ends a job early with the FailureReason the service would give."""

    def __init__(self, reason: str, secondary: str = "Failed"):
        super().__init__(reason)
        self.reason = reason
        self.secondary = secondary


@dataclass(frozen=True)
class ServiceSettings:
    endpoint_url: str
    region: str
    access_key: str
    secret_key: str
    jobs_root: Path
    limits: ResourceLimits
    max_job_seconds: int
    max_log_bytes: int
    #: Directories a ``file://`` channel or source dir may come from (local mode).
    local_roots: tuple[Path, ...] = ()
    #: Where jobs are forked from, when a warm interpreter is running.
    warm: Any = None


class TrainingService:
    """Runs the jobs CreateTrainingJob receives, one thread each."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.runs: dict[str, JobRun] = {}
        self._lock = threading.Lock()
        self._s3 = _client("s3", settings)
        self._logs = _client("logs", settings)
        self._cloudwatch = _client("cloudwatch", settings)

    def submit(self, job: Any, request: dict[str, Any]) -> JobRun:
        """Start running ``job`` (moto's record of it) in the background."""
        name = request["TrainingJobName"]
        paths = sm_contract.JobPaths(self.settings.jobs_root / name / "opt_ml")
        run = JobRun(name=name, request=request, paths=paths)
        with self._lock:
            self.runs[name] = run
        _publish(job, run)
        thread = threading.Thread(target=self._run, args=(job, run), daemon=True)
        thread.start()
        return run

    def wait_all(self, timeout: float) -> bool:
        """Wait for every job to end; False if some were still running."""
        deadline = time.monotonic() + timeout
        for run in list(self.runs.values()):
            if not run.done.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def _run(self, job: Any, run: JobRun) -> None:
        try:
            self._execute(job, run)
        except _JobFailed as failure:
            run.status = "Failed"
            run.secondary_status = failure.secondary
            run.failure_reason = failure.reason[:_FAILURE_REASON_LIMIT]
        except Exception as exc:  # an emulator fault must still end the job
            log.exception("emulated training job %s crashed", run.name)
            run.status = "Failed"
            run.secondary_status = "Failed"
            run.failure_reason = f"InternalServerError: the grader's emulator failed: {exc}"
        finally:
            run.ended = time.time()
            _publish(job, run)
            run.done.set()

    def _execute(self, job: Any, run: JobRun) -> None:
        request = run.request
        channels = run.channels
        run.paths.create(list(channels))

        run.secondary_status = "Downloading"
        _publish(job, run)
        for channel, uri in channels.items():
            self._download_channel(channel, uri, run.paths.channel_dir(channel))

        entry_point = run.entry_point
        if not entry_point:
            raise _JobFailed(
                "ClientError: this job has no entry point (no sagemaker_program "
                "hyperparameter). The grader runs script mode: give the estimator "
                "entry_point='train.py'."
            )
        submit_dir = run.hyperparameters.get(sm_contract.SUBMIT_DIRECTORY_KEY)
        self._fetch_source(str(submit_dir or ""), run.paths.code_dir)
        script = run.paths.code_dir / entry_point
        if not script.is_file():
            raise _JobFailed(
                "AlgorithmError: ExecuteUserScriptError:\nExitCode 2\n"
                f'ErrorMessage "can\'t open file \'{entry_point}\': '
                "[Errno 2] No such file or directory\""
            )

        profile = images.profile_for(run.image)
        requirements = images.resolve_requirements(run.paths.code_dir / "requirements.txt")
        if requirements.error:
            raise _JobFailed(
                "AlgorithmError: InstallRequirementsError:\nExitCode 1\n"
                f'ErrorMessage "{requirements.error}"\n'
                'Command "/usr/local/bin/python -m pip install -r requirements.txt"'
            )
        run.image_label = profile.label
        run.unavailable_modules = sorted(profile.missing_modules - requirements.added_modules)

        spec = sm_contract.ContainerSpec(
            job_name=run.name,
            paths=run.paths,
            hyperparameters=run.hyperparameters,
            input_data_config={
                c["ChannelName"]: {
                    "ContentType": c.get("ContentType", ""),
                    "TrainingInputMode": "File",
                    "S3DistributionType": "FullyReplicated",
                    "RecordWrapperType": "None",
                }
                for c in request.get("InputDataConfig") or []
            },
            instance_type=(request.get("ResourceConfig") or {}).get("InstanceType", "local"),
            entry_point=entry_point,
            num_cpus=sm_contract.default_cpu_count(),
        )
        spec.write_config(request.get("HyperParameters") or {})

        run.secondary_status = "Training"
        _publish(job, run)
        self._train(run, spec, script)

        run.secondary_status = "Uploading"
        _publish(job, run)
        if run.exit_code == 0 or run.stop_reason:
            run.model_data = self._upload_outputs(run)

        if run.stop_reason:
            run.status = "Stopped"
            run.secondary_status = "MaxRuntimeExceeded"
            run.failure_reason = run.stop_reason
        elif run.exit_code == 0:
            run.status = "Completed"
            run.secondary_status = "Completed"
        else:
            raise _JobFailed(self._failure_reason(run))

    # -- inputs -------------------------------------------------------------

    def _download_channel(self, channel: str, uri: str, target: Path) -> None:
        parsed = urlparse(uri)
        if parsed.scheme == "file":
            self._copy_local(Path(parsed.path), target, what=f"channel {channel!r}")
            return
        if parsed.scheme != "s3":
            raise _JobFailed(f"ClientError: channel {channel!r} has S3Uri {uri!r}, not s3://")
        bucket, prefix = parsed.netloc, parsed.path.lstrip("/")
        keys = self._list_keys(bucket, prefix, channel, uri)
        for key in keys:
            relative = key[len(prefix):].lstrip("/") or Path(key).name
            destination = target / relative
            if not destination.resolve().is_relative_to(target.resolve()):
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            self._s3.download_file(bucket, key, str(destination))

    def _list_keys(self, bucket: str, prefix: str, channel: str, uri: str) -> list[str]:
        keys: list[str] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix
            )
            for page in pages:
                keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"][-1:] != "/")
        except self._s3.exceptions.NoSuchBucket:
            raise _JobFailed(
                f"ClientError: Data download failed: bucket {bucket!r} of channel "
                f"{channel!r} does not exist"
            ) from None
        if not keys:
            raise _JobFailed(
                f"ClientError: Data download failed: no objects found under {uri} "
                f"for channel {channel!r}. Check the S3 prefix passed to fit()."
            )
        return keys

    def _copy_local(self, source: Path, target: Path, *, what: str) -> None:
        source = source.resolve()
        if not any(source.is_relative_to(root) for root in self.settings.local_roots):
            raise _JobFailed(f"ClientError: {what} reads {source}, outside the submission")
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
        elif source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / source.name)
        else:
            raise _JobFailed(f"ClientError: {what}: {source} does not exist")

    def _fetch_source(self, uri: str, code_dir: Path) -> None:
        parsed = urlparse(uri)
        if not uri:
            return
        if parsed.scheme == "file":
            source = Path(parsed.path)
            if source.is_dir():
                self._copy_local(source, code_dir, what="source_dir")
                return
            archive = source
        elif parsed.scheme == "s3":
            archive = code_dir.parent / "sourcedir.tar.gz"
            try:
                self._s3.download_file(parsed.netloc, parsed.path.lstrip("/"), str(archive))
            except Exception as exc:
                raise _JobFailed(f"ClientError: cannot download source dir {uri}: {exc}") from None
        else:
            raise _JobFailed(f"ClientError: unsupported source location {uri!r}")
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(code_dir, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise _JobFailed(f"ClientError: cannot unpack source dir {uri}: {exc}") from None

    # -- the container --------------------------------------------------------

    def _train(self, run: JobRun, spec: sm_contract.ContainerSpec, script: Path) -> None:
        user_hps = sm_contract.split_reserved(spec.hyperparameters)[0]
        interpreter = sys.executable
        run.command = [interpreter, script.name, *sm_contract.to_cmd_args(user_hps)]
        observations = run.paths.root.parent / "observations.json"
        env = self._container_env(run, spec, observations)

        stop_after = _max_runtime(run.request, self.settings.max_job_seconds)
        process, stdout, stderr = self._start(run, script, env)
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
        readers = [
            threading.Thread(target=_pump, args=(stream, tag, lines), daemon=True)
            for stream, tag in ((stdout, "stdout"), (stderr, "stderr"))
        ]
        for reader in readers:
            reader.start()

        publisher = _LogPublisher(self._logs, self._cloudwatch, run)
        deadline = time.monotonic() + stop_after
        open_streams, written = 2, 0
        try:
            while open_streams:
                try:
                    tag, line = lines.get(timeout=_LOG_BATCH_SECONDS)
                except queue.Empty:
                    tag, line = "", None
                if tag and line is None:
                    open_streams -= 1
                elif line is not None:
                    written += len(line)
                    publisher.add(line, stderr=(tag == "stderr"))
                    if written > self.settings.max_log_bytes:
                        _kill(process)
                        run.stop_reason = None
                        process.wait()
                        raise _JobFailed(
                            "AlgorithmError: the training script wrote more than "
                            f"{self.settings.max_log_bytes:,} bytes of output; the job "
                            "was stopped. Print less (for example set verbose_eval).",
                        )
                publisher.flush_if_due()
                if time.monotonic() > deadline:
                    _stop(process)
                    run.stop_reason = (
                        "MaxRuntimeExceeded: Training job stopped after "
                        f"{stop_after} seconds (the estimator's max_run, capped at "
                        f"{self.settings.max_job_seconds} s by the grader)"
                    )
                    break
            run.exit_code = process.wait()
        finally:
            _kill(process)
            publisher.flush()
            run.observations = _host_paths(_read_json(observations), run.paths.root)

    def _start(self, run: JobRun, script: Path, env: dict[str, str]) -> tuple[Any, Any, Any]:
        """Start the entry point: forked from the warm interpreter when there
        is one, else as a fresh ``python`` (the same contract either way)."""
        warm = self.settings.warm
        if warm is None:
            process = subprocess.Popen(
                run.command,
                cwd=run.paths.code_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                preexec_fn=self.settings.limits.preexec(),
            )
            return process, process.stdout, process.stderr
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        with open(os.devnull, "rb") as devnull:
            try:
                process = warm.spawn(
                    cwd=run.paths.code_dir,
                    env=env,
                    stdin=devnull.fileno(),
                    stdout=out_write,
                    stderr=err_write,
                    rlimits=self.settings.limits.as_rlimits(),
                    script=script.name,
                    args=run.command[2:],
                    install="grader_job_observer",
                    path_prefix=[str(_JOB_SITE), str(_COMMON_SITE)],
                    # scripts that hard-code /opt/ml work, as in the container
                    links={sm_contract.CONTAINER_ROOT: str(run.paths.root)},
                )
            finally:
                os.close(out_write)
                os.close(err_write)
        return process, os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb")

    def _container_env(
        self, run: JobRun, spec: sm_contract.ContainerSpec, observations: Path
    ) -> dict[str, str]:
        home = run.paths.root.parent / "home"
        home.mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": os.pathsep.join(
                [str(_JOB_SITE), str(_COMMON_SITE), str(run.paths.code_dir)]
            ),
            "TRAINING_JOB_NAME": run.name,
            "TRAINING_JOB_ARN": f"arn:aws:sagemaker:{self.settings.region}:job/{run.name}",
            "AWS_REGION": self.settings.region,
            "AWS_DEFAULT_REGION": self.settings.region,
            "AWS_ENDPOINT_URL": self.settings.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.settings.access_key,
            "AWS_SECRET_ACCESS_KEY": self.settings.secret_key,
            "OMP_NUM_THREADS": str(spec.num_cpus),
            "MPLBACKEND": "Agg",
            "GRADER_OBSERVATIONS": str(observations),
            "GRADER_UNAVAILABLE_MODULES": ",".join(run.unavailable_modules),
            "GRADER_IMAGE_LABEL": run.image_label,
        }
        env.update(spec.environment())
        for item in (run.request.get("Environment") or {}).items():
            env.setdefault(*item)
        return env

    def _failure_reason(self, run: JobRun) -> str:
        failure_file = run.paths.failure_file
        if failure_file.is_file() and failure_file.stat().st_size:
            written = failure_file.read_text(errors="replace").strip()
            return f"AlgorithmError: {written}"
        error_line = _last_error_line(run.stderr_tail) or "(no error message)"
        # As the container would show it, without this machine's paths.
        command = " ".join(shlex.quote(part) for part in ["python3", *run.command[1:]])
        if run.exit_code is not None and run.exit_code < 0:
            error_line = f"killed by signal {-run.exit_code} (out of memory or CPU time?)"
        return (
            "AlgorithmError: ExecuteUserScriptError:\n"
            f"ExitCode {run.exit_code}\n"
            f'ErrorMessage "{error_line}"\n'
            f'Command "{command}", exit code: {run.exit_code}'
        )

    # -- outputs ------------------------------------------------------------

    def _upload_outputs(self, run: JobRun) -> str:
        output = urlparse((run.request.get("OutputDataConfig") or {}).get("S3OutputPath", ""))
        bucket, prefix = output.netloc, output.path.strip("/")
        key_prefix = "/".join(p for p in (prefix, run.name, "output") if p)
        model_archive = run.paths.root.parent / "model.tar.gz"
        _pack(run.paths.model_dir, model_archive)
        output_archive = run.paths.root.parent / "output.tar.gz"
        _pack(run.paths.output_data_dir, output_archive)
        try:
            self._s3.upload_file(str(model_archive), bucket, f"{key_prefix}/model.tar.gz")
            self._s3.upload_file(str(output_archive), bucket, f"{key_prefix}/output.tar.gz")
        except Exception as exc:
            raise _JobFailed(
                f"ClientError: cannot upload the model to s3://{bucket}/{key_prefix}: {exc}"
            ) from None
        return f"s3://{bucket}/{key_prefix}/model.tar.gz"


class _LogPublisher:
    """Sends a job's output to CloudWatch Logs and its metrics to CloudWatch,
    as the service does while the job runs."""

    def __init__(self, logs: Any, cloudwatch: Any, run: JobRun):
        self._logs = logs
        self._cloudwatch = cloudwatch
        self._run = run
        self._stream = sm_contract.log_stream_name(run.name, int(run.started))
        self._pending: list[dict[str, Any]] = []
        self._metrics: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        self._patterns: list[tuple[str, re.Pattern[str]]] = []
        for definition in run.metric_definitions:
            name, regex = definition.get("Name", ""), definition.get("Regex", "")
            try:
                self._patterns.append((name, re.compile(regex)))
            except re.error as exc:
                run.metric_errors[name] = f"invalid regex: {exc}"
        try:
            self._logs.create_log_group(logGroupName=sm_contract.LOG_GROUP)
        except self._logs.exceptions.ResourceAlreadyExistsException:
            pass
        self._logs.create_log_stream(
            logGroupName=sm_contract.LOG_GROUP, logStreamName=self._stream
        )

    def add(self, line: str, *, stderr: bool) -> None:
        run = self._run
        run.log_lines.append(line)
        if stderr:
            run.stderr_tail = (run.stderr_tail + [line])[-50:]
        now = datetime.now(timezone.utc)
        if line:  # CloudWatch refuses empty events; the grader's own log keeps them
            self._pending.append({"timestamp": int(now.timestamp() * 1000), "message": line})
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if not match:
                continue
            try:
                value = float(match.group(1) if pattern.groups else match.group(0))
            except (ValueError, IndexError):
                continue
            run.metric_values.setdefault(name, []).append(value)
            self._metrics.append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "TrainingJobName", "Value": run.name}],
                    "Timestamp": now,
                    "Value": value,
                }
            )

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush >= _LOG_BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if self._pending:
            events, self._pending = self._pending, []
            for start in range(0, len(events), 5000):
                self._logs.put_log_events(
                    logGroupName=sm_contract.LOG_GROUP,
                    logStreamName=self._stream,
                    logEvents=events[start : start + 5000],
                )
        if self._metrics:
            metrics, self._metrics = self._metrics, []
            for start in range(0, len(metrics), 500):
                self._cloudwatch.put_metric_data(
                    Namespace=sm_contract.METRIC_NAMESPACE,
                    MetricData=metrics[start : start + 500],
                )


_SESSION_LOCK = threading.Lock()
_SESSION: Any = None


def _client(service: str, settings: ServiceSettings) -> Any:
    """A client with the execution role's keys. Every service, one per
    submission, shares one boto3 session, which parses each service's model
    once per process rather than once per submission."""
    global _SESSION
    config = Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60)
    with _SESSION_LOCK:
        if _SESSION is None:
            _SESSION = boto3.session.Session()
        return _SESSION.client(
            service,
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
            config=config,
        )


def _pump(stream: Any, tag: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    for raw in iter(stream.readline, b""):
        lines.put((tag, raw.decode("utf-8", errors="replace").rstrip("\r\n")))
    stream.close()
    lines.put((tag, None))


def _host_paths(observations: dict[str, Any], root: Path) -> dict[str, Any]:
    """Paths the script used through the container's ``/opt/ml``, as this
    machine's paths, so every check compares like with like."""
    prefix = sm_contract.CONTAINER_ROOT + "/"
    for key in ("opened", "listed", "written", "saved_models"):
        paths = observations.get(key)
        if isinstance(paths, list):
            observations[key] = [
                str(root / p[len(prefix):]) if isinstance(p, str) and p.startswith(prefix)
                else (str(root) if p == sm_contract.CONTAINER_ROOT else p)
                for p in paths
            ]
    return observations


def _stop(process: Any) -> None:
    """Stop the job as the service does at its time limit: SIGTERM, a grace
    period (SageMaker gives 120 s; here a few), then SIGKILL to the group."""
    if isinstance(process, subprocess.Popen):
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    else:
        process.terminate()
    try:
        process.wait(timeout=_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        pass
    _kill(process)


def _kill(process: Any) -> None:
    """Kill the job's whole process group, as the service tears down a container."""
    if isinstance(process, subprocess.Popen):
        kill_group(process.pid)
    else:
        process.kill()


def _max_runtime(request: dict[str, Any], cap: int) -> int:
    asked = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds") or cap
    return max(1, min(int(asked), cap))


def _last_error_line(lines: list[str]) -> str | None:
    for line in reversed(lines):
        if _ERROR_LINE.match(line.strip()):
            return line.strip()
    stripped = [line.strip() for line in lines if line.strip()]
    return stripped[-1] if stripped else None


def _pack(directory: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        if directory.is_dir():
            for child in sorted(directory.iterdir()):
                tar.add(child, arcname=child.name)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _publish(job: Any, run: JobRun) -> None:
    """Mirror a run's state onto moto's record, which DescribeTrainingJob returns."""
    now = datetime.now(timezone.utc)
    previous = getattr(job, "secondary_status", None)
    job.training_job_status = run.status
    job.secondary_status = run.secondary_status
    job.last_modified_time = now
    if previous != run.secondary_status:
        transitions = getattr(job, "secondary_status_transitions", None) or []
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        transitions.append(
            {
                "Status": run.secondary_status,
                "StartTime": now,
                "StatusMessage": _STATUS_MESSAGES.get(run.secondary_status, ""),
            }
        )
        job.secondary_status_transitions = transitions
    job.training_start_time = datetime.fromtimestamp(run.started, timezone.utc)
    job.failure_reason = run.failure_reason
    job.model_artifacts = {"S3ModelArtifacts": run.model_data} if run.model_data else None
    if run.ended is not None:
        job.training_end_time = datetime.fromtimestamp(run.ended, timezone.utc)
        seconds = max(1, int(round(run.ended - run.started)))
        job.training_time_in_seconds = seconds
        job.billable_time_in_seconds = seconds
        job.final_metric_data_list = [
            {"MetricName": name, "Value": values[-1], "Timestamp": job.training_end_time}
            for name, values in run.metric_values.items()
            if values
        ] or None
    else:
        job.training_end_time = None
        job.final_metric_data_list = None


_STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "MaxRuntimeExceeded": "Training job stopped: it exceeded its maximum runtime",
}
