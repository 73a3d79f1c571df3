"""The criteria, each judged from evidence the grader gathered itself.

A check returns a :class:`Finding`: its status, a one-line message, and for
anything short of a pass the cause in the student's terms, the fix and
where in their notebook or script to look. When an earlier failure leaves
nothing to judge, the check is skipped and names that failure, so one
mistake is reported once, as the root cause, not once per criterion; a
later criterion that fails because of it says so in ``caused_by``.

Detectors decide from what running showed: the job's request and log, what
train.py read, parsed, built and saved, the files the channels held and the
scores of the artifact. The notebook and script are read to point at a
line, and to decide only where running cannot tell (a loop the job was
killed in, the API that created a job).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import sm_contract
from grader.emulator import ACCOUNT_ID, ROLE_ARN
from grader.evidence import ChannelData, Evidence
from grader.results import Status, Verdict
from grader.training import JobRun


@dataclass
class Finding:
    status: Status
    message: str
    cause: str | None = None
    fix: str | None = None
    location: str | None = None
    caused_by: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    #: Names the student's mistake, so that when two criteria see the same one
    #: the later is linked to the earlier instead of reporting it again.
    mistake: str | None = None


def _passed(message: str, **evidence: Any) -> Finding:
    return Finding(Status.PASSED, message, evidence=evidence)


def _skipped(message: str, caused_by: str) -> Finding:
    return Finding(Status.SKIPPED, message, caused_by=caused_by)


def _first_location(locate: Callable[[str], str | None], *patterns: str) -> str | None:
    for pattern in patterns:
        found = locate(pattern)
        if found:
            return found
    return None


def _last_call(run: JobRun) -> dict[str, Any]:
    """How train.py last called xgboost.train, as the job recorded it."""
    calls = run.observations.get("xgboost_train") or []
    return calls[-1] if calls else {}


def _is_validation_name(name: str) -> bool:
    return bool(re.search(r"val|test|eval|hold|dev", name, re.IGNORECASE))


def _evals_location(ev: Evidence) -> str | None:
    return _first_location(
        ev.script_location, r"evals\s*=\s*\[", r"watchlist\s*=", r"evals\s*=", r"xgb\.train\("
    )


# -- notebook_runs ------------------------------------------------------------

_NOTEBOOK_HINTS: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"Unsupported (\w+) version: ([^ .]+(\.x)?)", re.IGNORECASE),
        ("the estimator asks for framework_version {1!r}, which the SageMaker SDK "
         "does not know"),
        ("Give an exact version the SDK supports, e.g. framework_version='2.1' with "
         "py_version='py310' for PyTorch, or '1.7-1' for XGBoost."),
    ),
    (
        re.compile(r"UnexpectedStatusException|Error for Training job"),
        "the training job failed, so fit() raised",
        "See why the job failed below (job_completed) and fix train.py.",
    ),
    (
        re.compile(r"WaiterError: .*terminal failure state"),
        "the training job failed, so the waiter raised",
        "See why the job failed below (job_completed).",
    ),
    (
        re.compile(r"KeyError: 'MetricDefinitions'"),
        ("TrainingJobAnalytics found no MetricDefinitions on the job: the estimator "
         "was built without metric_definitions"),
        "Pass metric_definitions to the estimator (see metrics_logged).",
    ),
    (
        re.compile(r"AccessDenied|is not authorized|InvalidClientTokenId|NoCredentials"),
        ("an AWS call was refused: the notebook uses credentials or a role this "
         "account does not have"),
        "Use role = sagemaker.get_execution_role() rather than a hard-coded ARN.",
    ),
    (
        re.compile(r"NoSuchKey|NoSuchBucket|Not Found"),
        "the notebook reads an S3 object that does not exist",
        ("Use the S3 URIs the assignment provides (s3_train_data, s3_validation_data) "
         "or the estimator's model_data."),
    ),
]

#: A cause found from evidence: (cause, fix, location or None).
_Hint = tuple[str, str, str | None]


def _undefined_name(ev: Evidence, cell: int, text: str) -> _Hint | None:
    match = re.match(r"NameError: name '(\w+)' is not defined", text)
    if not match:
        return None
    name = match.group(1)
    defined = ev.notebook_names
    if name in defined and defined[name] >= cell - 1:
        return (
            f"cell {cell} uses {name!r} before cell {defined[name] + 1} defines it",
            "Run the cells in order, or move the definition above its first use.",
            None,
        )
    candidates = [d for d in defined if d != name]
    near = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    near = near or [d for d in candidates if name in d][:1]
    if not near:
        return (
            f"cell {cell} uses {name!r}, which no cell of the notebook defines",
            f"Define {name!r} in an earlier cell, or correct its spelling.",
            None,
        )
    other = near[0]
    return (
        (f"cell {cell} uses {name!r}, which no cell defines; the notebook calls it "
         f"{other!r} (cell {defined[other] + 1})"),
        f"Use {other!r} there, or define {name!r} in an earlier cell.",
        None,
    )


def _model_data_too_early(ev: Evidence, cell: int, text: str) -> _Hint | None:
    if "ModelArtifacts" not in text and "'NoneType' object is not subscriptable" not in text:
        return None
    started = ev.notebook_location(r"\.fit\(.*wait\s*=\s*False")
    if not started:
        return None
    return (
        (f"cell {cell} reads model_data while the training job is still running: "
         f"fit(wait=False) ({started}) returns as soon as the job is created, and a job "
         "has no ModelArtifacts until it has completed"),
        ("Call fit() without wait=False, or call "
         "xgb_estimator.latest_training_job.wait() before reading model_data."),
        None,
    )


def _unknown_metric(ev: Evidence, cell: int, text: str) -> _Hint | None:
    run, failure = ev.graded_run, ev.notebook.failure
    if run is None or failure is None or "metric" not in failure.source:
        return None
    names = [d.get("Name", "") for d in run.metric_definitions]
    quoted = re.findall(r"'([^'\n]+)'|\"([^\"\n]+)\"", failure.source)
    for literal in (a or b for a, b in quoted):
        if literal in names or not (":" in literal or "auc" in literal.lower()):
            continue
        near = difflib.get_close_matches(literal, names, n=1, cutoff=0.6)
        lines = failure.source.splitlines()
        number = next((n for n, line in enumerate(lines, 1) if literal in line), None)
        if near:
            return (
                (f"cell {cell} looks up the metric {literal!r}, but the estimator's "
                 f"metric_definitions name it {near[0]!r}, so the selection is empty "
                 f"({text})"),
                f"Use the Name given in metric_definitions: {near[0]!r}.",
                f"notebook cell {cell}, line {number}" if number else None,
            )
    return None


def _entry_point_outside(ev: Evidence, cell: int, text: str) -> _Hint | None:
    match = re.search(r'No file named "([^"]+)" was found in directory "([^"]+)"', text)
    if not match:
        return None
    entry, directory = match.groups()
    return (
        (f"entry_point={entry!r} is looked up inside source_dir={directory!r}, so the "
         f"SDK looks for {directory}/{entry}, which does not exist"),
        (f"Give entry_point relative to source_dir: entry_point={Path(entry).name!r}, "
         f"source_dir={directory!r}."),
        ev.notebook_location(r"entry_point\s*="),
    )


_EVIDENCE_HINTS = (
    _undefined_name, _model_data_too_early, _unknown_metric, _entry_point_outside
)


def check_notebook_runs(ev: Evidence) -> Finding:
    run = ev.notebook
    if run.completed:
        return _passed(f"All {run.cells_run} code cells ran without an error.")
    failure = run.failure
    assert failure is not None
    cell = f"cell {failure.index + 1}" if failure.index >= 0 else "the kernel"
    if run.failure_kind in ("cell_timeout", "notebook_timeout", "kernel_died"):
        return Finding(
            Status.FAILED,
            f"The notebook stopped at {cell}: {failure.error_value}.",
            cause=failure.error_value,
            fix="Make each cell finish quickly: no infinite loops, no waiting on "
            "input, and keep memory use modest.",
            location=f"notebook {cell}",
        )
    first_line = (failure.error_value.strip().splitlines() or [""])[0]
    text = f"{failure.error_name}: {first_line}"
    cause, fix = f"{cell} raised {text}", "Fix the error in that cell and run all cells again."
    location = ev.failure_location() or f"notebook {cell}"
    caused_by = None
    evidence: dict[str, Any] = {"error_name": failure.error_name}
    hint = next(
        (found for explain in _EVIDENCE_HINTS
         if (found := explain(ev, failure.index + 1, text)) is not None),
        None,
    )
    if hint is not None:
        cause, fix = hint[0], hint[1]
        location = hint[2] or location
        evidence["explained"] = True
    else:
        for pattern, advice_cause, advice in _NOTEBOOK_HINTS:
            match = pattern.search(text)
            if match:
                groups = match.groups()
                cause = advice_cause.format(*groups) if groups else advice_cause
                fix = advice
                if "training job failed" in advice_cause:
                    caused_by = "job_completed"
                elif "MetricDefinitions" in advice_cause:
                    caused_by = "metrics_logged"
                break
    return Finding(
        Status.FAILED,
        f"The notebook stopped at {cell}: {_shorten(text, 300)}",
        cause=cause,
        fix=fix,
        location=location,
        caused_by=caused_by,
        evidence=evidence,
    )


# -- job_completed ----------------------------------------------------------


def _no_job(ev: Evidence) -> Finding:
    if not ev.notebook.completed:
        return _skipped(
            "No training job was created before the notebook stopped.", "notebook_runs"
        )
    return Finding(
        Status.FAILED,
        "The notebook never started a training job.",
        cause="no estimator's fit() was called against SageMaker",
        fix="Build an Estimator (XGBoost, PyTorch or Estimator) and call "
        "estimator.fit({'train': ..., 'validation': ...}).",
    )


_FRAME = re.compile(r'\s*File "([^"]+)", line (\d+), in ')


def _script_frame(ev: Evidence, run: JobRun) -> tuple[str, int, str] | None:
    """The innermost frame of the student's own code in the job's last
    traceback: (file as in the submission, line, source line)."""
    lines = run.log_lines
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    if not starts:
        return None
    code_dir = run.paths.code_dir
    entry = run.entry_point or ""
    prefix = ev.script_name[: -len(entry)] if entry and ev.script_name.endswith(entry) else ""
    found = None
    for index in range(starts[-1], len(lines)):
        match = _FRAME.match(lines[index])
        if not match:
            continue
        path = Path(match.group(1))
        if path.is_relative_to(sm_contract.CONTAINER_ROOT):
            path = run.paths.root / path.relative_to(sm_contract.CONTAINER_ROOT)
        path = path if path.is_absolute() else code_dir / path
        if not path.is_relative_to(code_dir):
            continue
        source = lines[index + 1].strip() if index + 1 < len(lines) else ""
        found = (prefix + path.relative_to(code_dir).as_posix(), int(match.group(2)), source)
    return found


def _script_exception(ev: Evidence, run: JobRun) -> tuple[str | None, str | None]:
    """What train.py raised and where, as text and as a location."""
    exception = run.observations.get("exception") or {}
    frame = _script_frame(ev, run)
    recorded = str(exception.get("file") or "")
    if frame is None and recorded and exception.get("line") and recorded[:1] not in "<.":
        frame = (recorded, exception["line"], exception.get("code") or "")
    if not exception:
        return None, (f"{frame[0]} line {frame[1]}" if frame else None)
    error = f"{exception.get('type')}: {_shorten(str(exception.get('message')), 300)}"
    if frame is None:
        return error, None
    location = f"{frame[0]} line {frame[1]}"
    code = f" ({frame[2]})" if frame[2] else ""
    return f"{location}{code}: {error}", location


def _error_message(reason: str) -> str:
    match = re.search(r'ErrorMessage "([^\n]*)', reason)
    return match.group(1).rstrip('"') if match else reason.splitlines()[0]


def _foreign_role(ev: Evidence, run: JobRun) -> Finding | None:
    """A role SageMaker could not assume: AWS refuses such a job outright,
    while the emulator runs it, so the grader judges it from the request."""
    role = str(run.request.get("RoleArn") or "")
    if not role or role == ROLE_ARN or run.local_mode:
        return None  # local mode runs on the notebook's machine; no role is assumed
    parts = role.split(":")
    account = parts[4] if len(parts) > 5 else ""
    owner = f"account {account}'s" if account and account != ACCOUNT_ID else "a"
    return Finding(
        Status.FAILED,
        f"Training job {run.name} was created with a role SageMaker cannot use ({role}).",
        cause=(
            f"the estimator's role is {role}, {owner} role, not this account's "
            f"execution role ({ROLE_ARN} in account {ACCOUNT_ID}); SageMaker cannot "
            "assume it, so on AWS CreateTrainingJob refuses the job"
        ),
        fix="Use role = sagemaker.get_execution_role() rather than a hard-coded ARN.",
        location=ev.notebook_location(re.escape(role)) or ev.notebook_location(r"role\s*="),
        evidence={"job": run.name, "role": role},
    )


def _stopped(ev: Evidence, run: JobRun) -> Finding:
    limit = (run.request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    loop = ev.script_location(r"^\s*while\s+(True|1)\s*:")
    cause = (
        f"train.py was still running when the job reached its max_run of {limit} s, "
        "so SageMaker stopped it"
    )
    saved = ev.artifact is not None and ev.artifact.model is not None
    if saved:
        cause += "; it had already saved the model, so what runs after training never ends"
        if loop:
            cause += f": the while loop at {loop}"
    elif loop:
        cause += f" (check that the while loop at {loop} ends)"
    return Finding(
        Status.FAILED,
        f"Training job {run.name} was stopped at its time limit (max_run={limit} s).",
        cause=cause,
        fix="Let train.py end when training is done (remove the endless loop), or raise "
        "max_run if training really takes longer.",
        location=loop,
        evidence={"job": run.name, "status": run.status, "stop_reason": run.failure_reason},
    )


def _no_entry_point(ev: Evidence) -> tuple[str, str, str | None]:
    raw = ev.notebook_location(r"\.create_training_job\(")
    if raw:
        return (
            ("the notebook starts the job with boto3's create_training_job instead of "
             "an SDK Estimator, so nothing sends train.py: the request has no "
             "sagemaker_program or sagemaker_submit_directory hyperparameter, which an "
             "estimator with entry_point='train.py' adds"),
            ("Build the job with the SDK, e.g. XGBoost(entry_point='train.py', "
             "framework_version='1.7-1', ...), and call its fit(): the Estimator packs "
             "train.py, uploads it and starts it."),
            raw,
        )
    return (
        ("the estimator was built without entry_point, so the job has no script to run "
         "(no sagemaker_program hyperparameter)"),
        "Pass entry_point='train.py' to the estimator.",
        ev.notebook_location(r"XGBoost\(|PyTorch\(|Estimator\("),
    )


def _blocked_import(run: JobRun) -> tuple[str, str] | None:
    blocked = run.observations.get("blocked_imports")
    if not blocked:
        return None
    missing = ", ".join(blocked)
    return (
        (f"train.py imports {missing}, which {run.image_label} does not include, "
         "and no requirements.txt names it"),
        (f"Add a requirements.txt listing {missing} next to train.py and pass "
         "source_dir to the estimator, or use the XGBoost estimator."),
    )


def check_job_completed(ev: Evidence) -> Finding:
    run = ev.graded_run
    if run is None:
        return _no_job(ev)
    evidence = {"job": run.name, "status": run.status}
    refused = _foreign_role(ev, run)
    if refused is not None:
        return refused
    if run.status == "Completed":
        return _passed(f"Training job {run.name} completed.", **evidence)
    if run.status == "Stopped":
        return _stopped(ev, run)
    if run.status == "InProgress":
        return Finding(
            Status.FAILED,
            f"Training job {run.name} was still running when grading ended.",
            cause="the job did not end before the notebook's time limit",
            fix="Let the job finish: call fit() with wait=True (the default).",
            evidence=evidence,
        )
    reason = run.failure_reason or "(no reason given)"
    raised, location = _script_exception(ev, run)
    cause = raised or reason.splitlines()[0]
    caused_by = None
    fix = "Read the job's log in the report, fix train.py and run the notebook again."
    blocked = _blocked_import(run)
    arguments = _argument_problem(ev, run)
    channel = _channel_problem(ev, run) or _data_problem(ev, run)
    if reason.startswith("ClientError: this job has no entry point"):
        cause, fix, location = _no_entry_point(ev)
    elif blocked is not None:
        cause, fix = blocked
    elif arguments is not None and arguments.stopped:
        cause = f"{arguments.cause} (the job failed with: {_error_message(reason)})"
        fix, caused_by = arguments.fix, "hyperparameters_honoured"
        location = arguments.location or location
    elif channel is not None:
        cause = f"{channel.cause}; the script then failed ({cause})"
        fix = channel.fix or fix
        caused_by = "channels_matched"
        location = channel.location or location
    elif "InstallRequirementsError" in reason:
        cause = reason.split("ErrorMessage", 1)[-1].strip().strip('"')
        fix = "Only list packages on PyPI with versions that exist; pin loosely."
    return Finding(
        Status.FAILED,
        f"Training job {run.name} failed: {_shorten(cause, 240)}",
        cause=cause,
        fix=fix,
        location=location,
        caused_by=caused_by,
        evidence={**evidence, "failure_reason": reason},
    )


# -- artifact_saved -----------------------------------------------------------


def _requires_completed_job(ev: Evidence) -> tuple[JobRun | None, Finding | None]:
    run = ev.graded_run
    if run is None:
        earlier = "notebook_runs" if not ev.notebook.completed else "job_completed"
        return None, _skipped("No training job ran, so there is nothing to judge.", earlier)
    if run.status != "Completed" and not run.model_data:
        return None, _skipped(f"Training job {run.name} did not complete.", "job_completed")
    return run, None


def _save_location(ev: Evidence, saved: str | None = None) -> str | None:
    literal = None
    if saved and Path(saved).is_absolute():
        literal = ev.script_location(rf"^[^#]*['\"]{re.escape(saved)}['\"]")
    return literal or ev.script_location(r"save_model|pickle\.dump|joblib\.dump")


def _nested_model(ev: Evidence) -> Finding | None:
    """A model only in a subfolder: SageMaker's XGBoost serving loads the
    files at the top of model.tar.gz, as the notebook does."""
    artifact = ev.artifact
    if artifact is None or not artifact.models:
        return None
    if any("/" not in m["name"].strip("/") for m in artifact.models):
        return None
    name = artifact.models[0]["name"]
    folder = name.strip("/").split("/")[0]
    return Finding(
        Status.FAILED,
        f"model.tar.gz holds the model only in a subfolder, at {name}.",
        cause=(
            f"train.py saved the model as {name} inside SM_MODEL_DIR; SageMaker's "
            "XGBoost serving, like a notebook that unpacks model.tar.gz, loads the "
            "files at its top, so it finds no model there"
        ),
        fix="Save the model directly in SM_MODEL_DIR: "
        "model.save_model(os.path.join(args.model_dir, 'xgboost-model')).",
        location=ev.script_location(rf"^[^#]*['\"]{re.escape(folder)}['\"]")
        or _save_location(ev),
        evidence={"files": artifact.files},
    )


def check_artifact_saved(ev: Evidence) -> Finding:
    run, skipped = _requires_completed_job(ev)
    if skipped:
        return skipped
    assert run is not None
    artifact = ev.artifact
    if artifact is None:
        return Finding(Status.ERROR, f"The grader found no model.tar.gz for {run.name}.")
    if artifact.files:
        nested = _nested_model(ev)
        if nested is not None:
            return nested
        files = ", ".join(artifact.files[:5])
        return _passed(f"{run.model_data} holds {files}.", files=artifact.files)
    written = [
        p for p in run.observations.get("written", [])
        if not Path(p).is_relative_to(run.paths.root)
    ]
    saved = run.observations.get("saved_models", [])
    elsewhere = [p for p in saved if not Path(p).is_relative_to(run.paths.model_dir)]
    cause = "train.py saved nothing in SM_MODEL_DIR, so model.tar.gz is empty"
    path = (elsewhere or written or [None])[0]
    if path is not None:
        cause = (
            f"train.py saved the model to {_describe_path(path, run)}, outside "
            "SM_MODEL_DIR; SageMaker uploads only the model directory, so model.tar.gz "
            "is empty"
        )
    return Finding(
        Status.FAILED,
        f"{run.model_data} is empty.",
        cause=cause,
        fix="Save with model.save_model(os.path.join(args.model_dir, 'xgboost-model')), "
        "where --model-dir defaults to os.environ['SM_MODEL_DIR'].",
        location=_save_location(ev, path),
        evidence={"written": written[:10]},
    )


def _describe_path(path: str, run: JobRun) -> str:
    code_dir = run.paths.code_dir
    if Path(path).is_relative_to(code_dir):
        return f"the working directory ({Path(path).relative_to(code_dir)})"
    return path


# -- channels_matched ---------------------------------------------------------


@dataclass
class _ChannelProblem:
    cause: str
    fix: str
    location: str | None


def _channels_touched(run: JobRun) -> set[str]:
    touched = set()
    data_dir = run.paths.data_dir
    for path in run.observations.get("opened", []) + run.observations.get("listed", []):
        candidate = Path(path)
        if candidate.is_relative_to(data_dir) and candidate != data_dir:
            touched.add(candidate.relative_to(data_dir).parts[0])
    return touched


def _channels_read(run: JobRun) -> list[str]:
    return [
        key[len("SM_CHANNEL_"):]
        for key in run.observations.get("env_reads", [])
        if key.startswith("SM_CHANNEL_")
    ]


def _channel_problem(ev: Evidence, run: JobRun) -> _ChannelProblem | None:
    """Channel names: those fit() passed against those train.py reads."""
    observations = run.observations
    if not observations:
        return None
    given = list(run.channels)
    given_upper = {c.upper(): c for c in given}
    read = _channels_read(run)
    missing = [name for name in read if name not in given_upper]
    fit_location = ev.notebook_location(r"\.fit\(")
    if missing:
        variable = f"SM_CHANNEL_{missing[0]}"
        others = ", ".join(repr(c) for c in given) or "none"
        unused = [c for c in given if c.upper() not in read]
        rename = (
            f"either pass fit({{'{missing[0].lower()}': ...}}) in the notebook or read "
            f"{sm_contract.channel_variable(unused[0])} in train.py"
            if unused
            else f"pass a '{missing[0].lower()}' channel to fit()"
        )
        return _ChannelProblem(
            cause=(
                f"train.py reads {variable}, but fit() passed no channel named "
                f"'{missing[0].lower()}' (it passed {others}), so "
                f"os.environ.get('{variable}') is None"
            ),
            fix=f"Use the same channel names in both places: {rename}.",
            location=ev.script_location(re.escape(variable)) or fit_location,
        )
    # A script that stopped early may simply not have reached a channel yet.
    got_far = run.exit_code == 0 or bool(observations.get("xgboost_train"))
    touched = _channels_touched(run)
    unread = [c for c in given if c.upper() not in read and c not in touched]
    if unread and got_far:
        return _ChannelProblem(
            cause=(
                f"fit() passed the channel '{unread[0]}', but train.py never reads "
                f"{sm_contract.channel_variable(unread[0])} nor its files"
            ),
            fix=(
                f"Read the '{unread[0]}' data in train.py via "
                f"os.environ['{sm_contract.channel_variable(unread[0])}'], or pass the "
                "channel names the script expects."
            ),
            location=fit_location,
        )
    return None


# -- how train.py read the channels' files ----------------------------------


def _opened(run: JobRun) -> set[Path]:
    return {Path(p) for p in run.observations.get("opened", [])}


def _foreign_file(ev: Evidence, run: JobRun, data: dict[str, ChannelData]
                  ) -> _ChannelProblem | None:
    """A file that is not data, read as data."""
    opened = _opened(run)
    for channel, content in data.items():
        directory = run.paths.channel_dir(channel)
        foreign = [
            f for f in content.files
            if not f.numeric and not f.header and directory / f.name in opened
        ]
        if not foreign or not content.data_files:
            continue
        names = ", ".join(f.name for f in foreign[:3])
        beside = ", ".join(f.name for f in content.data_files[:3])
        variable = sm_contract.channel_variable(channel)
        return _ChannelProblem(
            cause=(
                f"channel '{channel}' holds {names}, which is not CSV data, beside "
                f"{beside}; train.py reads every file of {variable} as CSV, so "
                f"{foreign[0].name} is parsed as rows of data"
            ),
            fix="Read only the data files, e.g. glob.glob(os.path.join(channel_dir, "
            "'*.csv')), and keep other files out of the channel's S3 prefix.",
            location=_first_location(
                ev.script_location, r"listdir|scandir|iterdir", r"glob", r"read_csv"
            ),
        )
    return None


def _partial_read(ev: Evidence, run: JobRun, data: dict[str, ChannelData]
                  ) -> _ChannelProblem | None:
    """A channel with several data files of which the script opened only some."""
    opened = _opened(run)
    for channel, content in data.items():
        files = content.data_files
        directory = run.paths.channel_dir(channel)
        read = [f.name for f in files if directory / f.name in opened]
        if len(files) < 2 or not read or len(read) == len(files):
            continue
        unread = [f.name for f in files if f.name not in read]
        return _ChannelProblem(
            cause=(
                f"channel '{channel}' holds {len(files)} data files "
                f"({', '.join(f.name for f in files[:5])}), but train.py read only "
                f"{', '.join(read[:3])}, so {', '.join(unread[:3])} never reached training"
            ),
            fix="Read and concatenate every CSV file in the channel directory.",
            location=_first_location(
                ev.script_location, r"read_csv\([^)]*\[0\]", r"read_csv", r"listdir|glob"
            ),
        )
    return None


def _matrix_channel(matrix: dict[str, Any], data: dict[str, ChannelData]
                    ) -> tuple[str, ChannelData, int] | None:
    """The channel a DMatrix was built from, by its row count, and how many
    rows short of the channel it is (one per file when a header is assumed)."""
    rows = matrix.get("num_row")
    for lost in (0, 1):
        for channel, content in data.items():
            files = len(content.data_files)
            if content.rows and rows == content.rows - lost * files:
                return channel, content, lost * files
    return None


def _column_like(matrix: dict[str, Any], content: ChannelData) -> int | None:
    low, high = matrix.get("label_min"), matrix.get("label_max")
    if low is None or high is None:
        return None
    for column, (lo, hi) in enumerate(content.ranges):
        if column and _close(lo, low) and _close(hi, high):
            return column
    return None


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 + 1e-4 * abs(b)


def _values(values: list[float]) -> str:
    shown = [str(float(v)) for v in values[:4]]
    return " and ".join(shown) if len(shown) <= 2 else ", ".join(shown) + ", ..."


def _layout_problem(ev: Evidence, run: JobRun, data: dict[str, ChannelData]
                    ) -> _ChannelProblem | None:
    """The DMatrices train.py built against the course layout of the files it
    was given: no header, label in column 0, features after it."""
    objective = str(
        run.user_hyperparameters.get("objective")
        or (_last_call(run).get("params") or {}).get("objective")
        or ""
    )
    label_line = (r"iloc|drop\(|label",)
    for matrix in run.observations.get("dmatrices") or []:
        found = _matrix_channel(matrix, data)
        if found is None:
            continue
        channel, content, lost = found
        if lost:
            return _ChannelProblem(
                cause=(
                    f"train.py built a DMatrix of {matrix['num_row']} rows from channel "
                    f"'{channel}', whose files hold {content.rows}: read_csv without "
                    "header=None takes the first row of each file as a header, so that "
                    "example is lost and its values become the column names"
                ),
                fix="Read the files with pd.read_csv(path, header=None): the course data "
                "has no header row.",
                location=_first_location(
                    ev.script_location, r"read_csv\((?![^)]*header\s*=)", r"read_csv"
                ),
            )
        if matrix.get("num_col") == content.columns:
            return _ChannelProblem(
                cause=(
                    f"train.py gives xgboost all {content.columns} columns of channel "
                    f"'{channel}' as features, the label (column 0) among them: the model "
                    f"learns from the answer, and expects {content.columns} features "
                    f"where the course data has {content.columns - 1}"
                ),
                fix="Split the label off the features: X = frame.iloc[:, 1:], "
                "y = frame.iloc[:, 0].",
                location=_first_location(ev.script_location, *label_line),
            )
        values = matrix.get("label_values") or []
        distinct = matrix.get("label_distinct") or len(values)
        known = set(content.labels)
        if not values or (set(values) <= known and distinct <= len(known)):
            continue
        column = _column_like(matrix, content)
        if column is not None:
            last = " (the last column)" if column == content.columns - 1 else ""
            cause = (
                f"the labels train.py gives xgboost for channel '{channel}' take "
                f"{distinct} values from {matrix['label_min']:.4g} to "
                f"{matrix['label_max']:.4g}: they are column {column}{last} of the file, "
                "a feature, not column 0, which holds the 0/1 diagnosis"
            )
            fix = ("Take the label from column 0 and the features from the columns after "
                   "it: y = frame.iloc[:, 0], X = frame.iloc[:, 1:].")
        else:
            cause = (
                f"the labels train.py gives xgboost for channel '{channel}' are "
                f"{_values(values)}, but column 0 of the data holds "
                f"{_values(content.labels)}"
            )
            low, high = matrix.get("label_min", 0), matrix.get("label_max", 0)
            if objective.startswith("binary:") and (low < 0 or high > 1):
                cause += f"; {objective} needs labels in [0, 1], so xgboost refuses them"
            fix = "Use column 0 as it is: its labels are already 0 and 1."
        return _ChannelProblem(
            cause=cause,
            fix=fix,
            location=_first_location(
                ev.script_location, r"iloc\[\s*:\s*,\s*0\s*\]\s*[-+*/]",
                r"iloc\[\s*:\s*,\s*-1\s*\]", *label_line,
            ),
        )
    return None


def _data_problem(ev: Evidence, run: JobRun) -> _ChannelProblem | None:
    """How train.py read the files its channels held."""
    if not run.observations:
        return None
    data = ev.channel_data(run)
    return (
        _foreign_file(ev, run, data)
        or _partial_read(ev, run, data)
        or _layout_problem(ev, run, data)
    )


def _validation_in_training(ev: Evidence, run: JobRun
                            ) -> tuple[int, str, int, str, int] | None:
    """A DMatrix as large as two channels together: the model trains on the
    rows it is later validated on."""
    data = ev.channel_data(run)
    validation = [c for c in data if _is_validation_name(c) and data[c].rows]
    training = [c for c in data if not _is_validation_name(c) and data[c].rows]
    if not validation or not training:
        return None
    train, held = training[0], validation[0]
    both = data[train].rows + data[held].rows
    for matrix in run.observations.get("dmatrices") or []:
        if matrix.get("num_row") == both:
            return both, train, data[train].rows, held, data[held].rows
    return None


def check_channels_matched(ev: Evidence) -> Finding:
    # Known gap: a channel counts as used once its SM_CHANNEL_* variable is
    # read, even if the script then reads another channel's files.
    run = ev.graded_run
    if run is None:
        return _no_job(ev) if not ev.notebook.completed else _skipped(
            "No training job ran.", "job_completed"
        )
    channels = run.channels
    if not run.observations:
        if run.status == "Stopped":
            return _skipped(
                f"Training job {run.name} was stopped before what train.py read could be "
                "recorded.",
                "job_completed",
            )
        return _skipped(
            f"Training job {run.name} ended before train.py ran.", "job_completed"
        )
    evidence = {"channels": channels, "read": run.observations.get("env_reads", [])}
    if (
        run.status == "Failed"
        and not _channels_read(run)
        and not _channels_touched(run)
    ):
        return _skipped(
            f"train.py stopped before it read any channel of {run.name}.", "job_completed"
        )
    problem = _channel_problem(ev, run)
    if problem:
        return Finding(
            Status.FAILED,
            "The channels given to fit() are not the ones train.py reads.",
            cause=problem.cause,
            fix=problem.fix,
            location=problem.location,
            evidence=evidence,
        )
    expected = {"train", "validation"}
    absent = sorted(expected - set(channels))
    if absent:
        return Finding(
            Status.FAILED,
            f"fit() passed {sorted(channels)}, without {', '.join(absent)}.",
            cause=f"the assignment trains on 'train' and watches 'validation'; "
            f"{' and '.join(absent)} was not passed",
            fix="Call fit({'train': train_input, 'validation': validation_input}).",
            location=ev.notebook_location(r"\.fit\("),
            evidence=evidence,
        )
    misread = _data_problem(ev, run)
    if misread:
        return Finding(
            Status.FAILED,
            "train.py does not read the channels' data as the course lays it out.",
            cause=misread.cause,
            fix=misread.fix,
            location=misread.location,
            evidence=evidence,
            mistake="data",
        )
    names = ", ".join(sorted(channels))
    return _passed(f"fit() passed {names}; train.py read each of them.", **evidence)


# -- model scores shared by the remaining checks -----------------------------


def _requires_model(ev: Evidence, *, need_auc: bool = True
                    ) -> tuple[dict[str, Any] | None, Finding | None]:
    _run, skipped = _requires_completed_job(ev)
    if skipped:
        return None, skipped
    artifact = ev.artifact
    if artifact is None or not artifact.files:
        return None, _skipped("There is no model artifact to judge.", "artifact_saved")
    if artifact.model is None or not artifact.scores:
        return None, _skipped("The model could not be loaded.", "model_loads")
    scores = artifact.scores
    unscored = not scores.get("auc") if need_auc else scores.get("rounds") is None
    if scores.get("errors") and unscored:
        return None, Finding(
            Status.FAILED,
            "The model could not be evaluated on the course data.",
            cause="; ".join(scores["errors"]),
            fix="Train on the features exactly as given: label in column 0, "
            "features in the columns after it.",
            location=ev.script_location(r"iloc|drop\(|label"),
            mistake=_data_mistake(ev),
        )
    return scores, None


def _data_mistake(ev: Evidence) -> str | None:
    run = ev.graded_run
    return "data" if run is not None and _data_problem(ev, run) else None


# -- hyperparameters_honoured -----------------------------------------------

_BOOSTER_PARAMS = {
    "max_depth": ("tree", "max_depth", int),
    "eta": ("tree", "eta", float),
    "learning_rate": ("tree", "eta", float),
    "gamma": ("tree", "gamma", float),
    "min_child_weight": ("tree", "min_child_weight", float),
    "subsample": ("tree", "subsample", float),
    "colsample_bytree": ("tree", "colsample_bytree", float),
    "lambda": ("tree", "lambda", float),
    "alpha": ("tree", "alpha", float),
    "objective": ("objective", "name", str),
}
_ROUND_NAMES = {"num_round", "num_rounds", "num_boost_round", "n_estimators"}


def _booster_value(config: dict[str, Any], where: str, key: str) -> Any:
    learner = config.get("learner", {})
    if where == "objective":
        return learner.get("objective", {}).get("name")
    booster = learner.get("gradient_booster", {})
    tree = booster.get("tree_train_param") or booster.get("updater", {}).get(
        "grow_colmaker", {}
    ).get("train_param", {})
    return tree.get(key)


def _same(sent: Any, actual: Any, kind: type) -> bool:
    try:
        if kind is str:
            return str(sent) == str(actual)
        return abs(float(sent) - float(actual)) <= 1e-6 * max(1.0, abs(float(sent)))
    except (TypeError, ValueError):
        return False


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _flag(key: str) -> str:
    """The command-line flag the toolkit turns a hyperparameter key into."""
    return sm_contract.to_cmd_args({key: ""})[0]


#: The variables a script can take its hyperparameters from instead of argparse,
#: named by the container contract: SM_HPS, SM_TRAINING_ENV and SM_HP_<KEY>.
_HPS_VARIABLES = frozenset(sm_contract.to_env_vars({"hps": {}, "training_env": {}}))
_HP_PREFIX = next(iter(sm_contract.to_env_vars({"hp_": ""})))


@dataclass
class _ArgumentProblem:
    """A hyperparameter that cannot reach training the way train.py parses it."""

    cause: str
    fix: str
    location: str | None
    #: The job failed because of it.
    stopped: bool


def _argument_problem(ev: Evidence, run: JobRun) -> _ArgumentProblem | None:
    parsed = run.observations.get("argparse") or {}
    reads = run.observations.get("env_reads", [])
    if not parsed or any(r in _HPS_VARIABLES or r.startswith(_HP_PREFIX) for r in reads):
        return None  # the script takes its hyperparameters from the environment
    declared = parsed.get("declared", [])
    error = str(parsed.get("error") or "")
    unknown = parsed.get("unknown") or []
    for key, value in sorted(run.user_hyperparameters.items()):
        flag = _flag(key)
        stopped, ignored = flag in error.split(), flag in unknown
        if flag in declared or not (stopped or ignored):
            continue
        outcome = (
            f"so parse_args() stopped the job ({error})" if stopped
            else "so parse_known_args() set it aside and train.py used its default"
        )
        sent = f"{flag} {value}"
        sent_at = ev.notebook_location(rf"['\"]{re.escape(key)}['\"]\s*:")
        if len(key) == 1 and f"--{key}" in declared:
            return _ArgumentProblem(
                cause=(
                    f"SageMaker passes the one-letter hyperparameter '{key}' as {sent}, "
                    f"with one dash, but train.py declares only --{key}, {outcome}"
                ),
                fix=f"Declare both spellings, parser.add_argument('-{key}', '--{key}', ...), "
                "or give the hyperparameter a longer name in the estimator and train.py.",
                location=ev.script_location(rf"add_argument\(\s*['\"]--{re.escape(key)}['\"]")
                or sent_at,
                stopped=stopped,
            )
        longs = [d for d in declared if d.startswith("--")]
        near = difflib.get_close_matches(flag, longs, n=1, cutoff=0.6)
        if near:
            return _ArgumentProblem(
                cause=(
                    f"the estimator sends '{key}' (as {sent}) but train.py's argparse "
                    f"declares {near[0]}, {outcome}"
                ),
                fix=f"Name the hyperparameter '{near[0][2:]}' in the estimator, or declare "
                f"{flag} in train.py.",
                location=sent_at,
                stopped=stopped,
            )
        return _ArgumentProblem(
            cause=(
                f"the estimator sends '{key}' (as {sent}) but train.py's argparse does not "
                f"declare {flag}, {outcome}"
            ),
            fix=f"Declare parser.add_argument('{flag}', ...) in train.py and use it, or "
            f"stop sending '{key}'.",
            location=sent_at,
            stopped=stopped,
        )
    return _round_type_problem(ev, run, parsed)


def _round_type_problem(ev: Evidence, run: JobRun, parsed: dict[str, Any]
                        ) -> _ArgumentProblem | None:
    """A number of rounds parsed as a float, which xgboost.train cannot count."""
    rounds = _last_call(run).get("num_boost_round")
    exception = run.observations.get("exception") or {}
    refused = "cannot be interpreted as an integer" in str(exception.get("message", ""))
    if not (isinstance(rounds, float) or refused):
        return None
    declared = parsed.get("declared", [])
    for dest, kind in (parsed.get("types") or {}).items():
        if dest not in _ROUND_NAMES or kind != "float":
            continue
        dashed = "--" + dest.replace("_", "-")
        flag = dashed if dashed in declared else f"--{dest}"
        error = f" ({exception['type']}: {exception['message']})" if refused else ""
        return _ArgumentProblem(
            cause=(
                f"train.py declares {flag} with type=float, so xgb.train gets "
                f"num_boost_round={rounds!r}, a float, where xgboost counts rounds with an "
                f"int{error}"
            ),
            fix=f"Declare parser.add_argument('{flag}', type=int, ...).",
            location=ev.script_location(rf"add_argument\(\s*['\"]{re.escape(flag)}['\"]"),
            stopped=refused,
        )
    return None


def _literal_in_script(ev: Evidence, name: str, value: Any) -> tuple[int, str] | None:
    """The script line that writes ``name`` as a literal (not from args)."""
    pattern = re.compile(
        rf"""^[^#]*(?:['"]{re.escape(name)}['"]\s*:|\b{re.escape(name)}\s*=)\s*"""
        r"""(?!args\b)([-+\w.'"]+)"""
    )
    for number, line in enumerate(ev.script_text.splitlines(), 1):
        match = pattern.search(line)
        if not match:
            continue
        literal = match.group(1).strip("'\"")
        if _is_number(literal) and (value is None or _same(literal, value, float)):
            return number, line.strip().rstrip(",")
    return None


