"""The criteria, each judged from evidence the grader gathered itself.

A check returns a :class:`Finding`: its status, a one-line message, and for
anything short of a pass the cause in the student's terms, the fix and
where in their notebook or script to look. When an earlier failure leaves
nothing to judge, the check is skipped and names that failure, so one
mistake is reported once, as the root cause, not once per criterion.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import sm_contract
from grader.evidence import Evidence
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


def _passed(message: str, **evidence: Any) -> Finding:
    return Finding(Status.PASSED, message, evidence=evidence)


def _skipped(message: str, caused_by: str) -> Finding:
    return Finding(Status.SKIPPED, message, caused_by=caused_by)


# -- notebook_runs ------------------------------------------------------------

_NOTEBOOK_HINTS: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"Unsupported (\w+) version: ([^ .]+(\.x)?)", re.I),
        "the estimator asks for framework_version {1!r}, which the SageMaker SDK "
        "does not know",
        "Give an exact version the SDK supports, e.g. framework_version='2.1' with "
        "py_version='py310' for PyTorch, or '1.7-1' for XGBoost.",
    ),
    (
        re.compile(r"UnexpectedStatusException|Error for Training job"),
        "the training job failed, so fit() raised",
        "See why the job failed below (job_completed) and fix train.py.",
    ),
    (
        re.compile(r"KeyError: 'MetricDefinitions'"),
        "TrainingJobAnalytics found no MetricDefinitions on the job: the estimator "
        "was built without metric_definitions",
        "Pass metric_definitions to the estimator (see metrics_logged).",
    ),
    (
        re.compile(r"AccessDenied|is not authorized|InvalidClientTokenId|NoCredentials"),
        "an AWS call was refused: the notebook uses credentials or a role this "
        "account does not have",
        "Use role = sagemaker.get_execution_role() rather than a hard-coded ARN.",
    ),
    (
        re.compile(r"NoSuchKey|NoSuchBucket|Not Found"),
        "the notebook reads an S3 object that does not exist",
        "Use the S3 URIs the assignment provides (s3_train_data, s3_validation_data) "
        "or the estimator's model_data.",
    ),
]


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
    caused_by = None
    for pattern, hint, advice in _NOTEBOOK_HINTS:
        match = pattern.search(text)
        if match:
            cause = hint.format(*match.groups()) if match.groups() else hint
            fix = advice
            if "training job failed" in hint:
                caused_by = "job_completed"
            elif "MetricDefinitions" in hint:
                caused_by = "metrics_logged"
            break
    return Finding(
        Status.FAILED,
        f"The notebook stopped at {cell}: {_shorten(text, 300)}",
        cause=cause,
        fix=fix,
        location=f"notebook {cell}",
        caused_by=caused_by,
        evidence={"error_name": failure.error_name},
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


def _script_exception(run: JobRun) -> str | None:
    exception = run.observations.get("exception") or {}
    if not exception:
        return None
    where = ""
    if exception.get("file") and exception.get("line"):
        where = f"{exception['file']} line {exception['line']}"
        if exception.get("code"):
            where += f" ({exception['code'].strip()})"
        where += ": "
    return f"{where}{exception.get('type')}: {exception.get('message')}"


def check_job_completed(ev: Evidence) -> Finding:
    run = ev.graded_run
    if run is None:
        return _no_job(ev)
    evidence = {"job": run.name, "status": run.status}
    if run.status == "Completed":
        return _passed(f"Training job {run.name} completed.", **evidence)
    if run.status == "Stopped":
        return Finding(
            Status.FAILED,
            f"Training job {run.name} was stopped at its time limit.",
            cause=run.failure_reason or "the job ran past its maximum runtime",
            fix="Make train.py finish: check for endless loops and keep num-round modest.",
            evidence=evidence,
        )
    if run.status == "InProgress":
        return Finding(
            Status.FAILED,
            f"Training job {run.name} was still running when grading ended.",
            cause="the job did not end before the notebook's time limit",
            fix="Let the job finish: call fit() with wait=True (the default).",
            evidence=evidence,
        )
    reason = run.failure_reason or "(no reason given)"
    cause = _script_exception(run) or reason.splitlines()[0]
    channel = _channel_problem(ev, run)
    caused_by = None
    fix = "Read the job's log in the report, fix train.py and run the notebook again."
    location = None
    exception = run.observations.get("exception") or {}
    if exception.get("file") and exception.get("line"):
        location = f"{exception['file']} line {exception['line']}"
    if channel is not None:
        cause = f"{channel.cause}; the script then failed ({cause})"
        fix = channel.fix or fix
        caused_by = "channels_matched"
        location = channel.location or location
    elif run.observations.get("blocked_imports"):
        missing = ", ".join(run.observations["blocked_imports"])
        cause = (
            f"train.py imports {missing}, which {run.image_label} does not include, "
            "and no requirements.txt names it"
        )
        fix = (
            f"Add a requirements.txt listing {missing} next to train.py and pass "
            "source_dir to the estimator, or use the XGBoost estimator."
        )
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
        return None, _skipped("No training job ran, so there is nothing to judge.",
                              "notebook_runs" if not ev.notebook.completed else "job_completed")
    if run.status != "Completed" and not run.model_data:
        return None, _skipped(f"Training job {run.name} did not complete.", "job_completed")
    return run, None


def check_artifact_saved(ev: Evidence) -> Finding:
    run, skipped = _requires_completed_job(ev)
    if skipped:
        return skipped
    assert run is not None
    artifact = ev.artifact
    if artifact is None:
        return Finding(Status.ERROR, f"The grader found no model.tar.gz for {run.name}.")
    if artifact.files:
        files = ", ".join(artifact.files[:5])
        return _passed(f"{run.model_data} holds {files}.", files=artifact.files)
    written = [
        p for p in run.observations.get("written", [])
        if not Path(p).is_relative_to(run.paths.root)
    ]
    saved = run.observations.get("saved_models", [])
    elsewhere = [p for p in saved if not Path(p).is_relative_to(run.paths.model_dir)]
    cause = "train.py saved nothing in SM_MODEL_DIR, so model.tar.gz is empty"
    if elsewhere or written:
        where = (elsewhere or written)[0]
        where = _describe_path(where, run)
        cause = (
            f"train.py saved the model to {where}, outside SM_MODEL_DIR; SageMaker "
            "uploads only the model directory, so model.tar.gz is empty"
        )
    return Finding(
        Status.FAILED,
        f"{run.model_data} is empty.",
        cause=cause,
        fix="Save with model.save_model(os.path.join(args.model_dir, 'xgboost-model')), "
        "where --model-dir defaults to os.environ['SM_MODEL_DIR'].",
        location=ev.script_location(r"save_model|pickle\.dump|joblib\.dump"),
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


def _channel_problem(ev: Evidence, run: JobRun) -> _ChannelProblem | None:
    observations = run.observations
    if not observations:
        return None
    given = list(run.channels)
    given_upper = {c.upper(): c for c in given}
    read = [
        key[len("SM_CHANNEL_"):]
        for key in observations.get("env_reads", [])
        if key.startswith("SM_CHANNEL_")
    ]
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
    touched = _channels_touched(run)
    unread = [c for c in given if c.upper() not in read and c not in touched]
    if unread and run.exit_code is not None:
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


def _partial_reads(run: JobRun) -> str | None:
    """A channel with several files of which the script opened only some."""
    opened = {Path(p) for p in run.observations.get("opened", [])}
    for channel in run.channels:
        directory = run.paths.channel_dir(channel)
        files = sorted(p for p in directory.rglob("*") if p.is_file())
        if len(files) < 2:
            continue
        read = [f for f in files if f in opened]
        if read and len(read) < len(files):
            return (
                f"channel '{channel}' holds {len(files)} files but train.py read only "
                f"{len(read)} ({', '.join(f.name for f in read[:3])})"
            )
    return None


def check_channels_matched(ev: Evidence) -> Finding:
    run = ev.graded_run
    if run is None:
        return _no_job(ev) if not ev.notebook.completed else _skipped(
            "No training job ran.", "job_completed"
        )
    channels = run.channels
    if not run.observations:
        return _skipped(
            f"Training job {run.name} ended before train.py ran.", "job_completed"
        )
    evidence = {"channels": channels, "read": run.observations.get("env_reads", [])}
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
    partial = _partial_reads(run)
    if partial:
        return Finding(
            Status.FAILED,
            "train.py reads only part of a channel.",
            cause=partial,
            fix="Read and concatenate every CSV file in the channel directory.",
            location=ev.script_location(r"listdir|glob|read_csv"),
            evidence=evidence,
        )
    names = ", ".join(sorted(channels))
    return _passed(f"fit() passed {names}; train.py read each of them.", **evidence)


# -- model scores shared by the remaining checks -----------------------------


def _requires_model(ev: Evidence) -> tuple[dict[str, Any] | None, Finding | None]:
    run, skipped = _requires_completed_job(ev)
    if skipped:
        return None, skipped
    artifact = ev.artifact
    if artifact is None or not artifact.files:
        return None, _skipped("There is no model artifact to judge.", "artifact_saved")
    if artifact.model is None or not artifact.scores:
        return None, _skipped("The model could not be loaded.", "model_loads")
    scores = artifact.scores
    if scores.get("errors") and not scores.get("auc"):
        return None, Finding(
            Status.FAILED,
            "The model could not be evaluated on the course data.",
            cause="; ".join(scores["errors"]),
            fix="Train on the features exactly as given: label in column 0, "
            "features in the columns after it.",
            location=ev.script_location(r"iloc|drop\(|label"),
        )
    return scores, None


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


def _hyperparameter_cause(ev: Evidence, run: JobRun, key: str, sent: Any) -> tuple[str, str]:
    parsed = run.observations.get("argparse") or {}
    declared = parsed.get("declared", [])
    flag = f"--{key}" if len(key) > 1 else f"-{key}"
    normal = key.replace("-", "_")
    if parsed and flag not in declared:
        near = difflib.get_close_matches(flag, declared, n=1, cutoff=0.6)
        if near:
            return (
                f"the estimator sends '{key}' (as {flag} {sent}) but train.py's argparse "
                f"declares {near[0]}, so {flag} was ignored and the default was used",
                f"Name the hyperparameter '{near[0][2:]}' in the estimator, or declare "
                f"{flag} in train.py.",
            )
        return (
            f"the estimator sends '{key}' but train.py's argparse does not declare {flag}",
            f"Declare parser.add_argument('{flag}', ...) and use it when training.",
        )
    calls = run.observations.get("xgboost_train", [])
    params = calls[-1].get("params", {}) if calls else {}
    if normal in _ROUND_NAMES and isinstance(params, dict) and normal in params:
        return (
            f"train.py puts {normal} inside the booster params, where xgboost ignores it; "
            "the number of rounds comes only from num_boost_round",
            "Pass num_boost_round=args.num_round to xgb.train.",
        )
    return (
        f"train.py parses {flag} but does not pass it to xgboost (a value is "
        "hard-coded or another argument is used)",
        f"Use args.{normal} when building the xgboost parameters.",
    )


def check_hyperparameters_honoured(ev: Evidence) -> Finding:
    scores, skipped = _requires_model(ev)
    if skipped:
        return skipped
    assert scores is not None
    run = ev.graded_run
    assert run is not None
    # Training parameters are not saved in a model file: take them from the
    # booster's own config, recorded in the job right after training, and
    # cross-check what the artifact does show (objective, depth, rounds).
    calls = run.observations.get("xgboost_train") or []
    trained_config = (calls[-1].get("config") if calls else None) or {}
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
            if normal == "max_depth" and deepest is not None and _is_number(sent):
                if deepest > float(sent):
                    wrong.append((key, sent, f"trees {deepest} deep"))
                    continue
            if actual is not None and not _same(sent, actual, kind):
                wrong.append((key, sent, actual))
        elif normal in _ROUND_NAMES:
            checked.append(key)
            early_stopped = "best_iteration" in attributes
            if not _is_number(sent):
                continue
            asked = int(float(sent))
            if rounds != asked and not (early_stopped and rounds is not None and rounds < asked):
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
        key, sent, actual = wrong[0]
        cause, fix = _hyperparameter_cause(ev, run, key, sent)
        listed = "; ".join(f"{k}: sent {s}, model has {a}" for k, s, a in wrong)
        return Finding(
            Status.FAILED,
            f"The trained model does not use the estimator's hyperparameters ({listed}).",
            cause=cause,
            fix=fix,
            location=ev.script_location(re.escape(key.replace("_", "-")))
            or ev.script_location(re.escape(key)),
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
        nearest = _nearest_line(first.get("Regex", ""), run.log_lines)
        near_text = f"; the nearest log line is {nearest!r}" if nearest else ""
        return Finding(
            Status.FAILED,
            f"Metric {first.get('Name')!r} matched nothing in the training log.",
            cause=f"the regex {first.get('Regex')!r} matches no line the job printed"
            + near_text,
            fix="Copy the text around the number from the log into the regex and capture "
            "the number with ([0-9.]+).",
            location=location,
            evidence={"matched": matched},
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
    counts = {name: len(run.metric_values[name]) for name in matched}
    summary = ", ".join(f"{name} ({count} values)" for name, count in counts.items())
    return _passed(f"Logged to CloudWatch: {summary}.", counts=counts)


# -- model_loads --------------------------------------------------------------


def check_model_loads(ev: Evidence) -> Finding:
    run, skipped = _requires_completed_job(ev)
    if skipped:
        return skipped
    artifact = ev.artifact
    if artifact is None or not artifact.files:
        return _skipped("There is no model artifact to load.", "artifact_saved")
    model = artifact.model
    files = ", ".join(artifact.files[:5])
    if model is None:
        other = artifact.other_files[0] if artifact.other_files else {}
        detail = other.get("native_error") or "; ".join(artifact.errors) or "unknown format"
        return Finding(
            Status.FAILED,
            f"xgboost cannot load anything in model.tar.gz (it holds {files}).",
            cause=f"{other.get('name', 'the file')} is not a model xgboost can read: {detail}",
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


def _reported_validation_auc(run: JobRun) -> float | None:
    for name, values in run.metric_values.items():
        if "valid" in name.lower() and "auc" in name.lower() and values:
            return values[-1]
    return None


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
    if reference is not None and holdout is not None:
        if holdout < reference - thresholds.max_gap_to_reference:
            problems.append(
                f"holdout AUC {_fmt(holdout)} is more than "
                f"{thresholds.max_gap_to_reference} below the reference's {_fmt(reference)}"
            )
    drift = ""
    run = ev.graded_run
    reported = _reported_validation_auc(run) if run else None
    if reported is not None and validation is not None:
        if abs(reported - validation) > thresholds.max_reported_auc_drift:
            drift = (
                f" The job logged a validation AUC of {reported:.4f}, but its own artifact "
                f"scores {validation:.4f} on the same data; the grade uses {validation:.4f}."
            )
            evidence["reported_validation_auc"] = reported
    if problems:
        return Finding(
            Status.FAILED,
            "The model does not reach the AUC bar: " + "; ".join(problems) + "." + drift,
            cause=problems[0] + (drift and " (the logged metric is misleading)"),
            fix="Check the data reading (label in column 0, no header) and the "
            "hyperparameters; the reference reaches "
            f"{_fmt(reference)} on the holdout.",
            evidence=evidence,
        )
    return _passed(
        f"AUC recomputed by the grader: validation {_fmt(validation)}, holdout "
        f"{_fmt(holdout)} (reference {_fmt(reference)}).{drift}",
        **evidence,
    )


# -- model_learning -----------------------------------------------------------


def check_model_learning(ev: Evidence) -> Finding:
    scores, skipped = _requires_model(ev)
    if skipped:
        return skipped
    assert scores is not None
    curve = scores.get("curve", {}).get("validation") or []
    if len(curve) < 2:
        return Finding(
            Status.FAILED,
            f"The model has {len(curve)} boosting round(s); learning cannot be seen.",
            cause="training stopped after the first round",
            fix="Train for more rounds (num-round) and let early stopping pick the best.",
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
        )
    if gain < minimum or (minimum == 0 and final <= first and best <= first):
        return Finding(
            Status.FAILED,
            f"Validation AUC does not improve over the rounds ({first:.4f} after round 1, "
            f"{final:.4f} at the end).",
            cause="later boosting rounds add nothing on the validation data",
            fix="Check eta and max-depth, and that the validation data is read correctly.",
            evidence=evidence,
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
    because of that: point its verdict at the job-side cause."""
    notebook = findings.get("notebook_runs")
    failure = ev.notebook.failure
    if notebook is None or notebook.status is not Status.FAILED or notebook.caused_by:
        return
    if failure is None or not ev.runs:
        return
    for criterion in _JOB_SIDE:
        finding = findings.get(criterion)
        if finding is not None and finding.status is Status.FAILED:
            notebook.caused_by = finding.caused_by or criterion
            notebook.cause = f"{notebook.cause}, a consequence of: {finding.cause or finding.message}"
            return


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
