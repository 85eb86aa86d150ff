#!/usr/bin/env python3
"""Regenerates tests/fixtures/metrics.json: reference values for src/metrics.rs.

Reference = scikit-learn 1.9.1 and numpy 2.4.6 (the versions are also written into the file).
Each case is a fixed list of (truth, prediction) class indices, 0..4 in serd's order (anger,
surprise, happiness, sadness, neutral): seeded numpy random sets plus hand-made edge cases (a class
absent from the truth, a class never predicted, perfect predictions, a single sample). For each
case the script stores

    confusion_matrix(labels=[0, 1, 2, 3, 4])       rows = truth, columns = prediction
    accuracy_score
    balanced_accuracy_score                         serd's UAR (mean recall over classes present)
    recall_score(average=None, labels=[0..4], zero_division=nan)   nan (absent class) -> null

and, for a set of cross-validation folds, the pooled case plus numpy mean and std (ddof=0, numpy's
default) of the per-fold accuracy and UAR, and mean/std of a few plain value lists.

    pip install scikit-learn==1.9.1 numpy==2.4.6
    python3 tools/make_metric_fixtures.py
"""
import json
import math
import os
import re
import warnings

import numpy as np
import sklearn
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    confusion_matrix,
    recall_score,
)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "metrics.json")
LABELS = ["anger", "surprise", "happiness", "sadness", "neutral"]
K = len(LABELS)


def nullable(x):
    x = float(x)
    return None if math.isnan(x) else x


def case(name, truth, pred):
    truth, pred = [int(t) for t in truth], [int(p) for p in pred]
    assert len(truth) == len(pred) > 0
    with warnings.catch_warnings():
        # balanced_accuracy_score warns when a predicted class is absent from the truth.
        warnings.simplefilter("ignore")
        return {
            "name": name,
            "truth": truth,
            "pred": pred,
            "n": len(truth),
            "accuracy": float(accuracy_score(truth, pred)),
            "uar": float(balanced_accuracy_score(truth, pred)),
            "recall": [
                nullable(r)
                for r in recall_score(truth, pred, average=None, labels=list(range(K)), zero_division=np.nan)
            ],
            "confusion": confusion_matrix(truth, pred, labels=list(range(K))).tolist(),
        }


def noisy(rng, n, p_correct, class_p=None):
    """A classifier that is right with probability p_correct, otherwise guesses uniformly."""
    truth = rng.choice(K, size=n, p=class_p)
    guess = rng.integers(0, K, size=n)
    pred = np.where(rng.random(n) < p_correct, truth, guess)
    return truth, pred


def mean_std(values):
    a = np.asarray(values, dtype=np.float64)
    return {"values": a.tolist(), "mean": float(np.mean(a)), "std": float(np.std(a))}


def main():
    rng = np.random.default_rng(20240917)
    cases = [
        case("random_balanced", *noisy(rng, 400, 0.6)),
        case("random_imbalanced", *noisy(rng, 537, 0.45, [0.4, 0.05, 0.25, 0.2, 0.1])),
        case("random_small", *noisy(rng, 23, 0.5)),
        # surprise (1) never occurs in the truth but is predicted twice: recall null, UAR over 4.
        case("class_absent_from_truth", [0, 0, 2, 2, 3, 3, 4, 4, 4], [0, 1, 2, 0, 3, 3, 4, 1, 2]),
        # sadness (3) is never predicted: its recall is 0, not null.
        case("class_never_predicted", [0, 1, 2, 3, 3, 3, 4, 4], [0, 1, 2, 0, 4, 2, 4, 4]),
        case("perfect", [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0], [0, 1, 2, 3, 4, 4, 3, 2, 1, 0, 0]),
        case("single_sample", [2], [4]),
        case("all_one_prediction", [0, 1, 2, 3, 4, 0, 1, 2], [4] * 8),
        case("two_classes_only", [3, 3, 3, 4, 4], [3, 4, 3, 4, 3]),
    ]

    # Five cross-validation folds of unequal size, one of them without any surprise samples.
    folds = []
    for i, size in enumerate([41, 37, 52, 29, 44]):
        truth, pred = noisy(rng, size, 0.55, [0.3, 0.15, 0.2, 0.2, 0.15])
        if i == 3:
            truth = np.where(truth == 1, 0, truth)
        folds.append(case(f"fold_{i}", truth, pred))
    pooled = case(
        "pooled",
        [t for f in folds for t in f["truth"]],
        [p for f in folds for p in f["pred"]],
    )

    doc = {
        "reference": f"scikit-learn {sklearn.__version__}, numpy {np.__version__}",
        "regenerate": "python3 tools/make_metric_fixtures.py",
        "labels": LABELS,
        "cases": cases,
        "folds": {
            "folds": folds,
            "pooled": pooled,
            "accuracy": mean_std([f["accuracy"] for f in folds]),
            "uar": mean_std([f["uar"] for f in folds]),
        },
        "mean_std": [
            mean_std([0.5]),
            mean_std([0.1, 0.2, 0.3, 0.4]),
            mean_std(rng.random(10)),
            mean_std([0.7, 0.7, 0.7]),
        ],
    }
    text = json.dumps(doc, indent=1)
    # One line per list of numbers, so that the file stays short and diffs stay readable.
    text = re.sub(r'\[([^\[\]{}"]*)\]', lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print(f"wrote {os.path.normpath(OUT)} ({doc['reference']})")


if __name__ == "__main__":
    main()