def _hyperparameter_cause(
    ev: Evidence, run: JobRun, wrong: list[tuple[str, Any, Any]]
) -> tuple[str, str, str | None]:
    key, sent = wrong[0][0], wrong[0][1]
    parsed = run.observations.get("argparse") or {}
    declared = parsed.get("declared", [])
    flag = _flag(key)
    normal = key.replace("-", "_")
    where = ev.script_location(re.escape(key)) or ev.script_location(re.escape(normal))
    if parsed and flag not in declared:
        return (
            f"the estimator sends '{key}' but train.py's argparse does not declare {flag}",
            f"Declare parser.add_argument('{flag}', ...) and use it when training.",
            where,
        )
    call = _last_call(run)
    params = call.get("params", {})
    if normal in _ROUND_NAMES and isinstance(params, dict) and normal in params:
        return (
            (f"train.py puts {normal} inside the booster params, where xgboost ignores it; "
             "the number of rounds comes only from num_boost_round"),
            f"Pass num_boost_round=args.{normal} to xgb.train.",
            ev.script_location(rf"['\"]{re.escape(normal)}['\"]\s*:") or where,
        )
    if normal in _ROUND_NAMES:
        literal = _literal_in_script(ev, "num_boost_round", call.get("num_boost_round"))
        if literal:
            return (
                (f"train.py calls xgb.train with {literal[1]}, a number hard-coded in the "
                 f"script, so the estimator's {key} ({sent}) never reaches training"),
                f"Pass num_boost_round=args.{normal} to xgb.train.",
                f"{ev.script_name} line {literal[0]}",
            )
    namespace = parsed.get("namespace") or {}
    config = (call.get("config") or {})
    hard_coded = []
    for wrong_key, wrong_sent, _ in wrong:
        wrong_normal = wrong_key.replace("-", "_")
        if wrong_normal not in _BOOSTER_PARAMS or wrong_normal == "objective":
            continue
        if not _same(namespace.get(wrong_normal), wrong_sent, float):
            continue
        trained = _booster_value(config, "tree", _BOOSTER_PARAMS[wrong_normal][1])
        literal = _literal_in_script(ev, wrong_normal, trained)
        if literal:
            hard_coded.append((literal[0], wrong_key, wrong_sent, literal[1]))
    if hard_coded:
        hard_coded.sort()
        parsed_text = " and ".join(f"--{k} {s}" for _, k, s, _ in hard_coded)
        written = ", ".join(f"{text} (line {n})" for n, _, _, text in hard_coded)
        return (
            (f"train.py parses {parsed_text} but trains with values hard-coded in the "
             f"script: {written}"),
            ("Build the booster params from args, e.g. {'max_depth': args.max_depth, "
             "'eta': args.eta, ...}."),
            f"{ev.script_name} line {hard_coded[0][0]}",
        )
    return (
        (f"train.py parses {flag} but does not pass it to xgboost (a value is "
         "hard-coded or another argument is used)"),
        f"Use args.{normal} when building the xgboost parameters.",
        where,
    )


