#!/usr/bin/env python3
"""Benchmark: how a training recipe generalises to corpora it never saw, and the selection
criterion of the bundled recipe (BENCHMARKS.md, "Generalisation").

    cargo build --release
    python3 benches/generalisation.py --name NAME [--seeds 42 43 44] [--cv both|corpus] \
        [--data DIR ...] -- SERD_TRAIN_ARGS...

For each seed, runs `serd train --no-final --cv ... --seed S SERD_TRAIN_ARGS` on the corpora
(default: every corpus in ../shared/corpora), reads its metrics.json and appends one JSON line
per run to --results (default: target/generalisation.jsonl): each held-out corpus's UAR (over the
classes it has) clean and under each --test-condition, their mean, and the speaker-grouped figures
when they were made. Then prints, for every recipe name in the results file, the mean and spread
over its seeds: the criterion first (mean UAR over held-out corpora), then the constraints
(speaker-grouped clean UAR, its worst condition, babble).

    python3 benches/generalisation.py --table      # only the table of what was run
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "corpora")
CORPORA = ["ravdess", "emodb", "tess"]


def serd_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "serd")


def run(name, seed, cv, data, extra, results):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "model")
        cmd = [serd_binary(), "train", "--no-final", "--cv", cv, "--seed", str(seed),
               "--out", out, "--backend", "cpu", "-q"]
        for d in data:
            cmd += ["--data", d]
        cmd += extra
        started = time.time()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        seconds = time.time() - started
        if done.returncode != 0:
            sys.exit(f"{name} seed {seed}: serd train failed:\n{done.stderr}")
        metrics = json.load(open(os.path.join(out, "metrics.json")))
    row = {"name": name, "seed": seed, "args": extra, "seconds": round(seconds, 1),
           "timing_s": metrics["timing_s"]}
    corpus_cv = metrics.get("corpus_cv")
    if corpus_cv:
        row["corpora"] = {
            f["held_out"]: {"uar": f["uar"], "ece": f["ece"],
                            "conditions": {c["condition"]: c["uar"] for c in f.get("conditions", [])}}
            for f in corpus_cv["folds"]
        }
        row["corpus_mean"] = corpus_cv["uar"]["mean"]
        row["corpus_conditions"] = {c["condition"]: c["uar"]["mean"] for c in corpus_cv["conditions"]}
    cv = metrics.get("cv")
    if cv:
        row["speaker"] = {"uar": cv["utterance"]["uar"],
                          "conditions": {c["condition"]: c["utterance"]["uar"] for c in cv["conditions"]},
                          "ece": cv["calibration"]["utterance_after"]["ece"]}
        # Within each corpus: UAR of its held-out speakers (pooled over folds).
        per = {}
        for a in cv["assignment"]:
            corpus = a["speaker"].split(":")[0]
            per.setdefault(corpus, []).append((a["label"], a["predicted"]))
        row["speaker"]["per_corpus"] = {c: uar(pairs) for c, pairs in per.items()}
    with open(results, "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def uar(pairs):
    recalls = []
    for label in sorted({t for t, _ in pairs}):
        of = [p for t, p in pairs if t == label]
        recalls.append(sum(p == label for p in of) / len(of))
    return sum(recalls) / len(recalls)


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def table(results):
    rows = [json.loads(line) for line in open(results)]
    names = list(dict.fromkeys(r["name"] for r in rows))
    print("| recipe | seeds | held-out corpora, mean | " + " | ".join(CORPORA)
          + " | speaker-grouped clean | worst condition | babble:10 | minutes |")
    print("|---" * (8 + len(CORPORA)) + "|")
    for name in names:
        runs = [r for r in rows if r["name"] == name]
        cells = [name, ",".join(str(r["seed"]) for r in runs)]
        cells.append(spread([r.get("corpus_mean") for r in runs]))
        for c in CORPORA:
            cells.append(spread([r.get("corpora", {}).get(c, {}).get("uar") for r in runs]))
        spk = [r["speaker"] for r in runs if "speaker" in r]
        cells.append(spread([s["uar"] for s in spk]))
        cells.append(spread([min(s["conditions"].values()) if s["conditions"] else None for s in spk]))
        cells.append(spread([s["conditions"].get("babble:10") for s in spk]))
        cells.append(spread([r["seconds"] / 60 for r in runs]))
        print("| " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--cv", default="both", choices=["both", "corpus", "speaker"])
    ap.add_argument("--data", action="append")
    ap.add_argument("--results", default=os.path.join(ROOT, "target", "generalisation.jsonl"))
    ap.add_argument("--table", action="store_true")
    ap.add_argument("extra", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.results), exist_ok=True)
    if not a.table:
        if not a.name:
            sys.exit("--name is required")
        data = a.data or [os.path.join(SHARED, c) for c in CORPORA]
        extra = a.extra[1:] if a.extra[:1] == ["--"] else a.extra
        for seed in a.seeds:
            row = run(a.name, seed, a.cv, data, extra, a.results)
            print(json.dumps({k: row[k] for k in row if k not in ("args", "timing_s")}), flush=True)
    table(a.results)


if __name__ == "__main__":
    main()
