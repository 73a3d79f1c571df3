"""Open and score a model artifact in separate processes.

``python -m grader.model_probe open ARCHIVE WORKDIR`` unpacks
``model.tar.gz`` safely and loads what it holds. A pickle runs code when
loaded, so this step gets no data and the same limits as student code; it
writes any model it could load back out in xgboost's own JSON format.

``python -m grader.model_probe score MODEL --split NAME=CSV ...`` loads that
JSON (never a pickle) and computes, with scikit-learn, the AUC of every
boosting round on each split: the grader's own figures, not the student's.

Each prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tarfile
from pathlib import Path
from typing import Any

MAX_MEMBERS = 200
MAX_SCORED_ROUNDS = 5000
MAX_UNPACKED_BYTES = 500 * 1024 * 1024


def _members(archive: Path, target: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        if len(members) > MAX_MEMBERS:
            raise ValueError(f"the archive holds {len(members)} entries")
        if sum(m.size for m in members) > MAX_UNPACKED_BYTES:
            raise ValueError("the archive unpacks to more than 500 MB")
        tar.extractall(target, filter="data")
        for member in members:
            kind = "dir" if member.isdir() else "file" if member.isfile() else "other"
            listed.append({"name": member.name, "size": member.size, "kind": kind})
    return listed


def _sniff(path: Path) -> str:
    head = path.read_bytes()[:16]
    if head.lstrip()[:2] == b'{"':
        return "json"
    if head[:1] == b"\x80":
        return "pickle"
    if head[:1] == b"{":
        return "ubjson"
    if head.startswith(b"binf") or head[:4] == b"\x00\x00\x00\x00":
        return "xgboost-binary"
    return "unknown"


def open_archive(archive: Path, workdir: Path) -> dict[str, Any]:
    import xgboost as xgb

    unpacked = workdir / "unpacked"
    unpacked.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"members": [], "models": [], "errors": []}
    try:
        report["members"] = _members(archive, unpacked)
    except (tarfile.TarError, OSError, ValueError) as exc:
        report["errors"].append(f"cannot unpack model.tar.gz: {exc}")
        return report

    for member in report["members"]:
        if member["kind"] != "file":
            continue
        path = unpacked / member["name"]
        entry: dict[str, Any] = {"name": member["name"], "format": _sniff(path)}
        booster = None
        try:
            booster = xgb.Booster()
            booster.load_model(str(path))
            entry["loaded_by"] = "xgboost.Booster.load_model"
        except Exception as exc:  # any file that is not a native model
            booster = None
            entry["native_error"] = str(exc).splitlines()[0][:200] if str(exc) else repr(exc)
        if booster is None and entry["format"] == "pickle":
            try:
                with path.open("rb") as handle:
                    loaded = pickle.load(handle)  # noqa: S301 - sandboxed, no data here
                if hasattr(loaded, "get_booster"):
                    loaded = loaded.get_booster()
                if isinstance(loaded, xgb.Booster):
                    booster = loaded
                    entry["loaded_by"] = "pickle.load"
                else:
                    entry["pickle_type"] = type(loaded).__name__
            except Exception as exc:
                entry["pickle_error"] = f"{type(exc).__name__}: {exc}"[:200]
        if booster is not None:
            normalized = workdir / f"model-{len(report['models'])}.json"
            booster.save_model(str(normalized))
            entry["normalized"] = str(normalized)
            report["models"].append(entry)
        else:
            report.setdefault("other_files", []).append(entry)
    return report


def _read_split(path: str) -> tuple[Any, Any]:
    import pandas as pd

    frame = pd.read_csv(path, header=None)
    return frame.iloc[:, 1:].to_numpy(dtype=float), frame.iloc[:, 0].to_numpy()


def _max_tree_depth(booster: Any) -> int:
    """The deepest tree, read from the dump: training parameters such as
    max_depth are not stored in a saved model, but their effect is."""

    def depth(node: dict[str, Any]) -> int:
        children = node.get("children") or []
        return 1 + max((depth(child) for child in children), default=-1) if children else 0

    return max((depth(json.loads(tree)) for tree in booster.get_dump(dump_format="json")),
               default=0)


#: The splits whose AUC is also followed round by round: the learning curve.
CURVE_SPLITS = ("train", "validation")


def score(model: Path, splits: dict[str, str]) -> dict[str, Any]:
    import numpy as np
    import xgboost as xgb
    from sklearn.metrics import roc_auc_score

    booster = xgb.Booster()
    booster.load_model(str(model))
    config = json.loads(booster.save_config())
    rounds = booster.num_boosted_rounds()
    if rounds > MAX_SCORED_ROUNDS:
        raise ValueError(f"the model has {rounds} boosting rounds; at most "
                         f"{MAX_SCORED_ROUNDS} are scored")
    result: dict[str, Any] = {
        "rounds": rounds,
        "max_tree_depth": _max_tree_depth(booster),
        "num_features": booster.num_features(),
        "config": config,
        "attributes": booster.attributes(),
        "auc": {},
        "curve": {},
        "errors": [],
    }
    for name, path in splits.items():
        features, labels = _read_split(path)
        if features.shape[1] != booster.num_features():
            result["errors"].append(
                f"the model expects {booster.num_features()} features; "
                f"the {name} data has {features.shape[1]}"
            )
            continue
        matrix = xgb.DMatrix(features)
        final = booster.predict(matrix, validate_features=False)
        result["auc"][name] = float(roc_auc_score(labels, final))
        if name not in CURVE_SPLITS:
            continue
        margins = np.column_stack([
            booster.predict(
                matrix, iteration_range=(0, last), output_margin=True, validate_features=False
            )
            for last in range(1, rounds + 1)
        ])
        # One column per round, scored in one call (as a multilabel problem
        # whose labels repeat), which spares a validation per round. The
        # labels are binary here, or the AUC above would have raised; as 0/1
        # the greater one stays the positive class.
        indicator = np.unique(labels, return_inverse=True)[1].reshape(-1, 1)
        per_round = roc_auc_score(np.repeat(indicator, rounds, axis=1), margins, average=None)
        result["curve"][name] = [float(auc) for auc in np.atleast_1d(per_round)]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.model_probe")
    commands = parser.add_subparsers(dest="command", required=True)
    opener = commands.add_parser("open", help="unpack model.tar.gz and load its models")
    opener.add_argument("archive", type=Path)
    opener.add_argument("workdir", type=Path)
    scorer = commands.add_parser("score", help="AUC on each split; per boosting round on train and validation")
    scorer.add_argument("model", type=Path)
    scorer.add_argument("--split", action="append", default=[], metavar="NAME=CSV")
    args = parser.parse_args(argv)

    if args.command == "open":
        outcome = open_archive(args.archive, args.workdir)
    else:
        splits = dict(item.split("=", 1) for item in args.split)
        try:
            outcome = score(args.model, splits)
        except Exception as exc:
            outcome = {"errors": [f"{type(exc).__name__}: {exc}"]}
    json.dump(outcome, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