def check_hyperparameters_honoured(ev: Evidence) -> Finding:
    run = ev.graded_run
    problem = _argument_problem(ev, run) if run is not None and run.observations else None
    if problem is not None:
        return Finding(
            Status.FAILED,
            "A hyperparameter the estimator sends does not reach training as sent.",
            cause=problem.cause,
            fix=problem.fix,
            location=problem.location,
        )
    scores, skipped = _requires_model(ev, need_auc=False)
    if skipped:
        return skipped
    assert scores is not None and run is not None
    # Training parameters are not saved in a model file: take them from the
    # booster's own config and the call train.py made, both recorded in the
    # job, and cross-check what the artifact does show (objective, depth, rounds).
    call = _last_call(run)
    trained_config = call.get("config") or {}
    artifact_config = scores.get("config", {})
    rounds = scores.get("rounds")
    deepest = scores.get("max_tree_depth")
    attributes = scores.get("attributes") or {}
    checked, wrong = [], []
    for key, sent in sorted(run.user_hyperparameters.items()):
        normal = key.replace("-", "_")
        if normal in _BOOSTER_PARAMS:
            where, field_name, kind = _BOOSTER_PARAMS[normal]
            config = artifact_config if where == "objective" else trained_config
            actual = _booster_value(config, where, field_name)
            checked.append(key)
            too_deep = normal == "max_depth" and deepest is not None and _is_number(sent)
            if too_deep and deepest > float(sent):
                wrong.append((key, sent, f"trees {deepest} deep"))
                continue
            if actual is not None and not _same(sent, actual, kind):
                wrong.append((key, sent, actual))
        elif normal in _ROUND_NAMES:
            checked.append(key)
            if not _is_number(sent):
                continue
            asked = int(float(sent))
            given = call.get("num_boost_round")
            if _is_number(given) and int(float(given)) != asked:
                wrong.append((key, sent, f"xgb.train(num_boost_round={given})"))
                continue
            early_stopped = "best_iteration" in attributes
            stopped_early = early_stopped and rounds is not None and rounds < asked
            if rounds != asked and not stopped_early:
                wrong.append((key, sent, f"{rounds} rounds"))
    if not checked:
        return Finding(
            Status.FAILED,
            "The estimator sent no hyperparameter the model could be checked against.",
            cause="hyperparameters={...} names none of max-depth, eta, objective, num-round",
            fix="Pass the booster's settings through the estimator's hyperparameters.",
            location=ev.notebook_location(r"hyperparameters"),
        )
    if wrong:
        cause, fix, location = _hyperparameter_cause(ev, run, wrong)
        listed = "; ".join(f"{k}: sent {s}, model has {a}" for k, s, a in wrong)
        return Finding(
            Status.FAILED,
            f"The trained model does not use the estimator's hyperparameters ({listed}).",
            cause=cause,
            fix=fix,
            location=location,
            evidence={"mismatches": [list(map(str, w)) for w in wrong]},
        )
    return _passed(
        f"The model was trained with the estimator's {', '.join(checked)}.", checked=checked
    )


