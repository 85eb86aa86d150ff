#!/usr/bin/env python3
"""Benchmark: which classifier generalises to held-out speakers on serd's features, with the
classifier as the only variable: scikit-learn's RBF SVM, L2-penalised logistic regression (a
converged convex fit), an MLP like serd's two-block network, and the same linear model trained
by Adam for a few epochs or with early stopping (how serd trained its networks).

    pip install scikit-learn pandas
    cargo build --release
    python3 benches/linear.py [--features compare|egemaps] [--model models/default] [--csv F]

Features: `serd extract --format csv` of whole files (serd's front end, as in training), for the
files of `MODEL/metrics.json` (`cv.assignment`). Splits: the model's own folds, and two more
speaker-grouped stratified 5-fold splits (scikit-learn's StratifiedGroupKFold, seeds 1 and 2).
Every classifier gets balanced class weights where scikit-learn offers them and the scaler
fitted on its training part; pooled utterance UAR.
"""
import argparse
import json
import os
import sys
import warnings

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from normalisation import CLASSES, ROOT, features_of  # noqa: E402

CLASSIFIERS = {
    "SVM, RBF, C=1": lambda: SVC(C=1.0, class_weight="balanced"),
    "logistic regression, C=0.001": lambda: LogisticRegression(C=1e-3, class_weight="balanced", max_iter=3000),
    "logistic regression, C=0.01": lambda: LogisticRegression(C=1e-2, class_weight="balanced", max_iter=3000),
    "logistic regression, C=0.1": lambda: LogisticRegression(C=1e-1, class_weight="balanced", max_iter=3000),
    "MLP 128-128 (like serd's CNN)": lambda: MLPClassifier((128, 128), max_iter=200, random_state=0),
    "linear, Adam, 200 epochs": lambda: MLPClassifier((), batch_size=32, max_iter=200, random_state=0),
    "linear, Adam, 5 epochs": lambda: MLPClassifier((), batch_size=32, max_iter=5, random_state=0),
    "linear, Adam, early stopping": lambda: MLPClassifier((), batch_size=32, max_iter=200,
                                                          early_stopping=True, random_state=0),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", default="compare")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    ap.add_argument("--csv", help="cache the extracted features in this file")
    a = ap.parse_args()
    warnings.filterwarnings("ignore")  # convergence warnings of the deliberately short fits
    assign = pd.DataFrame(json.load(open(os.path.join(a.model, "metrics.json")))["cv"]["assignment"])
    x = features_of(list(assign["path"]), a.features, a.csv).loc[assign["path"]].values
    y = assign["label"].map(CLASSES.index).values
    groups = assign["speaker"].values
    splits = {"bundled folds": assign["fold"].values}
    for seed in (1, 2):
        f = np.zeros(len(y), int)
        for k, (_, te) in enumerate(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(x, y, groups)):
            f[te] = k
        splits[f"split {seed}"] = f
    print(f"{len(y)} files, {len(set(groups))} speakers, {a.features}; pooled UAR per split")
    print("| classifier | " + " | ".join(splits) + " |")
    for name, make in CLASSIFIERS.items():
        row = []
        for folds in splits.values():
            pred = np.zeros_like(y)
            for k in range(folds.max() + 1):
                tr, te = folds != k, folds == k
                pred[te] = make_pipeline(StandardScaler(), make()).fit(x[tr], y[tr]).predict(x[te])
            row.append(f"{balanced_accuracy_score(y, pred):.3f}")
        print(f"| {name} | " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
