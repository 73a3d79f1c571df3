"""Train an XGBoost binary classifier inside a SageMaker training job.

SageMaker starts this script as `python train.py --max-depth 4 --eta 0.2 ...`:
every estimator hyperparameter becomes a command-line flag, and the paths the
job needs arrive as environment variables (SM_MODEL_DIR, SM_CHANNEL_<NAME>).
Whatever lands in SM_MODEL_DIR is packed into model.tar.gz and uploaded to S3.
"""

import argparse
import glob
import os

import pandas as pd
import xgboost as xgb


def parse_args():
    """Read hyperparameters from the command line and paths from SM_* variables.

    The path defaults come from the environment so the same script runs
    unchanged in a job and locally, where a flag can override each one.
    """
    parser = argparse.ArgumentParser()

    # Hyperparameters: the keys of the estimator's `hyperparameters` dict.
    parser.add_argument("--max-depth", type=int, default=5)
    parser.add_argument("--eta", type=float, default=0.2)
    parser.add_argument("--objective", type=str, default="binary:logistic")
    parser.add_argument("--num-round", type=int, default=100)
    parser.add_argument("--eval-metric", type=str, default="auc")
    parser.add_argument("--early-stopping-rounds", type=int, default=10)

    # Paths: one SM_CHANNEL_<NAME> per key of the dict given to fit().
    parser.add_argument("--model-dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument(
        "--validation", type=str, default=os.environ.get("SM_CHANNEL_VALIDATION")
    )

    return parser.parse_args()


def load_data(channel_dir):
    """Read every CSV file of a channel and split off the label.

    SageMaker copies each object under the channel's S3 prefix into this
    directory, so a channel may hold several files; all of them are data.
    Files are label-first with no header, as the built-in XGBoost expects.
    """
    paths = sorted(glob.glob(os.path.join(channel_dir, "*.csv")))
    if not paths:
        raise FileNotFoundError(f"no .csv files in channel directory {channel_dir}")

    frame = pd.concat(
        [pd.read_csv(path, header=None) for path in paths], ignore_index=True
    )
    return frame.iloc[:, 1:], frame.iloc[:, 0]


def train(args):
    """Fit the booster, watching validation AUC, and save it to SM_MODEL_DIR."""
    X_train, y_train = load_data(args.train)
    X_val, y_val = load_data(args.validation)

    dtrain = xgb.DMatrix(X_train, label=y_train)
    dval = xgb.DMatrix(X_val, label=y_val)

    params = {
        "max_depth": args.max_depth,
        "eta": args.eta,
        "objective": args.objective,
        "eval_metric": args.eval_metric,
    }

    # Early stopping watches the last entry, so validation goes last. Each
    # round prints "train-auc:... validation-auc:..." to stdout, which is
    # what the estimator's metric_definitions regexes read from the log.
    watchlist = [(dtrain, "train"), (dval, "validation")]
    model = xgb.train(
        params=params,
        dtrain=dtrain,
        num_boost_round=args.num_round,
        evals=watchlist,
        early_stopping_rounds=args.early_stopping_rounds,
    )

    # "xgboost-model" is the file name SageMaker's XGBoost serving looks for.
    # Without an extension, xgboost 2 and later warn and write UBJSON; load
    # it with Booster.load_model, which guesses UBJSON for this name.
    model_path = os.path.join(args.model_dir, "xgboost-model")
    model.save_model(model_path)

    print(f"Best iteration: {model.best_iteration}, validation AUC: {model.best_score}")
    print(f"Model saved to {model_path}")


if __name__ == "__main__":
    train(parse_args())