# -- metrics_logged -----------------------------------------------------------


def _literal_part(regex: str) -> str:
    return re.sub(r"\(.*?\)|[\\\[\]^$.*+?{}|]", " ", regex).strip()


def _nearest_line(regex: str, lines: list[str]) -> str | None:
    literal = _literal_part(regex)
    if not literal or not lines:
        return None
    scored = [
        (difflib.SequenceMatcher(None, literal, line[:200]).ratio(), line)
        for line in lines[-500:]
    ]
    best = max(scored)
    return best[1][:200] if best[0] > 0.3 else None


def _unmatched_cause(ev: Evidence, run: JobRun, definition: dict[str, str]
                     ) -> tuple[str, str, str | None, str | None]:
    """Why a metric regex matched nothing: (cause, fix, location, mistake)."""
    name, regex = definition.get("Name", ""), definition.get("Regex", "")
    evals = _last_call(run).get("evals") or []
    if _is_validation_name(name) and evals and not any(map(_is_validation_name, evals)):
        listed = ", ".join(repr(e) for e in evals)
        return (
            (f"xgb.train's evals lists only {listed}, so xgboost never prints a "
             f"validation-auc line for the regex {regex!r} to match"),
            ("Pass evals=[(dtrain, 'train'), (dval, 'validation')] to xgb.train, "
             "validation last: xgboost prints both AUCs each round, and early stopping "
             "watches the last."),
            _evals_location(ev),
            "evals",
        )
    nearest = _nearest_line(regex, run.log_lines)
    near_text = f"; the nearest log line is {nearest!r}" if nearest else ""
    return (
        f"the regex {regex!r} matches no line the job printed{near_text}",
        ("Copy the text around the number from the log into the regex and capture "
         "the number with ([0-9.]+)."),
        ev.notebook_location(re.escape(regex[:20])) if regex else None,
        None,
    )


