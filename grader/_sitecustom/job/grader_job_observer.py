"""Installed first in every emulated training job: it plays the training
image and records what the entry point does.

Two jobs. (1) The image: modules the chosen training image does not ship
(and the source dir's requirements.txt does not add) fail to import, as they
would in the real container. (2) Observation: which SM_* variables the
script read, which files it listed, opened and wrote, the arguments argparse
parsed, the DMatrix shapes and labels it built and how it called
``xgboost.train``. The grader judges from these and from the artifact,
never from what the script prints.

Only the standard library is imported here, so a job starts as fast as
plain ``python train.py``. Student code runs in this same process and could
tamper with the record; the grader treats it as diagnosis, and bases
scores on the artifact it evaluates itself.
"""

import atexit
import importlib.abc
import json
import os
import signal
import sys
import traceback

import grader_import_hooks

_RECORD_PATH = ""
_RECORDING_PID = 0
_UNAVAILABLE: set[str] = set()
_IMAGE = "this training image"
_MAX_EVENTS = 2000
_IGNORED_PREFIXES = tuple(
    p for p in {sys.prefix, sys.base_prefix, "/proc", "/dev", "/sys", "/usr", "/etc"} if p
)

record = {
    "env_reads": [],
    "listed": [],
    "opened": [],
    "written": [],
    "argparse": None,
    "xgboost_train": [],
    "sklearn_fit": [],
    "dmatrices": [],
    "saved_models": [],
    "blocked_imports": [],
    "exception": None,
}


def _remember(key, value):
    entries = record[key]
    if len(entries) < _MAX_EVENTS and value not in entries:
        entries.append(value)


class _UnavailableInImage(importlib.abc.MetaPathFinder):
    """Refuse top-level modules the training image does not provide."""

    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in _UNAVAILABLE:
            _remember("blocked_imports", top)
            raise ModuleNotFoundError(f"No module named '{top}'", name=top)
        return None


def _audit(event, args):
    if event == "open":
        path, mode = args[0], args[1]
        if not isinstance(path, str) or path.startswith(_IGNORED_PREFIXES):
            return
        path = os.path.abspath(path)
        writing = isinstance(mode, str) and any(ch in mode for ch in "wax+")
        if writing or (isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR)):
            _remember("written", path)
        else:
            _remember("opened", path)
    elif event in ("os.listdir", "os.scandir") and args:
        path = args[0]
        if isinstance(path, str):
            _remember("listed", os.path.abspath(path))
        elif path is None:
            _remember("listed", os.path.abspath("."))


class _RecordingEnviron(type(os.environ)):
    def __getitem__(self, key):
        if isinstance(key, str) and key.startswith("SM_"):
            _remember("env_reads", key)
        return super().__getitem__(key)

    def __contains__(self, key):
        if isinstance(key, str) and key.startswith("SM_"):
            _remember("env_reads", key)
        return super().__contains__(key)


