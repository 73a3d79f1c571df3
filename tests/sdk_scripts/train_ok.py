"""A minimal, correct entry point used by the SDK-level tests."""
import argparse
import glob
import json
import os

import pandas as pd
import xgboost as xgb

parser = argparse.ArgumentParser()
parser.add_argument("--max-depth", type=int, default=5)
parser.add_argument("--eta", type=float, default=0.3)
parser.add_argument("--num-round", type=int, default=10)
parser.add_argument("-k", type=int, default=0)
parser.add_argument("--sleep", type=float, default=0)
parser.add_argument("--ignore-sigterm", type=int, default=0)
args = parser.parse_args()

if args.ignore_sigterm:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def load(channel):
    frames = [pd.read_csv(p, header=None) for p in sorted(glob.glob(f"{channel}/*.csv"))]
    table = pd.concat(frames)
    return table.iloc[:, 1:], table.iloc[:, 0]


if args.sleep:
    import time

    time.sleep(args.sleep)
x_train, y_train = load(os.environ["SM_CHANNEL_TRAIN"])
x_val, y_val = load(os.environ["SM_CHANNEL_VALIDATION"])
train, val = xgb.DMatrix(x_train, label=y_train), xgb.DMatrix(x_val, label=y_val)
params = {"max_depth": args.max_depth, "eta": args.eta, "objective": "binary:logistic",
          "eval_metric": "auc"}
booster = xgb.train(params, train, args.num_round, evals=[(train, "train"), (val, "validation")])
booster.save_model(os.path.join(os.environ["SM_MODEL_DIR"], "xgboost-model.json"))
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json"), "w") as handle:
    json.dump({k: v for k, v in os.environ.items() if k.startswith("SM_")}
              | {"argv": os.sys.argv[1:]}, handle)