def _regex_prefix(regex: str) -> str:
    """The literal text a metric regex starts with, e.g. 'validation-auc:'."""
    literal, index = [], 0
    while index < len(regex):
        char = regex[index]
        if char == "\\" and index + 1 < len(regex) and not regex[index + 1].isalnum():
            literal.append(regex[index + 1])
            index += 2
            continue
        if char == "\\" or char in "()[]{}.*+?^$|":
            break
        literal.append(char)
        index += 1
    return "".join(literal)


def _reported_validation_auc(run: JobRun) -> tuple[str, float] | None:
    for name, values in run.metric_values.items():
        if _is_validation_name(name) and "auc" in name.lower() and values:
            return name, values[-1]
    return None


def _misleading_metric(ev: Evidence, run: JobRun) -> Finding | None:
    """A logged validation metric that does not measure the saved model on
    the validation data."""
    reported = _reported_validation_auc(run)
    scores = ev.artifact.scores if ev.artifact is not None else None
    if reported is None or not scores or _data_problem(ev, run):
        return None
    name, value = reported
    both = _validation_in_training(ev, run)
    if both is not None:
        rows, train, train_rows, held, held_rows = both
        return Finding(
            Status.FAILED,
            f"The logged {name} is measured on rows the model was trained on.",
            cause=(
                f"train.py trains on {rows} rows, the {train_rows} of channel '{train}' "
                f"plus the {held_rows} of '{held}', so the {name} the job logs "
                f"({value:.4f}) scores rows the model was trained on and says nothing "
                "about new data"
            ),
            fix=f"Train on the '{train}' channel only; keep '{held}' for evals and early "
            "stopping.",
            location=_first_location(
                ev.script_location, r"concat\(.*val", r"dtrain\s*=", r"DMatrix\("
            ),
        )
    auc = scores.get("auc") or {}
    train_auc, validation = auc.get("train"), auc.get("validation")
    if validation is None:
        return None
    regex = next((d.get("Regex", "") for d in run.metric_definitions
                  if d.get("Name") == name), "")
    prefix = _regex_prefix(regex)
    printed = _first_location(
        ev.script_location, rf"print\(.*{re.escape(prefix)}" if prefix else r"$^",
        r"print\(.*val",
    )
    # Printed to five decimals: equal to the train AUC, well apart from validation.
    on_train = train_auc is not None and abs(value - train_auc) <= 5e-5
    if on_train and abs(value - validation) > 5e-4:
        return Finding(
            Status.FAILED,
            f"The logged {name} is the model's AUC on the training data.",
            cause=(
                f"the last {name} the job logged, {value:.5f}, is the model's AUC on the "
                f"train set ({train_auc:.5f}); on the validation set it scores "
                f"{validation:.5f}"
            ),
            fix="Compute the validation metric on the validation data (dval, y_val), or "
            "let xgb.train print it through evals.",
            location=printed,
        )
    drift = ev.rubric.thresholds.max_reported_auc_drift
    if abs(value - validation) > drift:
        return Finding(
            Status.FAILED,
            f"The logged {name} ({value:.4f}) is not what the saved model scores "
            f"({validation:.4f}).",
            cause=(
                f"the last {name} the job logged differs by more than {drift} from the "
                "saved model's AUC on the validation data, recomputed by the grader"
            ),
            fix="Log the metric of the model you save, on the validation data: let "
            "xgb.train print it through evals.",
            location=printed,
        )
    return None


