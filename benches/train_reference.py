#!/usr/bin/env python3
"""Benchmark: `serd train` vs the reference method (Keras) and scikit-learn baselines, same files,
same folds, same features, same machine, one run.

    pip install tensorflow-cpu==2.21.* scikit-learn pandas
    cargo build --release
    python3 benches/train_reference.py [--features egemaps|compare] [--skip-keras] [--speaker-norm]
        [--serd-arg=--class-weights ...] [--data ../shared/corpora/ravdess ...]

1. Runs `serd train --no-final` (features from serd's cache, filled first by an untimed run) and
   reads its metrics.json: the fold of every file, pooled UAR, and serd's own CV wall time.
2. Exports the same features with `serd extract --format csv` (whole files).
3. On exactly those folds, with the scaler fitted on each training part:
   - the reference CNN in Keras: Conv1D(128, 5, strides 2, same) → ReLU → MaxPool(2, same) →
     BatchNorm → SpatialDropout1D(0.5), twice, GlobalAveragePooling1D, Dense(5), the features as
     channels of a length-1 sequence; Adam 1e-3, batch 32, up to 100 epochs, early stopping
     (patience 10, best weights restored) on a speaker-held-out sixth of the training part,
     as serd does (the reference's own code stopped on the test fold, a leak);
   - scikit-learn SVC (RBF, C=1, balanced) and MLPClassifier(128, 128, early stopping).
   Wall time covers the 5-fold training and prediction only (features already in memory), as
   serd's "cross_validation" time does.
4. With --speaker-norm, also the SVM on features standardised per speaker (each speaker's own mean
   and deviation, test speakers' from their own unlabelled recordings): what per-speaker
   normalisation would be worth on these folds (serd does not do it; see BENCHMARKS.md).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, accuracy_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SERD = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "serd")
CLASSES = ["anger", "surprise", "happiness", "sadness", "neutral"]


def serd_train(data, features, layout, extra, out):
    args = [SERD, "train", "--no-final", "--features", features, "--layout", layout, "--out", out, *extra]
    for d in data:
        args += ["--data", d]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "metrics.json")) as fh:
        return json.load(fh)


def features_of(paths, features):
    out = subprocess.run([SERD, "extract", "--features", features, "--format", "csv", *paths],
                         check=True, capture_output=True, text=True).stdout
    from io import StringIO
    df = pd.read_csv(StringIO(out))
    return df.set_index("file").drop(columns=["t_start", "t_end", "voiced"])


def keras_reference(n_features):
    import keras
    from keras import layers
    inp = keras.Input((1, n_features))
    x = inp
    for _ in range(2):
        x = layers.Conv1D(128, 5, strides=2, padding="same", activation="relu")(x)
        x = layers.MaxPooling1D(2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.SpatialDropout1D(0.5)(x)
    x = layers.GlobalAveragePooling1D()(x)
    out = layers.Dense(5, activation="softmax")(x)
    model = keras.Model(inp, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def run_keras(x_tr, y_tr, g_tr, x_te, seed):
    import keras
    keras.utils.set_random_seed(seed)
    tr, va = next(GroupShuffleSplit(n_splits=1, test_size=1 / 6, random_state=seed).split(x_tr, y_tr, g_tr))
    model = keras_reference(x_tr.shape[1])
    stop = keras.callbacks.EarlyStopping(patience=10, restore_best_weights=True)
    model.fit(x_tr[tr][:, None, :], y_tr[tr], validation_data=(x_tr[va][:, None, :], y_tr[va]),
              epochs=100, batch_size=32, callbacks=[stop], verbose=0)
    return model.predict(x_te[:, None, :], verbose=0).argmax(axis=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", default="egemaps")
    ap.add_argument("--layout", default="channels")
    ap.add_argument("--data", action="append")
    ap.add_argument("--serd-arg", action="append", default=[], help="extra argument for serd train")
    ap.add_argument("--skip-keras", action="store_true", help="only serd and the scikit-learn baselines")
    ap.add_argument("--speaker-norm", action="store_true", help="also the SVM on per-speaker standardised features")
    a = ap.parse_args()
    data = a.data or [os.path.join(ROOT, "..", "shared", "corpora", c) for c in ("ravdess", "emodb")]
    with tempfile.TemporaryDirectory() as tmp:
        serd_train(data, a.features, a.layout, a.serd_arg, os.path.join(tmp, "warm"))  # fills the cache
        m = serd_train(data, a.features, a.layout, a.serd_arg, os.path.join(tmp, "run"))
    assign = pd.DataFrame(m["cv"]["assignment"])
    serd_s = m["timing_s"]["cross_validation"]
    serd_uar = m["cv"]["utterance"]["uar"]
    feats = features_of(list(assign["path"]), a.features).loc[assign["path"]]
    x = feats.values.astype(np.float32)
    y = assign["label"].map(CLASSES.index).values
    groups = assign["speaker"].values
    folds = assign["fold"].values
    k = folds.max() + 1
    if a.speaker_norm:
        x_spk = x.astype(np.float64)
        for s in np.unique(groups):
            rows = groups == s
            sd = x_spk[rows].std(0)
            x_spk[rows] = (x_spk[rows] - x_spk[rows].mean(0)) / np.where(sd > 0, sd, 1.0)
    names = ("svm", "mlp") if a.skip_keras else ("keras-reference", "svm", "mlp")
    results = {}
    for name in names + (("svm-speaker-norm",) if a.speaker_norm else ()):
        pred = np.zeros_like(y)
        t = time.perf_counter()
        for f in range(k):
            tr, te = folds != f, folds == f
            xs = x_spk if name == "svm-speaker-norm" else x
            sc = StandardScaler().fit(xs[tr])
            x_tr, x_te = sc.transform(xs[tr]), sc.transform(xs[te])
            if name == "keras-reference":
                pred[te] = run_keras(x_tr, y[tr], groups[tr], x_te, seed=42 + f)
            elif name.startswith("svm"):
                pred[te] = SVC(C=1.0, class_weight="balanced").fit(x_tr, y[tr]).predict(x_te)
            else:
                pred[te] = MLPClassifier((128, 128), early_stopping=True, random_state=42, max_iter=500).fit(x_tr, y[tr]).predict(x_te)
        results[name] = (time.perf_counter() - t, balanced_accuracy_score(y, pred), accuracy_score(y, pred))
    print(f"{len(y)} files, {len(set(groups))} speakers, {k} speaker-grouped folds (serd's), {a.features}, machine {os.cpu_count()} cores")
    print(f"serd train ({a.layout} {' '.join(a.serd_arg)}): CV {serd_s:.1f} s, UAR {serd_uar:.3f}, accuracy {m['cv']['utterance']['accuracy']:.3f}")
    for name, (secs, uar, acc) in results.items():
        print(f"{name}: CV {secs:.1f} s, UAR {uar:.3f}, accuracy {acc:.3f}")
    if "keras-reference" in results:
        print(f"ratio serd / keras-reference wall time: {serd_s / results['keras-reference'][0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