def _plain(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


def _observe_argparse():
    import argparse

    original = argparse.ArgumentParser.parse_known_args

    def parse_known_args(self, args=None, namespace=None):
        first = record["argparse"] is None
        if first:
            record["argparse"] = {
                "argv": list(sys.argv[1:] if args is None else args),
                "declared": [s for a in self._actions for s in a.option_strings],
                "dests": {a.dest: _plain(a.default) for a in self._actions if a.dest != "help"},
                "types": {
                    a.dest: getattr(a.type, "__name__", repr(a.type))
                    for a in self._actions
                    if a.type is not None
                },
            }
        try:
            parsed, unknown = original(self, args, namespace)
        except SystemExit as exc:
            if first:
                record["argparse"]["error"] = f"argparse exited with {exc.code}"
            raise
        if first:
            record["argparse"]["namespace"] = {k: _plain(v) for k, v in vars(parsed).items()}
            record["argparse"]["unknown"] = list(unknown)
        return parsed, unknown

    argparse.ArgumentParser.parse_known_args = parse_known_args

    original_error = argparse.ArgumentParser.error

    def error(self, message):
        if record["argparse"] is not None:
            record["argparse"]["error"] = message
        return original_error(self, message)

    argparse.ArgumentParser.error = error


def _eval_names(evals):
    names = []
    for item in evals or []:
        try:
            names.append(str(item[1]))
        except (TypeError, IndexError):
            names.append(repr(item))
    return names


def _observe_xgboost(xgboost):
    original_train = xgboost.train

    def train(params, dtrain, num_boost_round=10, *args, **kwargs):
        call = {
            "params": _plain(dict(params) if isinstance(params, dict) else list(params)),
            "num_boost_round": _plain(num_boost_round),
            "evals": _eval_names(kwargs.get("evals", args[0] if args else None)),
            "early_stopping_rounds": _plain(kwargs.get("early_stopping_rounds")),
        }
        record["xgboost_train"].append(call)
        booster = original_train(params, dtrain, num_boost_round, *args, **kwargs)
        try:
            call["num_boosted_rounds"] = booster.num_boosted_rounds()
            call["best_iteration"] = getattr(booster, "best_iteration", None)
            call["config"] = json.loads(booster.save_config())
        except Exception:
            pass
        return booster

    xgboost.train = train
    try:
        xgboost.training.train = train
    except AttributeError:
        pass

    dmatrix_init = xgboost.DMatrix.__init__

    def init(self, *args, **kwargs):
        dmatrix_init(self, *args, **kwargs)
        try:
            labels = self.get_label()
            entry = {"num_row": int(self.num_row()), "num_col": int(self.num_col())}
            if len(labels):
                distinct = sorted({float(v) for v in labels[:100000]})
                entry.update(
                    label_min=float(labels.min()),
                    label_max=float(labels.max()),
                    label_values=distinct[:10],
                    label_distinct=len(distinct),
                )
            if len(record["dmatrices"]) < 50:
                record["dmatrices"].append(entry)
        except Exception:
            pass

    xgboost.DMatrix.__init__ = init

    save_model = xgboost.Booster.save_model

    def save(self, fname, *args, **kwargs):
        _remember("saved_models", os.path.abspath(os.fspath(fname)))
        return save_model(self, fname, *args, **kwargs)

    xgboost.Booster.save_model = save


def _observe_xgboost_sklearn(module):
    fit = module.XGBModel.fit

    def observed_fit(self, X, y, *args, **kwargs):
        entry = {
            "estimator": type(self).__name__,
            "params": _plain(self.get_xgb_params()),
            "n_estimators": _plain(getattr(self, "n_estimators", None)),
            "eval_set_size": len(kwargs.get("eval_set") or []),
        }
        record["sklearn_fit"].append(entry)
        return fit(self, X, y, *args, **kwargs)

    module.XGBModel.fit = observed_fit


def _excepthook(kind, value, tb):
    if isinstance(value, SyntaxError) and value.filename:
        # The error is in the script's text, not in any frame that ran.
        file, line, code = value.filename, value.lineno, (value.text or "").strip()
        message = value.msg
    else:
        frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith("<")]
        user = [f for f in frames if f.filename.startswith(os.getcwd())] or frames
        last = user[-1] if user else None
        file = last.filename if last else None
        line, code = (last.lineno, last.line) if last else (None, None)
        message = str(value)
    record["exception"] = {
        "type": kind.__name__,
        "message": message[:2000],
        "file": os.path.relpath(file) if file else None,
        "line": line,
        "code": code,
    }
    _previous_excepthook(kind, value, tb)


def _write_record():
    # Only the entry point's own process: a child it forked holds a copy.
    if not _RECORD_PATH or os.getpid() != _RECORDING_PID:
        return
    try:
        with open(_RECORD_PATH, "w", encoding="utf-8") as handle:
            json.dump(record, handle)
    except OSError:
        pass


def install():
    """Start observing, as configured by the job's environment.

    Works both at interpreter start (from sitecustomize) and in a process
    forked from a warm interpreter that already imported xgboost.
    """
    global _RECORD_PATH, _RECORDING_PID, _UNAVAILABLE, _IMAGE, _previous_excepthook
    _RECORD_PATH = os.environ.pop("GRADER_OBSERVATIONS", "")
    _RECORDING_PID = os.getpid()
    _UNAVAILABLE = {
        n for n in os.environ.pop("GRADER_UNAVAILABLE_MODULES", "").split(",") if n
    }
    _IMAGE = os.environ.pop("GRADER_IMAGE_LABEL", _IMAGE)
    if not _RECORD_PATH:
        return
    for name in list(sys.modules):
        if name.partition(".")[0] in _UNAVAILABLE:
            del sys.modules[name]
    sys.meta_path.insert(0, _UnavailableInImage())
    observers = {"xgboost": _observe_xgboost, "xgboost.sklearn": _observe_xgboost_sklearn}
    for name, observe in observers.items():
        if name in sys.modules:
            observe(sys.modules[name])
    grader_import_hooks.install(
        {n: o for n, o in observers.items() if n not in sys.modules}, position=1
    )
    os.environ.__class__ = _RecordingEnviron
    _observe_argparse()
    _previous_excepthook = sys.excepthook
    sys.excepthook = _excepthook
    atexit.register(_write_record)
    _keep_record_on_sigterm()
    sys.addaudithook(_audit)


def _keep_record_on_sigterm():
    """The service sends SIGTERM at the time limit: write the record, then
    end as SIGTERM would have. A script's own handler replaces this one."""

    def on_sigterm(signum, frame):
        _write_record()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