def check_metrics_logged(ev: Evidence) -> Finding:
    run = ev.graded_run
    if run is None:
        return _skipped("No training job ran.", "job_completed" if ev.notebook.completed
                        else "notebook_runs")
    if not run.log_lines:
        return _skipped(f"Training job {run.name} wrote no log.", "job_completed")
    definitions = run.metric_definitions
    location = ev.notebook_location(r"XGBoost\(|PyTorch\(|Estimator\(")
    if run.status == "Failed" and definitions and not any(run.metric_values.values()):
        return _skipped(
            f"Training job {run.name} failed before it logged any metric.", "job_completed"
        )
    sample = next((line for line in run.log_lines if "validation-" in line), None)
    if not definitions:
        hint = f" The log has lines like {sample.strip()!r}." if sample else ""
        return Finding(
            Status.FAILED,
            "The estimator has no metric_definitions, so no metric reaches CloudWatch "
            "and TrainingJobAnalytics has nothing to show.",
            cause="metric_definitions was not given to the estimator",
            fix="Add metric_definitions=[{'Name': 'train:auc', 'Regex': "
            "r'train-auc:([0-9.]+)'}, {'Name': 'validation:auc', 'Regex': "
            "r'validation-auc:([0-9.]+)'}]." + hint,
            location=location,
        )
    unmatched = [d for d in definitions if not run.metric_values.get(d.get("Name", ""))]
    invalid = run.metric_errors
    if invalid:
        name, error = next(iter(invalid.items()))
        return Finding(
            Status.FAILED,
            f"Metric {name!r} has a regex Python cannot compile.",
            cause=f"metric {name!r}: {error}",
            fix="Write the regex with one capture group around the number, e.g. "
            "r'validation-auc:([0-9.]+)'.",
            location=location,
        )
    matched = [d["Name"] for d in definitions if run.metric_values.get(d.get("Name", ""))]
    if unmatched:
        first = unmatched[0]
        cause, fix, where, mistake = _unmatched_cause(ev, run, first)
        return Finding(
            Status.FAILED,
            f"Metric {first.get('Name')!r} matched nothing in the training log.",
            cause=cause,
            fix=fix,
            location=where or location,
            evidence={"matched": matched},
            mistake=mistake,
        )
    lowered = [name.lower() for name in matched]
    has_train = any("train" in name for name in lowered)
    has_validation = any("valid" in name or "val:" in name for name in lowered)
    if not (has_train and has_validation):
        missing = "validation" if has_train else "training"
        return Finding(
            Status.FAILED,
            f"Only {', '.join(matched)} is logged; no {missing} metric.",
            cause=f"metric_definitions has no {missing} metric",
            fix="Define one metric for the train set and one for the validation set.",
            location=location,
            evidence={"matched": matched},
        )
    misleading = _misleading_metric(ev, run)
    if misleading is not None:
        return misleading
    counts = {name: len(run.metric_values[name]) for name in matched}
    summary = ", ".join(f"{name} ({count} values)" for name, count in counts.items())
    return _passed(f"Logged to CloudWatch: {summary}.", counts=counts)


