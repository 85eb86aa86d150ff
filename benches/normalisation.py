#!/usr/bin/env python3
"""Benchmark: what per-speaker feature normalisation would be worth if serd could deliver it, on
the bundled model's own speaker-grouped folds, with the statistics a user could really provide.

    pip install scikit-learn pandas
    cargo build --release
    python3 benches/normalisation.py [--features compare|egemaps] [--model models/default]

Features: `serd extract --format csv` of whole files (serd's front end, as in training), for the
files and folds of `MODEL/metrics.json` (`cv.assignment`). Classifier: scikit-learn SVC (RBF,
C=1, balanced), the scaler fitted on each training part; pooled utterance UAR.

Variants (each speaker's features have a per-speaker mean removed before the global scaler):
- `global`: nothing removed (what serd does).
- `speaker-all`: the mean (and deviation) of all the speaker's recordings: the acted corpus's
  balanced emotions make this a neutral baseline that no user session provides; an upper bound.
- `enrol-K`: the mean of K of the speaker's *neutral* recordings (an enrolment: "read this for a
  minute in your normal voice"), drawn at random; training speakers likewise. The enrolment files
  are left out of the scoring, and `global` is scored again on the same remaining files.
- `session-S`: training speakers by all their recordings; each test speaker by a "session" of N
  of its recordings in which one emotion makes up the share S (0.2 is balanced, 1.0 all one
  emotion), averaged over which emotion dominates and R draws: what a running per-session
  normalisation in `serd listen` would give when the user's mix of emotions is skewed.
"""
import argparse
import json
import os
import subprocess
import sys
from io import StringIO

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SERD = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "serd")
CLASSES = ["anger", "surprise", "happiness", "sadness", "neutral"]


def features_of(paths, features, csv):
    if csv and os.path.exists(csv):
        text = open(csv).read()
    else:
        text = subprocess.run([SERD, "extract", "--features", features, "--format", "csv", *paths],
                              check=True, capture_output=True, text=True).stdout
        if csv:
            open(csv, "w").write(text)
    df = pd.read_csv(StringIO(text))
    return df.set_index("file").drop(columns=["t_start", "t_end", "voiced"])


def svm(x_tr, y_tr):
    return SVC(C=1.0, class_weight="balanced").fit(x_tr, y_tr)


def cv_predict(x, y, folds, test_views=None):
    """Pooled predictions of an SVM per fold. `test_views`: optional list of alternative test
    matrices (same shape as x); returns one prediction vector per view, fitted once per fold."""
    views = test_views if test_views is not None else [x]
    preds = [np.zeros_like(y) for _ in views]
    for f in range(folds.max() + 1):
        tr, te = folds != f, folds == f
        sc = StandardScaler().fit(x[tr])
        model = svm(sc.transform(x[tr]), y[tr])
        for p, v in zip(preds, views):
            p[te] = model.predict(sc.transform(v[te]))
    return preds


def centred(x, groups, reference):
    """x with each speaker's mean over its `reference` rows removed."""
    out = x.copy()
    for s in np.unique(groups):
        rows = groups == s
        out[rows] -= x[rows & reference].mean(0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", default="compare")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    ap.add_argument("--csv", help="cache the extracted features in this file")
    ap.add_argument("--session-files", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    assign = pd.DataFrame(json.load(open(os.path.join(a.model, "metrics.json")))["cv"]["assignment"])
    feats = features_of(list(assign["path"]), a.features, a.csv).loc[assign["path"]]
    x = feats.values.astype(np.float64)
    y = assign["label"].map(CLASSES.index).values
    groups = assign["speaker"].values
    folds = assign["fold"].values
    rng = np.random.default_rng(42)
    everyone = np.ones(len(y), bool)
    print(f"{len(y)} files, {len(set(groups))} speakers, {folds.max() + 1} folds (the bundled model's), {a.features}")

    uar = lambda p, rows=everyone: balanced_accuracy_score(y[rows], p[rows])
    (p_global,) = cv_predict(x, y, folds)
    print(f"global: UAR {uar(p_global):.3f}")

    x_all = x.copy()
    for s in np.unique(groups):
        rows = groups == s
        sd = x[rows].std(0)
        x_all[rows] = (x[rows] - x[rows].mean(0)) / np.where(sd > 0, sd, 1.0)
    (p,) = cv_predict(x_all, y, folds)
    print(f"speaker-all (mean and deviation of all the speaker's files): UAR {uar(p):.3f}")
    (p,) = cv_predict(centred(x, groups, everyone), y, folds)
    print(f"speaker-all (mean only): UAR {uar(p):.3f}")

    neutral = y == CLASSES.index("neutral")
    for k in (1, 2, 3):
        scores = []
        for _ in range(a.repeats):
            enrol = np.zeros(len(y), bool)
            for s in np.unique(groups):
                pool = np.flatnonzero((groups == s) & neutral)
                enrol[rng.choice(pool, size=min(k, len(pool) - 1), replace=False)] = True
            (p,) = cv_predict(centred(x, groups, enrol), y, folds)
            scored = ~enrol
            scores.append((uar(p, scored), uar(p_global, scored)))
        e, g = np.mean(scores, 0)
        print(f"enrol-{k} (mean of {k} neutral files per speaker, {a.repeats} draws): UAR {e:.3f} "
              f"against global {g:.3f} on the same scored files")

    # Sessions: training speakers centred on all their files; each test speaker on a skewed draw.
    x_train_view = centred(x, groups, everyone)
    for share in (0.2, 0.5, 0.8, 1.0):
        per_emotion = []
        for dominant in range(len(CLASSES)):
            for _ in range(a.repeats):
                view = x_train_view.copy()
                for s in np.unique(groups):
                    rows = np.flatnonzero(groups == s)
                    major = rows[y[rows] == dominant]
                    minor = rows[y[rows] != dominant]
                    if len(major) == 0:  # EmoDB has no surprise: its speakers keep a balanced draw
                        major, n_major = minor, 0
                    else:
                        n_major = round(share * a.session_files)
                    session = np.concatenate([
                        rng.choice(major, n_major, replace=True),
                        rng.choice(minor, a.session_files - n_major, replace=True),
                    ])
                    view[rows] = x[rows] - x[session].mean(0)
                per_emotion.append(view)
        # training views are identical across sessions: fit once per fold, predict every view
        preds = cv_predict(x_train_view, y, folds, test_views=per_emotion)
        scores = np.array([uar(p) for p in preds]).reshape(len(CLASSES), a.repeats).mean(1)
        worst = CLASSES[int(scores.argmin())]
        print(f"session-{share:.1f} ({a.session_files} files, one emotion {share:.0%}): UAR {scores.mean():.3f} "
              f"(worst when {worst} dominates: {scores.min():.3f})")


if __name__ == "__main__":
    sys.exit(main())