# -- model_loads --------------------------------------------------------------

_TREE_DUMP = re.compile(r"^\s*(booster\[\d+\]:\s*)?\d+:\[[^\]<]+<")


def check_model_loads(ev: Evidence) -> Finding:
    _run, skipped = _requires_completed_job(ev)
    if skipped:
        return skipped
    artifact = ev.artifact
    if artifact is None or not artifact.files:
        return _skipped("There is no model artifact to load.", "artifact_saved")
    model = artifact.model
    files = ", ".join(artifact.files[:5])
    if model is None:
        other = artifact.other_files[0] if artifact.other_files else {}
        name = other.get("name", "the file")
        if _TREE_DUMP.match(other.get("head", "")):
            return Finding(
                Status.FAILED,
                f"model.tar.gz holds a text dump of the trees ({name}), not a model.",
                cause=f"{name} holds the text that Booster.get_dump() returns, a listing "
                "of the trees for people to read; xgboost cannot load a model from it",
                fix="Save the booster itself: "
                "model.save_model(os.path.join(args.model_dir, 'xgboost-model')).",
                location=_first_location(ev.script_location, r"get_dump|dump_model",
                                         r"\.write\("),
            )
        detail = other.get("native_error") or "; ".join(artifact.errors) or "unknown format"
        return Finding(
            Status.FAILED,
            f"xgboost cannot load anything in model.tar.gz (it holds {files}).",
            cause=f"{name} is not a model xgboost can read: {detail}",
            fix="Save the booster with model.save_model(path) in SM_MODEL_DIR.",
            location=ev.script_location(r"save_model|pickle|joblib"),
        )
    if model.get("loaded_by") == "pickle.load":
        return Finding(
            Status.FAILED,
            f"{model['name']} is a pickle, not an xgboost model file.",
            cause="train.py pickles the booster; a pickle only loads with the same "
            "library versions and runs code when opened",
            fix="Use model.save_model(os.path.join(args.model_dir, 'xgboost-model')).",
            location=ev.script_location(r"pickle\.dump|joblib\.dump"),
            evidence={"file": model["name"]},
        )
    return _passed(
        f"xgboost loaded {model['name']} ({model['format']}) in a separate process.",
        file=model["name"],
        format=model["format"],
    )


# -- auc_threshold ------------------------------------------------------------


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def check_auc_threshold(ev: Evidence) -> Finding:
    scores, skipped = _requires_model(ev)
    if skipped:
        return skipped
    assert scores is not None
    thresholds = ev.rubric.thresholds
    auc = scores.get("auc", {})
    validation, holdout = auc.get("validation"), auc.get("holdout")
    reference = ev.reference_scores.get("holdout_auc")
    evidence = {"validation_auc": validation, "holdout_auc": holdout, "reference": reference}
    problems = []
    if validation is None or validation < thresholds.min_validation_auc:
        problems.append(
            f"validation AUC {_fmt(validation)} is below {thresholds.min_validation_auc}"
        )
    if holdout is None or holdout < thresholds.min_holdout_auc:
        problems.append(f"holdout AUC {_fmt(holdout)} is below {thresholds.min_holdout_auc}")
    gap = thresholds.max_gap_to_reference
    if reference is not None and holdout is not None and holdout < reference - gap:
        problems.append(
            f"holdout AUC {_fmt(holdout)} is more than {gap} below the reference's "
            f"{_fmt(reference)}"
        )
    drift = ""
    run = ev.graded_run
    reported = _reported_validation_auc(run) if run else None
    drifted = (
        reported is not None and validation is not None and not _data_mistake(ev)
        and abs(reported[1] - validation) > thresholds.max_reported_auc_drift
    )
    if drifted:
        assert reported is not None and validation is not None
        drift = (
            f" The job logged a validation AUC of {reported[1]:.4f}, but its own "
            f"artifact scores {validation:.4f} on the same data; the grade uses "
            f"{validation:.4f}."
        )
        evidence["reported_validation_auc"] = reported[1]
    if problems:
        return Finding(
            Status.FAILED,
            "The model does not reach the AUC bar: " + "; ".join(problems) + "." + drift,
            cause=problems[0] + (drift and " (the logged metric is misleading)"),
            fix="Check the data reading (label in column 0, no header) and the "
            "hyperparameters; the reference reaches "
            f"{_fmt(reference)} on the holdout.",
            evidence=evidence,
            mistake=_data_mistake(ev),
        )
    return _passed(
        f"AUC recomputed by the grader: validation {_fmt(validation)}, holdout "
        f"{_fmt(holdout)} (reference {_fmt(reference)}).{drift}",
        **evidence,
    )


# -- model_learning -----------------------------------------------------------


def _early_stopping_watch(ev: Evidence, run: JobRun) -> Finding | None:
    """Early stopping that follows the training set: xgboost watches the last
    entry of evals."""
    call = _last_call(run)
    patience, evals = call.get("early_stopping_rounds"), call.get("evals") or []
    if not patience or not evals or _is_validation_name(evals[-1]):
        return None
    last = evals[-1]
    listed = ", ".join(repr(e) for e in evals)
    watched_validation = any(map(_is_validation_name, evals))
    if watched_validation:
        cause = (
            f"xgb.train stops early on the last entry of evals, which is '{last}' "
            f"(evals: {listed}), so early stopping follows the training AUC, which only "
            "rises, not the validation AUC"
        )
    else:
        cause = (
            f"evals holds only {listed}, so early stopping (early_stopping_rounds="
            f"{patience}) follows the training AUC, which only rises, and never sees the "
            "validation data"
        )
    return Finding(
        Status.FAILED,
        f"Early stopping watched '{last}', not the validation set.",
        cause=cause,
        fix="List the validation set last: evals=[(dtrain, 'train'), (dval, 'validation')]; "
        "early stopping watches the last entry.",
        location=_evals_location(ev),
        mistake=None if watched_validation else "evals",
    )


def check_model_learning(ev: Evidence) -> Finding:
    scores, skipped = _requires_model(ev)
    if skipped:
        return skipped
    assert scores is not None
    run = ev.graded_run
    watch = _early_stopping_watch(ev, run) if run is not None else None
    if watch is not None:
        return watch
    curve = scores.get("curve", {}).get("validation") or []
    if len(curve) < 2:
        return Finding(
            Status.FAILED,
            f"The model has {len(curve)} boosting round(s); learning cannot be seen.",
            cause="training stopped after the first round",
            fix="Train for more rounds (num-round) and let early stopping pick the best.",
            mistake=_data_mistake(ev),
        )
    first, best, final = curve[0], max(curve), curve[-1]
    gain = final - first
    minimum = ev.rubric.thresholds.min_learning_gain
    evidence = {"first_round_auc": first, "final_auc": final, "best_auc": best}
    if final <= 0.5:
        return Finding(
            Status.FAILED,
            f"Validation AUC is {final:.4f}: no better than guessing.",
            cause="the model has not learned to separate the classes; the label may be "
            "read from the wrong column or leaked",
            fix="Take the label from column 0 and the features from the columns after it.",
            location=ev.script_location(r"iloc|label"),
            evidence=evidence,
            mistake=_data_mistake(ev),
        )
    if gain < minimum or (minimum == 0 and final <= first and best <= first):
        return Finding(
            Status.FAILED,
            f"Validation AUC does not improve over the rounds ({first:.4f} after round 1, "
            f"{final:.4f} at the end).",
            cause="later boosting rounds add nothing on the validation data",
            fix="Check eta and max-depth, and that the validation data is read correctly.",
            evidence=evidence,
            mistake=_data_mistake(ev),
        )
    return _passed(
        f"Validation AUC rises from {first:.4f} after round 1 to {final:.4f} after "
        f"{len(curve)} rounds (recomputed from the model).",
        **evidence,
    )


CHECKS: dict[str, Callable[[Evidence], Finding]] = {
    "notebook_runs": check_notebook_runs,
    "job_completed": check_job_completed,
    "artifact_saved": check_artifact_saved,
    "channels_matched": check_channels_matched,
    "hyperparameters_honoured": check_hyperparameters_honoured,
    "metrics_logged": check_metrics_logged,
    "model_loads": check_model_loads,
    "auc_threshold": check_auc_threshold,
    "model_learning": check_model_learning,
}


_JOB_SIDE = ("job_completed", "channels_matched", "artifact_saved", "metrics_logged",
             "model_loads")


def _link_notebook_failure(findings: dict[str, Finding], ev: Evidence) -> None:
    """A notebook that fails after fit(), where the job side failed too, fails
    because of that: point its verdict at the job-side cause, unless the
    notebook's own error was explained from evidence."""
    notebook = findings.get("notebook_runs")
    failure = ev.notebook.failure
    if notebook is None or notebook.status is not Status.FAILED or notebook.caused_by:
        return
    if failure is None or not ev.runs or notebook.evidence.get("explained"):
        return
    for criterion in _JOB_SIDE:
        finding = findings.get(criterion)
        if finding is not None and finding.status is Status.FAILED:
            notebook.caused_by = finding.caused_by or criterion
            root = finding.cause or finding.message
            notebook.cause = f"{notebook.cause}, a consequence of: {root}"
            return


def _link_same_mistakes(findings: dict[str, Finding]) -> None:
    """The first failed criterion naming a mistake is its root; later ones
    that name it too point there."""
    roots: dict[str, str] = {}
    for criterion, finding in findings.items():
        if finding.status is not Status.FAILED or finding.mistake is None:
            continue
        root = roots.setdefault(finding.mistake, criterion)
        if root != criterion and finding.caused_by is None:
            finding.caused_by = root


def judge(ev: Evidence) -> list[Verdict]:
    """Every criterion of the rubric, in its order, judged from ``ev``."""
    findings: dict[str, Finding] = {}
    for criterion in ev.rubric.criteria:
        try:
            findings[criterion.id] = CHECKS[criterion.id](ev)
        except Exception as exc:  # a grader fault must not cost the student a verdict
            findings[criterion.id] = Finding(
                Status.ERROR,
                f"The grader could not judge this criterion ({type(exc).__name__}: {exc}).",
                fix="Report this to the course staff; it is not your mistake.",
            )
    _link_same_mistakes(findings)
    _link_notebook_failure(findings, ev)
    verdicts = []
    for criterion in ev.rubric.criteria:
        finding = findings[criterion.id]
        points = criterion.points if finding.status is Status.PASSED else 0.0
        verdicts.append(
            Verdict(
                id=criterion.id,
                title=criterion.title,
                status=finding.status,
                points=points,
                max_points=criterion.points,
                message=finding.message,
                cause=finding.cause,
                fix=finding.fix,
                location=finding.location,
                hidden=criterion.hidden,
                caused_by=finding.caused_by,
                evidence=finding.evidence,
            )
        )
    return verdicts


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
